using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class LocalRunTests(AzuriteFixture azurite)
{
    private static RunSpec Spec(string runId, IReadOnlyList<SiloDataset> data, int rounds) => new()
    {
        RunId = runId,
        Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 8, Hidden = [32] },
        Data = new DataSpec { Classes = 6 },
        Training = new TrainingSpec { Rounds = rounds, LocalEpochs = 1, BatchSize = 32, LearningRate = 0.05, Seed = 5 },
        Silos = data.Select(d => d.SiloId).ToArray(),
    };

    [Fact]
    public async Task Train_ThreeLabelSkewedSilos_FederatedModelBeatsBestSingleSilo()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "skew", new SyntheticOptions(3, 6, 8, 600, 200, DirichletAlpha: 0.3, Seed: 21));
        var spec = Spec("skew-run", data, rounds: 8);
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });
        var report = await new RunRunner(host, TextWriter.Null).RunAsync(spec, "skew-run", "inmemory", default);

        var store = host.Services.GetRequiredService<ICheckpointStore>();
        var latest = await store.GetLatestAsync("checkpoints", "skew-run", default);
        Assert.Equal(8, latest!.Round);
        Assert.Equal(report.Checkpoint, latest.Model.Uri);
        var federated = Safetensors.Parse(await store.ReadModelAsync(latest.Model, default)).Tensors;

        // The union of every silo's test split.
        var union = Union(data.Select(d => d.Test).ToArray());
        var fedAccuracy = Accuracy(spec, federated, union);

        // Each silo alone, same budget: as many local epochs as the federated run gave it, from the same start.
        var start = ModelFactory.InitialState(spec.Model, 8, 6, spec.Training.Seed);
        var singles = data.Select(d =>
        {
            var state = start;
            for (var r = 1; r <= spec.Training.Rounds; r++)
            {
                state = LocalTrainer.Train(spec.Model, spec.Training, 6, state, d.Train, r, d.SiloId).State;
            }

            return Accuracy(spec, state, union);
        }).ToArray();

        Assert.True(fedAccuracy > singles.Max(), $"federated {fedAccuracy:0.000} vs single silos {string.Join(", ", singles.Select(s => s.ToString("0.000")))}");
        Assert.NotNull(report.FinalAccuracy);
    }

    [Fact]
    public async Task Train_OnAzureStorageBackend_CompletesAndKeepsTheInstance()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "durable", new SyntheticOptions(2, 6, 8, 200, 60, null, 8));
        var spec = Spec("durable-run", data, rounds: 2);
        var options = new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "flhubtest" + Guid.NewGuid().ToString("N")[..6],
            Configuration = config,
        };
        await using (var host = await LocalDurableHost.StartAsync(options))
        {
            var report = await new RunRunner(host, TextWriter.Null).RunAsync(spec, "durable-run", "azurestorage", default);
            Assert.Equal(2, report.Rounds);
        }

        // A new host process on the same task hub still knows the run: its state lives in storage, not in the host.
        await using var again = await LocalDurableHost.StartAsync(options with { RunWorker = false });
        var meta = await again.Client.GetInstanceAsync("durable-run", getInputsAndOutputs: true);
        Assert.Equal(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed, meta!.RuntimeStatus);
    }

    [Fact]
    public async Task Train_AzureStorageHostStoppedMidRun_ANewHostFinishesTheRun()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "restart", new SyntheticOptions(2, 6, 8, 200, 60, null, 9));
        var spec = Spec("restart-run", data, rounds: 4);
        var options = new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "flhubrestart" + Guid.NewGuid().ToString("N")[..6],
            Configuration = config,
            WorkItemVisibilityTimeout = TimeSpan.FromSeconds(5),
        };
        await using (var first = await LocalDurableHost.StartAsync(options))
        {
            await first.Client.ScheduleNewOrchestrationInstanceAsync(
                nameof(Workflow.Orchestration.TrainingOrchestrator), Workflow.Contracts.TrainingState.Start("restart-run", spec), new Microsoft.DurableTask.StartOrchestrationOptions("restart-run"));
            var store = first.Services.GetRequiredService<ICheckpointStore>();
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while ((await store.GetLatestAsync("checkpoints", "restart-run", default))?.Round is not >= 1)
            {
                Assert.True(DateTime.UtcNow < deadline, "round 1 was never committed");
                await Task.Delay(100);
            }
        }

        // The first host is gone mid-run; a new one on the same task hub picks the run up and finishes it.
        await using var second = await LocalDurableHost.StartAsync(options);
        using var output = new StringWriter();
        var report = await new RunRunner(second, output).RunAsync(spec, "restart-run", "azurestorage", default);

        Assert.Equal(4, report.Rounds);
        Assert.Contains("attaching", output.ToString(), StringComparison.Ordinal);
        var manifests = await second.Services.GetRequiredService<ICheckpointStore>().ListAsync("checkpoints", "restart-run", default);
        Assert.Equal([0, 1, 2, 3, 4], manifests.Select(m => m.Round));
        for (var i = 1; i < manifests.Count; i++)
        {
            Assert.Equal(manifests[i - 1].Model.Sha256, manifests[i].ParentModelSha256);
        }
    }

    [Fact]
    public async Task Train_AzureStorageRunThatFails_ReportsWhyItFailed()
    {
        // The Azure Storage backend keeps a failure's message as the instance's output, not in its failure details.
        var (config, data) = await LocalSilos.CreateAsync(azurite, "whyfail", new SyntheticOptions(2, 6, 8, 100, 30, null, 9));
        var spec = Spec("whyfail-run", data, rounds: 2) with { Data = new DataSpec { Classes = 6, Label = "no-such-column" } };
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "flhubwhy" + Guid.NewGuid().ToString("N")[..6],
            Configuration = config,
        });

        var failed = await Assert.ThrowsAsync<RunFailedException>(() => new RunRunner(host, TextWriter.Null).RunAsync(spec, "whyfail-run", "azurestorage", default));
        Assert.Contains("whyfail-silo-1", failed.Message, StringComparison.Ordinal);
        Assert.Contains("no-such-column", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("no details", failed.Message, StringComparison.Ordinal);
    }

    private static TabularData Union(IReadOnlyList<TabularData> parts)
    {
        var columns = parts[0].Columns;
        return new TabularData(
            parts.SelectMany(p => p.Features).ToArray(),
            parts.SelectMany(p => p.Labels).ToArray(),
            parts.Sum(p => p.Rows),
            columns,
            parts[0].FeatureNames);
    }

    private static double Accuracy(RunSpec spec, IReadOnlyList<NamedTensor> state, TabularData test)
    {
        var r = LocalTrainer.Evaluate(spec.Model, spec.Data.Classes, state, test);
        return (double)r.Correct / r.Examples;
    }
}
