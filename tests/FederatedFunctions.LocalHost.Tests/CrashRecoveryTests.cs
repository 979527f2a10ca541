using System.Diagnostics;
using System.Text.Json;
using Azure.Storage.Blobs;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// Crash safety on the durable Azure Storage backend: the host is killed with SIGKILL, or Azurite is restarted,
/// in the middle of a run; the run completes and its final model is bit-identical to an uninterrupted run.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class CrashRecoveryTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private static RunSpec Spec(string runId, IReadOnlyList<SiloDataset> data) => new()
    {
        RunId = runId,
        Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 8, Hidden = [16] },
        Data = new DataSpec { Classes = 6 },
        Training = new TrainingSpec { Rounds = 4, LocalEpochs = 1, BatchSize = 16, LearningRate = 0.05, Seed = 77 },
        Silos = data.Select(d => d.SiloId).ToArray(),
        Orchestration = new OrchestrationSpec { RoundsPerInstance = 3 },
        Retry = new RetrySpec { MaxAttempts = 5, FirstIntervalSeconds = 0.5, MaxIntervalSeconds = 5 },
    };

    [Fact]
    public async Task Train_HostKilledAtFourPointsOfARun_CompletesWithABitIdenticalModel()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "crash", new SyntheticOptions(3, 6, 8, 150, 50, null, 31));
        var reference = await UninterruptedAsync(config, Spec("crash-ref", data));

        const string run = "crash-run";
        var spec = Spec(run, data);
        using var home = new TempDirectory();
        var specFile = Path.Combine(home.Path, "spec.json");
        await File.WriteAllBytesAsync(specFile, JsonSerializer.SerializeToUtf8Bytes(spec, RunSpecJson.Options));
        var hub = "flcrash" + Guid.NewGuid().ToString("N")[..6];
        var checkpoints = azurite.Blobs.GetBlobContainerClient("checkpoints");
        var firstSilo = azurite.Blobs.GetBlobContainerClient(config[$"Silos:{data[0].SiloId}:OutboxContainer"]);

        // Points of the run, in order; each is watched from outside, through the blobs the run writes.
        var points = new (string Name, Func<Task<bool>> Reached)[]
        {
            ("after the spec is stored, while round 0 is written", () => Exists(checkpoints, BlobLayout.Spec(run))),
            ("while round 1 trains", () => Exists(firstSilo, BlobLayout.SiloUpdate(run, 1))),
            ("while round 2 aggregates and commits", () => Exists(checkpoints, BlobLayout.Model(run, 2))),
            ("after round 3 commits, at the continue-as-new", () => Exists(checkpoints, BlobLayout.Manifest(run, 3))),
        };

        var kills = 0;
        DateTimeOffset? firstKill = null;
        foreach (var (name, reached) in points)
        {
            using var fl = Process.Start(Train(home.Path, hub, config, specFile))!;
            var stdout = fl.StandardOutput.ReadToEndAsync();
            var stderr = fl.StandardError.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!await reached())
            {
                if (fl.HasExited)
                {
                    Assert.Fail($"fl exited ({fl.ExitCode}) before the point '{name}': {await stderr}");
                }

                Assert.True(DateTime.UtcNow < deadline, $"the run never reached '{name}'");
                await Task.Delay(20);
            }

            fl.Kill(entireProcessTree: true);
            await fl.WaitForExitAsync();
            firstKill ??= DateTimeOffset.UtcNow;
            kills++;
            log.WriteLine($"SIGKILL {kills}: {name}");

            // Killed, not ended by itself: a process that had finished the run before the kill tested nothing.
            Assert.True(fl.ExitCode != 0, $"fl ended the run by itself before the kill at '{name}': {await stdout}");
            _ = await stdout;
        }

        // The last restart is `fl resume`: the run is still running on the task hub, so it attaches and waits (or reports
        // the run, when its own worker finished the last round before it looked).
        System.Text.RegularExpressions.Match took;
        var resume = Train(home.Path, hub, config, specFile);
        resume.ArgumentList.Clear();
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "fl.dll"), "resume", run, "--backend", "azurestorage" })
        {
            resume.ArgumentList.Add(a);
        }

        using (var fl = Process.Start(resume)!)
        {
            var stdout = fl.StandardOutput.ReadToEndAsync();
            var stderr = fl.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            await fl.WaitForExitAsync(cts.Token);
            Assert.True(fl.ExitCode == 0, $"exit {fl.ExitCode}: {await stderr}\n{await stdout}");

            // Its own worker starts before it looks at the run, and may finish the last round first.
            Assert.Matches("already running: attaching to it|has already completed", await stdout);

            took = System.Text.RegularExpressions.Regex.Match(await stdout, @"completed 4 rounds in ([0-9.]+) s");
            Assert.True(took.Success, await stdout);
        }

        var store = new Adapters.Checkpoints.BlobCheckpointStore(azurite.Blobs);
        var manifests = await store.ListAsync("checkpoints", run, default);
        Assert.Equal([0, 1, 2, 3, 4], manifests.Select(m => m.Round));

        // The time reported is the run's own, from its start before the first kill, not the last process's.
        var sinceFirstKill = (manifests[^1].CreatedAt - firstKill!.Value).TotalSeconds;
        Assert.True(double.Parse(took.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= sinceFirstKill - 0.5, $"{took.Value}; the last round committed {sinceFirstKill:0.0} s after the first kill");
        for (var i = 1; i < manifests.Count; i++)
        {
            Assert.Equal(manifests[i - 1].Model.Sha256, manifests[i].ParentModelSha256);
            Assert.Equal(3, manifests[i].Participants.Count);
        }

        TensorAssert.Identical(reference, await TensorAssert.FinalModelAsync(store, run));
        Assert.Equal(4, kills);
    }

    [Fact]
    public async Task Train_AzuriteRestartedMidRunWithPersistence_CompletesWithABitIdenticalModel()
    {
        using var dataDir = new TempDirectory();
        var executable = Azurite.FindExecutable(RepositoryPaths.Root);
        var own = await Azurite.StartChildAsync(executable, dataDir.Path);
        try
        {
            var ownFixture = new BlobServiceClient(own.Endpoint.ConnectionString);
            var (config, data) = await LocalSilos.CreateAsync(azurite, "restart-azurite", new SyntheticOptions(3, 6, 8, 150, 50, null, 32));
            var reference = await UninterruptedAsync(config, Spec("azurite-ref", data));

            // The durable backend and the checkpoints live in the Azurite that restarts; the silos stay where they are.
            var settings = config.AsEnumerable().Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value);
            settings["Storage:ConnectionString"] = own.Endpoint.ConnectionString;
            var ownConfig = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
            var options = new LocalDurableHostOptions
            {
                Backend = DurableBackendKind.AzureStorage,
                DurableStorageConnectionString = own.Endpoint.ConnectionString,
                TaskHub = "flazrestart",
                Configuration = ownConfig,
                WorkItemVisibilityTimeout = TimeSpan.FromSeconds(5),
            };
            await using var host = await LocalDurableHost.StartAsync(options);
            var spec = Spec("azurite-run", data);
            var running = new RunRunner(host, TextWriter.Null).RunAsync(spec, "azurite-run", "azurestorage", default);

            var checkpoints = ownFixture.GetBlobContainerClient("checkpoints");
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!await Exists(checkpoints, BlobLayout.Manifest("azurite-run", 1)))
            {
                Assert.True(DateTime.UtcNow < deadline, "round 1 was never committed");
                Assert.False(running.IsCompleted, "the run ended before Azurite could be restarted");
                await Task.Delay(20);
            }

            // Graceful stop (Azurite saves its state), a few seconds without storage, then the same ports and folder.
            var ports = own.Endpoint;
            await own.StopAsync();
            await Task.Delay(TimeSpan.FromSeconds(3));
            own = await Azurite.StartChildAsync(executable, dataDir.Path, ports);
            log.WriteLine("Azurite restarted after round 1");

            var report = await running.WaitAsync(TimeSpan.FromMinutes(4));
            Assert.Equal(4, report.Rounds);
            var store = host.Services.GetRequiredService<ICheckpointStore>();
            Assert.Equal([0, 1, 2, 3, 4], (await store.ListAsync("checkpoints", "azurite-run", default)).Select(m => m.Round));
            TensorAssert.Identical(reference, await TensorAssert.FinalModelAsync(store, "azurite-run"));
        }
        finally
        {
            own.Dispose();
        }
    }

    internal static async Task<IReadOnlyList<NamedTensor>> UninterruptedAsync(IConfiguration config, RunSpec spec)
    {
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });
        await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId!, "inmemory", default);
        return await TensorAssert.FinalModelAsync(host.Services.GetRequiredService<ICheckpointStore>(), spec.RunId!);
    }

    private static async Task<bool> Exists(BlobContainerClient container, string name) =>
        (await container.GetBlobClient(name).ExistsAsync()).Value;

    // fl train on the azurestorage backend of the shared Azurite, with the silos as FL_ configuration.
    private ProcessStartInfo Train(string home, string hub, IConfiguration config, string specFile)
    {
        var psi = FlProcess.Create(home, azurite.ConnectionString, "train", "--spec", specFile, "--backend", "azurestorage");
        psi.Environment["FL_TASK_HUB"] = hub;
        psi.Environment["FL_DURABLE_VISIBILITY_SECONDS"] = "2";
        return psi.WithSilos(config);
    }
}
