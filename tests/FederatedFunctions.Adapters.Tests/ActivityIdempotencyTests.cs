using System.Text.Json;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Local;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
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
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = entries.ToDictionary() }));
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
        var backend = new LocalTorchSiloBackend(registry);
        var checkpointsService = new CheckpointService(store);
        var silos = new SiloTaskService(store, backend);
        var aggregation = new AggregationService(store, new SiloUpdateStore(registry), NullLogger<AggregationService>.Instance);
        var spec = new RunSpec
        {
            RunId = Run,
            Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 4, Hidden = [8] },
            Data = new DataSpec { Classes = 3 },
            Silos = SiloIds,
            Checkpoints = new CheckpointSpec { Container = container0 },
        };
        var when = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var containers = SiloIds.Select(registry.GetContainer).Append(azurite.Blobs.GetBlobContainerClient(container0)).ToArray();

        var init = await TwiceAsync(containers, () => checkpointsService.InitializeAsync(
            new InitializeModelRequest(Run, container0, "fedavg", spec.Model, 4, 3, 42, when, Spec: spec), default));

        var updates = new List<SiloUpdate>();
        foreach (var silo in SiloIds)
        {
            var request = new TrainRequest(Run, 1, silo, init.Model, spec.Model, spec.Data, spec.Training, 4);
            updates.Add(await TwiceAsync(containers, () => silos.TrainAsync(request, default)));
        }

        var aggregate = await TwiceAsync(containers, () => aggregation.AggregateAsync(
            new AggregateRequest(Run, 1, container0, "fedavg", init.Model, updates, MaxNormRatio: 10), default));
        Assert.Equal(3, aggregate.Participants.Count);

        var evaluate = await TwiceAsync(containers, () => silos.EvaluateAsync(new EvaluateRequest(Run, 1, SiloIds[0], aggregate.Model, spec.Model, spec.Data, 4), default));
        Assert.Equal(40, evaluate.Outcome!.Examples);

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
