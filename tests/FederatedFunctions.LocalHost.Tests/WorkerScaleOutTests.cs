using System.Diagnostics;
using System.Text.Json;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// Scale-out over processes on the Azure Storage backend: two <c>fl worker</c> processes join one task hub, a third process
/// starts a run with <c>fl train --no-worker</c>, and the durable engine spreads the run's work over the two workers.
/// </summary>
[Collection(ProcessesCollection.Name)]
public sealed class WorkerScaleOutTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private static RunSpec Spec(string runId, IReadOnlyList<SiloDataset> data) => new()
    {
        RunId = runId,
        Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 8, Hidden = [16] },
        Data = new DataSpec { Classes = 4 },
        Training = new TrainingSpec { Rounds = 4, LocalEpochs = 1, BatchSize = 16, LearningRate = 0.05, Seed = 41 },
        Silos = data.Select(d => d.SiloId).ToArray(),
        Evaluation = new EvaluationSpec { EveryRounds = 1 },
    };

    // Each worker runs one activity at a time (--max-activities 1), so a round's six silo steps wait in the work-item queue
    // for whichever worker is free: both take some.
    [Fact]
    public async Task Train_TwoWorkerProcessesAndAClientThatRunsNothing_BothWorkersRunActivities_AndTheModelIsBitIdenticalToOneProcess()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "scaleout", new SyntheticOptions(6, 4, 8, 150, 40, null, 43));
        var reference = await CrashRecoveryTests.UninterruptedAsync(config, Spec("scaleout-ref", data));

        const string run = "scaleout-run";
        using var home = new TempDirectory();
        var specFile = Path.Combine(home.Path, "spec.json");
        await File.WriteAllBytesAsync(specFile, JsonSerializer.SerializeToUtf8Bytes(Spec(run, data), RunSpecJson.Options));
        var hub = "flscale" + Guid.NewGuid().ToString("N")[..6];

        var workers = new List<(Process Process, System.Collections.Concurrent.ConcurrentQueue<string> Out, Task<string> Err)>();
        try
        {
            foreach (var name in new[] { "worker-a", "worker-b" })
            {
                var psi = Fl(home.Path, hub, "worker", "--partitions", "2", "--max-activities", "1", "--name", name).WithSilos(config);
                var p = Process.Start(psi)!;
                var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
                p.OutputDataReceived += (_, e) =>
                {
                    if (e.Data is not null)
                    {
                        output.Enqueue(e.Data);
                    }
                };
                p.BeginOutputReadLine();
                workers.Add((p, output, p.StandardError.ReadToEndAsync()));
            }

            // The run starts once both workers have joined the hub.
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (!workers.All(w => w.Out.Any(l => l.Contains("joined task hub", StringComparison.Ordinal))))
            {
                Assert.True(DateTime.UtcNow < deadline, "the workers never joined the task hub");
                Assert.DoesNotContain(workers, w => w.Process.HasExited);
                await Task.Delay(100);
            }

            var client = Fl(home.Path, hub, "train", "--spec", specFile, "--backend", "azurestorage", "--no-worker").WithSilos(config);
            var (code, stdout, stderr) = await RunAsync(client, TimeSpan.FromMinutes(5));
            Assert.True(code == 0, $"fl train exited {code}: {stderr}\n{stdout}");
            Assert.Contains("Run scaleout-run completed 4 rounds", stdout, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var (process, _, _) in workers)
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                await process.WaitForExitAsync();
            }
        }

        var lines = new List<string[]>();
        foreach (var (process, output, error) in workers)
        {
            log.WriteLine(string.Join('\n', output.Take(20)));
            Assert.Contains(output, l => l.Contains("joined task hub '" + hub + "' (2 partition(s))", StringComparison.Ordinal));
            lines.Add(output.Where(l => l.StartsWith("worker ", StringComparison.Ordinal) && l.Contains("started", StringComparison.Ordinal)).ToArray());
            process.Dispose();
            _ = await error;
        }

        // Both processes executed activities of the run (the client, with --no-worker, has no worker to run any).
        Assert.All(lines, l => Assert.NotEmpty(l));
        log.WriteLine($"activities: worker-a {lines[0].Length}, worker-b {lines[1].Length}");

        var store = new BlobCheckpointStore(azurite.Blobs);
        Assert.Equal([0, 1, 2, 3, 4], (await store.ListAsync("checkpoints", run, default)).Select(m => m.Round));
        TensorAssert.Identical(reference, await TensorAssert.FinalModelAsync(store, run));
    }

    [Fact]
    public async Task Worker_PartitionsDifferentFromTheExistingHubs_IsRefusedWithTheHubsCount()
    {
        var hub = "flscalex" + Guid.NewGuid().ToString("N")[..6];
        using var home = new TempDirectory();
        var first = Fl(home.Path, hub, "worker", "--partitions", "2");
        using (var p = Process.Start(first)!)
        {
            var output = p.StandardOutput.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (await TaskHubPartitions.ReadAsync(azurite.ConnectionString, hub, default) is null)
            {
                Assert.True(DateTime.UtcNow < deadline && !p.HasExited, "the worker never created the task hub");
                await Task.Delay(100);
            }

            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            _ = await output;
        }

        var (code, _, stderr) = await RunAsync(Fl(home.Path, hub, "worker", "--partitions", "3"), TimeSpan.FromMinutes(2));

        Assert.Equal(2, code);
        Assert.Contains($"Task hub '{hub}' already exists with 2 partition(s)", stderr, StringComparison.Ordinal);
    }

    private ProcessStartInfo Fl(string home, string hub, params string[] args)
    {
        var psi = FlProcess.Create(home, azurite.ConnectionString, args);
        psi.Environment["FL_TASK_HUB"] = hub;
        psi.Environment["FL_DURABLE_VISIBILITY_SECONDS"] = "5";
        return psi;
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(ProcessStartInfo psi, TimeSpan timeout)
    {
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }

        return (p.ExitCode, await stdout, await stderr);
    }
}
