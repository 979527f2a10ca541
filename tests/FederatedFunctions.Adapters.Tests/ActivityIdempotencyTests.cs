using System.Text.Json;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Logging.Abstractions;

namespace FederatedFunctions.Adapters.Tests;

/// <summary>
/// At-least-once delivery: every activity's service run twice (one after the other, and two at once) against the real
/// blob adapters on Azurite leaves the same blobs and returns the same result.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ActivityIdempotencyTests(AzuriteFixture azurite)
{
    private const string Run = "idem-run";
    private static readonly string[] SiloIds = ["idem-a", "idem-b", "idem-c"];

    [Fact]
    public async Task EveryActivity_ExecutedTwice_LeavesTheSameBlobsAndReturnsTheSameResult()
    {
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, SiloIds, TimeSpan.FromHours(1));
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = entries.ToDictionary(e => e.Key, e => e.Value.Entry) }));
        var data = SyntheticData.Generate(new SyntheticOptions(3, 3, 4, 120, 40, null, 8));
        for (var i = 0; i < SiloIds.Length; i++)
        {
            var container = registry.GetContainer(SiloIds[i]);
            foreach (var (name, table) in new[] { ("data/train.csv", data[i].Train), ("data/test.csv", data[i].Test) })
            {
                using var ms = new MemoryStream();
                await TabularWriter.WriteCsvAsync(ms, table, "label");
                ms.Position = 0;
                await container.GetBlobClient(name).UploadAsync(ms, overwrite: true);
            }
        }

        var container0 = "idem-checkpoints";
        var store = new BlobCheckpointStore(azurite.Blobs);
        var engine = new TorchTensorEngine();
        var catalog = new SiloCatalog(registry, [new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache()))]);
        var checkpointsService = new CheckpointService(store, engine);
        var jobs = new SiloJobService(catalog, store, new SiloUpdateStore(registry), NullLogger<SiloJobService>.Instance);
        var aggregation = new AggregationService(store, new SiloUpdateStore(registry), engine, NullLogger<AggregationService>.Instance);
        var spec = new RunSpec
        {
            RunId = Run,
            Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 4, Hidden = [8] },
            Data = new DataSpec { Classes = 3 },
            Silos = SiloIds,
            Checkpoints = new CheckpointSpec { Container = container0 },
        };
        var when = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var containers = SiloIds.Select(registry.GetContainer).Concat(SiloIds.Select(registry.GetOutbox)).Append(azurite.Blobs.GetBlobContainerClient(container0)).ToArray();

        var init = await TwiceAsync(containers, () => checkpointsService.InitializeAsync(
            new InitializeModelRequest(Run, container0, "fedavg", spec.Model, 4, 3, 42, when, Spec: spec), default));

        var updates = new List<SiloUpdate>();
        foreach (var silo in SiloIds)
        {
            var job = SiloJob.First(container0, new SiloStep(Train: new TrainRequest(Run, 1, silo, init.Model, spec.Model, spec.Data, spec.Training, 4)));
            updates.Add((await TwiceAsync(containers, () => jobs.StartAsync(job, default))).Result!.Update!);
        }

        var aggregate = await TwiceAsync(containers, () => aggregation.AggregateAsync(
            new AggregateRequest(Run, 1, container0, new StrategySpec(), init.Model, updates, MaxNormRatio: 10), default));
        Assert.Equal(3, aggregate.Participants.Count);

        var evaluation = SiloJob.First(container0, new SiloStep(Evaluate: new EvaluateRequest(Run, 1, SiloIds[0], aggregate.Model, spec.Model, spec.Data, 4)));
        var evaluate = await TwiceAsync(containers, () => jobs.StartAsync(evaluation, default));
        Assert.Equal(40, evaluate.Result!.Evaluation!.Outcome!.Examples);

        var manifest = new RoundManifest { RunId = Run, Round = 1, Strategy = "fedavg", Model = aggregate.Model, ParentModelSha256 = init.Model.Sha256, Participants = aggregate.Participants, CreatedAt = when };
        await TwiceAsync(containers, () => checkpointsService.CommitAsync(new CommitRoundRequest(container0, manifest), default));
        Assert.Equal(1, (await store.GetLatestAsync(container0, Run, default))!.Round);

        // A late duplicate of round 0's commit does not move the pointer back.
        await checkpointsService.InitializeAsync(new InitializeModelRequest(Run, container0, "fedavg", spec.Model, 4, 3, 42, when, Spec: spec), default);
        Assert.Equal(1, (await store.GetLatestAsync(container0, Run, default))!.Round);
    }

    // Runs the call, snapshots every blob, runs it again, and then twice at once; blobs and results must not change.
    private static async Task<T> TwiceAsync<T>(IReadOnlyList<BlobContainerClient> containers, Func<Task<T>> call)
    {
        var first = await call();
        var after = await SnapshotAsync(containers);
        var second = await call();
        var concurrent = await Task.WhenAll(call(), call());

        Assert.Equal(after, await SnapshotAsync(containers));
        var expected = JsonSerializer.Serialize(first);
        Assert.All(new[] { second }.Concat(concurrent), r => Assert.Equal(expected, JsonSerializer.Serialize(r)));
        return first;
    }

    private static async Task<SortedDictionary<string, string>> SnapshotAsync(IReadOnlyList<BlobContainerClient> containers)
    {
        var blobs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in containers)
        {
            await foreach (var item in c.GetBlobsAsync())
            {
                var content = (await c.GetBlobClient(item.Name).DownloadContentAsync()).Value.Content;
                blobs[$"{c.Name}/{item.Name}"] = Hashing.Sha256Hex(content.ToMemory().Span);
            }
        }

        return blobs;
    }
}
