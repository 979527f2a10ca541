using System.Diagnostics;
using System.Text.Json;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.TestSupport.AzureMl;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// The three silo computes end to end, on real storage: the same seeded run in process, as separate silo runner processes,
/// and as Azure ML jobs on the emulator (which runs the real silo runner), with the emulator's faults, a host restart while
/// jobs run, and a silo runner killed mid-job.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class SiloComputeTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private static readonly RetrySpec FastRetry = new() { MaxAttempts = 3, FirstIntervalSeconds = 0.5, MaxIntervalSeconds = 1 };

    private static RunSpec Spec(string runId, IReadOnlyList<SiloDataset> data, int rounds) => new()
    {
        RunId = runId,
        Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 6, Hidden = [16] },
        Data = new DataSpec { Classes = 4 },
        Training = new TrainingSpec { Rounds = rounds, LocalEpochs = 1, BatchSize = 16, LearningRate = 0.1, Seed = 13 },
        Silos = data.Select(d => d.SiloId).ToArray(),
        Retry = FastRetry,
    };

    private static async Task<(IReadOnlyList<RoundManifest> Manifests, IReadOnlyList<NamedTensor> Model)> RunAsync(LocalDurableHostOptions options, RunSpec spec)
    {
        await using var host = await LocalDurableHost.StartAsync(options);
        await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId!, "inmemory", default);
        var store = host.Services.GetRequiredService<ICheckpointStore>();
        return (await store.ListAsync("checkpoints", spec.RunId!, default), await TensorAssert.FinalModelAsync(store, spec.RunId!));
    }

    // Every round's model, as tensors: the files differ by their metadata (the run id), the weights must not.
    private async Task<IReadOnlyList<IReadOnlyList<NamedTensor>>> ModelsAsync(IReadOnlyList<RoundManifest> manifests)
    {
        var store = new Adapters.Checkpoints.BlobCheckpointStore(azurite.Blobs);
        var models = new List<IReadOnlyList<NamedTensor>>();
        foreach (var m in manifests)
        {
            models.Add(Safetensors.Parse(await store.ReadModelAsync(m.Model, default)).Tensors);
        }

        return models;
    }

    private static async Task CreatedAsync(AzureMlEmulator emulator, Func<string, bool> which, int count, string what)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (emulator.Created.Count(which) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, what + " were never created");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task SameSeededRun_OnLocalProcessAndAzureMlComputes_EndsWithBitIdenticalModels()
    {
        await using var world = await SiloWorld.CreateAsync(azurite, "kinds", new SyntheticOptions(3, 4, 6, 120, 40, null, 13));
        var runs = new Dictionary<string, (IReadOnlyList<RoundManifest> Manifests, IReadOnlyList<NamedTensor> Model)>();
        foreach (var kind in new[] { SiloComputeKinds.Local, SiloComputeKinds.Process, SiloComputeKinds.AzureMl })
        {
            var watch = Stopwatch.StartNew();
            runs[kind] = await RunAsync(world.HostOptions(world.Configuration(kind)), Spec("kinds-" + kind, world.Data, rounds: 2));
            log.WriteLine($"{kind}: {watch.Elapsed.TotalSeconds:0.0} s, final accuracy {runs[kind].Manifests[^1].Metrics?.EvalAccuracy}");
        }

        var expected = await ModelsAsync(runs[SiloComputeKinds.Local].Manifests);
        foreach (var kind in new[] { SiloComputeKinds.Process, SiloComputeKinds.AzureMl })
        {
            var actual = await ModelsAsync(runs[kind].Manifests);
            Assert.Equal(expected.Count, actual.Count);
            foreach (var (e, a) in expected.Zip(actual))
            {
                TensorAssert.Identical(e, a);
            }

            Assert.Equal(runs[SiloComputeKinds.Local].Manifests.Select(m => m.Metrics?.EvalAccuracy), runs[kind].Manifests.Select(m => m.Metrics?.EvalAccuracy));
            Assert.Equal(runs[SiloComputeKinds.Local].Manifests.Select(m => m.Metrics?.TrainLoss), runs[kind].Manifests.Select(m => m.Metrics?.TrainLoss));
        }

        // Each step of each silo ran as its own job: 3 silos x 2 rounds x (train, evaluate), each created once, each completed.
        var created = world.Emulator.Created.ToArray();
        Assert.Equal(12, created.Length);
        Assert.Equal(created.Length, created.Distinct().Count());
        Assert.All(created, job => Assert.Equal("Completed", world.Emulator.History(job)[^1]));
        Assert.All(created, job => Assert.DoesNotContain("sig=", world.Emulator.Resource(job)!.ToJsonString(), StringComparison.Ordinal));
        Assert.Equal(12, new DirectoryInfo(world.JobsDirectory).GetDirectories("fl-kinds-process-*").Length);
    }

    [Fact]
    public async Task SecurelyAggregatedAnalysis_OnLocalProcessAndAzureMlComputes_GivesTheSameResult()
    {
        // The key, masked-partial and reveal steps of an analysis, each a job of its own on the remote computes.
        await using var world = await SiloWorld.CreateAsync(azurite, "sakinds", new SyntheticOptions(3, 4, 6, 120, 40, null, 13));
        var results = new Dictionary<string, string>();
        foreach (var kind in new[] { SiloComputeKinds.Local, SiloComputeKinds.Process, SiloComputeKinds.AzureMl })
        {
            await using var host = await LocalDurableHost.StartAsync(world.HostOptions(world.Configuration(kind)));
            var spec = new Core.Analysis.AnalysisSpec
            {
                AnalysisId = "sakinds-" + kind,
                Silos = world.Data.Select(d => d.SiloId).ToArray(),
                Data = new Core.Analysis.AnalysisDataSpec { Path = "data/train.csv" },
                Features =
                [
                    new Core.Analysis.FeatureAnalysis { Column = "x0", Statistics = ["count", "mean", "variance", "histogram"], Histogram = new Core.Analysis.HistogramSpec { Edges = [-4, -1, 0, 1, 4] } },
                    new Core.Analysis.FeatureAnalysis { Column = "x1", Statistics = ["sum", "stddev"] },
                    new Core.Analysis.FeatureAnalysis { Column = "label", Statistics = ["valueCounts"], Categories = ["0", "1", "2", "3"] },
                ],
                GroupBy = "label",
                Groups = ["0", "1", "2", "3"],
                Covariance = ["x0", "x1"],
                Privacy = new Core.Analysis.AnalysisPrivacySpec { Mode = PrivacyModes.EyesOff, MinCount = 3, MinSilos = 2 },
            };
            var result = await new AnalysisRunner(host).RunAsync(spec, default);
            Assert.Equal(world.Data.Sum(d => d.Train.Rows), result.Rows);
            results[kind] = JsonSerializer.Serialize(result with { AnalysisId = "same" }, Core.Analysis.AnalysisJson.Options);
        }

        Assert.Equal(results[SiloComputeKinds.Local], results[SiloComputeKinds.Process]);
        Assert.Equal(results[SiloComputeKinds.Local], results[SiloComputeKinds.AzureMl]);

        // One pass: per silo a key job, a masked-partial job and a reveal job, each created once and completed.
        var created = world.Emulator.Created.ToArray();
        Assert.Equal(9, created.Length);
        foreach (var step in new[] { "-key-r00001-a00-", "-analyze-r00001-a00-", "-reveal-r00001-a00-" })
        {
            Assert.Equal(3, created.Count(job => job.Contains(step, StringComparison.Ordinal)));
        }

        Assert.All(created, job => Assert.Equal("Completed", world.Emulator.History(job)[^1]));
    }

    [Fact]
    public async Task AzureMl_FailedPreemptedCanceledJobsAndThrottledOrUnavailableArm_EachEndAsAzureMlWouldHaveThem()
    {
        await using var world = await SiloWorld.CreateAsync(azurite, "faults", new SyntheticOptions(4, 4, 6, 120, 40, null, 17));
        var spec = Spec("aml-faults", world.Data, rounds: 1) with { Participation = new ParticipationSpec { MinSilos = 2 } };
        var (failed, preempted, canceled) = (world.Data[0].SiloId, world.Data[1].SiloId, world.Data[2].SiloId);
        string Job(string silo, int attempt) => $"fl-aml-faults-train-r00001-{silo}-j{attempt}";
        world.Emulator.Faults[Job(failed, 1)] = JobFault.Fail;
        world.Emulator.Faults[Job(preempted, 1)] = JobFault.Preempted;
        world.Emulator.Faults[Job(canceled, 1)] = JobFault.CanceledOnCompute;
        world.Emulator.ThrottleNext(3);

        await using (var host = await LocalDurableHost.StartAsync(world.HostOptions(world.Configuration(SiloComputeKinds.AzureMl))))
        {
            var run = new RunRunner(host, TextWriter.Null);
            var watch = Task.Run(() => run.RunAsync(spec, "aml-faults", "inmemory", default));
            await Task.Delay(TimeSpan.FromSeconds(2));
            world.Emulator.UnavailableNext(3);
            await watch;
        }

        var store = new Adapters.Checkpoints.BlobCheckpointStore(azurite.Blobs);
        var manifest = (await store.ListAsync("checkpoints", "aml-faults", default)).Single(m => m.Round == 1);
        foreach (var r in manifest.Rejected)
        {
            log.WriteLine($"rejected {r.SiloId}: {r.Reason}: {r.Detail}");
        }

        // A failed job is submitted again under the next attempt's name and counts.
        Assert.Equal(["Completed"], world.Emulator.History(Job(failed, 2)).TakeLast(1));
        Assert.Equal("Failed", world.Emulator.History(Job(failed, 1))[^1]);
        Assert.Contains(failed, manifest.Participants.Select(p => p.SiloId));

        // A preempted job goes back to the queue, runs again as the same job, and counts.
        Assert.Equal(["Running", "Queued", "Running", "Finalizing", "Completed"], world.Emulator.History(Job(preempted, 1)).SkipWhile(s => s != "Running"));
        Assert.DoesNotContain(Job(preempted, 2), world.Emulator.Created);
        Assert.Contains(preempted, manifest.Participants.Select(p => p.SiloId));

        // A job cancelled on the compute is that silo's failure for the round, with Azure ML's status; it is not resubmitted.
        var rejected = Assert.Single(manifest.Rejected);
        Assert.Equal((canceled, "canceled"), (rejected.SiloId, rejected.Reason));
        Assert.Contains("azureml:Canceled", rejected.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(Job(canceled, 2), world.Emulator.Created);

        // ARM throttling (429 with Retry-After) and outages (503) were ridden out by retries; no job was created twice.
        Assert.Equal(3, world.Emulator.Requests.Count(r => r.Status == 429));
        Assert.Equal(3, world.Emulator.Requests.Count(r => r.Status == 503));
        Assert.Equal(world.Emulator.Created.Count, world.Emulator.Created.Distinct().Count());
    }

    [Fact]
    public async Task AzureMl_JobStuckInTheQueuePastTheRoundDeadline_IsCancelledAndRecordedLateWithItsStatus()
    {
        await using var world = await SiloWorld.CreateAsync(azurite, "stuck", new SyntheticOptions(3, 4, 6, 120, 40, null, 19));
        var stuck = world.Data[2].SiloId;
        var job = $"fl-aml-stuck-train-r00001-{stuck}-j1";
        world.Emulator.Faults[job] = JobFault.StuckInQueue;
        var spec = Spec("aml-stuck", world.Data, rounds: 1) with { Participation = new ParticipationSpec { RoundDeadlineSeconds = 20, MinSilos = 2 } };

        var (manifests, _) = await RunAsync(world.HostOptions(world.Configuration(SiloComputeKinds.AzureMl)), spec);

        var late = Assert.Single(manifests.Single(m => m.Round == 1).Rejected);
        Assert.Equal((stuck, "late"), (late.SiloId, late.Reason));
        Assert.Contains("while queued (azureml:Queued)", late.Detail, StringComparison.Ordinal);
        Assert.Equal(["Queued", "CancelRequested", "Canceled"], world.Emulator.History(job).TakeLast(3));
    }

    [Fact]
    public async Task AzureMl_HostRestartedWhileJobsRun_CompletesWithoutSubmittingAnyJobTwice()
    {
        await using var world = await SiloWorld.CreateAsync(azurite, "amlrestart", new SyntheticOptions(3, 4, 6, 120, 40, null, 23));
        var (_, reference) = await RunAsync(world.HostOptions(world.Configuration(SiloComputeKinds.Local)), Spec("amlrestart-ref", world.Data, rounds: 2));

        world.Emulator.StatusDelay = TimeSpan.FromMilliseconds(700);
        var spec = Spec("amlrestart-run", world.Data, rounds: 2);
        var options = world.HostOptions(world.Configuration(SiloComputeKinds.AzureMl)) with
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "flrestart" + Guid.NewGuid().ToString("N")[..6],
            WorkItemVisibilityTimeout = TimeSpan.FromSeconds(5),
        };

        await using (var first = await LocalDurableHost.StartAsync(options))
        {
            var runner = new RunRunner(first, TextWriter.Null);
            _ = Task.Run(() => runner.RunAsync(spec, "amlrestart-run", "azurestorage", default));
            await CreatedAsync(world.Emulator, j => j.Contains("-train-r00001-", StringComparison.Ordinal), 3, "the round-1 training jobs");
        }

        log.WriteLine("host stopped with jobs in flight: " + string.Join(", ", world.Emulator.Created.Select(j => $"{j} ({world.Emulator.History(j)[^1]})")));
        await using (var second = await LocalDurableHost.StartAsync(options))
        {
            await new RunRunner(second, TextWriter.Null).RunAsync(spec, "amlrestart-run", "azurestorage", default);
        }

        var store = new Adapters.Checkpoints.BlobCheckpointStore(azurite.Blobs);
        TensorAssert.Identical(reference, await TensorAssert.FinalModelAsync(store, "amlrestart-run"));
        var created = world.Emulator.Created.ToArray();
        Assert.Equal(12, created.Length);
        Assert.Equal(created.Length, created.Distinct().Count());
    }

    [Fact]
    public async Task AzureMl_RunCancelledWhileJobsRun_ResumesOnNewJobsToTheSameModel()
    {
        await using var world = await SiloWorld.CreateAsync(azurite, "amlresume", new SyntheticOptions(3, 4, 6, 120, 40, null, 31));
        var (_, reference) = await RunAsync(world.HostOptions(world.Configuration(SiloComputeKinds.Local)), Spec("amlresume-ref", world.Data, rounds: 2));

        world.Emulator.StatusDelay = TimeSpan.FromMilliseconds(700);
        var spec = Spec("amlresume-run", world.Data, rounds: 2);
        await using var host = await LocalDurableHost.StartAsync(world.HostOptions(world.Configuration(SiloComputeKinds.AzureMl)));
        var runner = new RunRunner(host, TextWriter.Null);
        var first = Task.Run(() => runner.RunAsync(spec, "amlresume-run", "inmemory", default));
        bool Round2(string job) => job.Contains("-train-r00002-", StringComparison.Ordinal);
        await CreatedAsync(world.Emulator, Round2, 3, "the round-2 training jobs");
        var deadline = DateTime.UtcNow.AddMinutes(2);

        var cancelled = await host.Services.GetRequiredService<Api.RunsApi>().CancelAsync(host.Client, "amlresume-run", default);
        Assert.Equal(202, cancelled.Status);
        await Assert.ThrowsAsync<RunFailedException>(() => first);
        var inFlight = world.Emulator.Created.Where(Round2).ToArray();
        while (!inFlight.All(job => world.Emulator.History(job)[^1] is "Canceled" or "Completed"))
        {
            Assert.True(DateTime.UtcNow < deadline.AddMinutes(1), "the cancelled run's jobs were not cancelled on the compute");
            await Task.Delay(100);
        }

        await runner.ResumeAsync("amlresume-run", null, "inmemory", default);

        // The resumed round ran as new jobs: none of the cancelled run's jobs was taken for its result or created twice.
        var store = host.Services.GetRequiredService<ICheckpointStore>();
        var manifests = await store.ListAsync("checkpoints", "amlresume-run", default);
        Assert.All(manifests, m => Assert.Empty(m.Rejected));
        Assert.Equal(3, manifests.Single(m => m.Round == 2).Participants.Count);
        var created = world.Emulator.Created.ToArray();
        Assert.Equal(created.Length, created.Distinct().Count());
        Assert.Equal(6, created.Count(Round2));
        Assert.Empty(inFlight.Intersect(created.Where(Round2).Skip(3)));
        TensorAssert.Identical(reference, await TensorAssert.FinalModelAsync(store, "amlresume-run"));
    }

    [Fact]
    public async Task Process_SiloRunnerKilledMidJob_TheJobFailsIsRetriedAndTheModelIsBitIdentical()
    {
        await using var world = await SiloWorld.CreateAsync(azurite, "sigkill", new SyntheticOptions(3, 4, 6, 120, 40, null, 29));
        var (_, reference) = await RunAsync(world.HostOptions(world.Configuration(SiloComputeKinds.Local)), Spec("sigkill-ref", world.Data, rounds: 2));

        var spec = Spec("sigkill-run", world.Data, rounds: 2);
        var victim = $"fl-sigkill-run-train-r00002-{world.Data[1].SiloId}";
        await using var host = await LocalDurableHost.StartAsync(world.HostOptions(world.Configuration(SiloComputeKinds.Process)));
        var watch = Task.Run(() => new RunRunner(host, TextWriter.Null).RunAsync(spec, "sigkill-run", "inmemory", default));

        // The first attempt's runner, once it has started: SIGKILL, from outside, as the OS would.
        var dir = Path.Combine(world.JobsDirectory, victim + "-j1");
        var deadline = DateTime.UtcNow.AddMinutes(2);
        int? pid = null;
        while (pid is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the job's runner never started");
            if (File.Exists(Path.Combine(dir, "status.json")) && File.Exists(Path.Combine(dir, "process.json")))
            {
                pid = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "process.json"))).RootElement.GetProperty("Pid").GetInt32();
            }

            await Task.Delay(10);
        }

        Process.GetProcessById(pid.Value).Kill();
        log.WriteLine($"killed the runner of {victim}-j1 (pid {pid})");
        await watch;

        Assert.DoesNotContain("exited", File.ReadAllText(Path.Combine(dir, "status.json")), StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(world.JobsDirectory, victim + "-j2")), "the failed job was not submitted again");
        var store = host.Services.GetRequiredService<ICheckpointStore>();
        TensorAssert.Identical(reference, await TensorAssert.FinalModelAsync(store, "sigkill-run"));
    }
}
