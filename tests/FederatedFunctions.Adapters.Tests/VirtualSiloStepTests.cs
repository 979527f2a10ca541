using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Logging.Abstractions;

namespace FederatedFunctions.Adapters.Tests;

/// <summary>
/// A simulation's group step on a real host silo on Azurite: its virtual silos' updates share blobs, each update a slice
/// the aggregator reads alone (a range read) with the orchestrator's grant, and a re-executed step reports what is stored.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class VirtualSiloStepTests(AzuriteFixture azurite)
{
    private const string Container = "virtual-checkpoints";

    [Fact]
    public async Task GroupStep_TwelveVirtualSilos_OneBlobOfSlicesThatAggregateAsTwelveParticipants()
    {
        var (jobs, aggregation, registry, init, spec, host) = await StartAsync("vhost-a", "vs-a");
        var batch = new VirtualBatch(1, [.. Enumerable.Range(1, 12)], spec.Simulation!);
        var step = SiloJob.First(Container, new SiloStep(Train: new TrainRequest(spec.RunId!, 1, host, init.Model, spec.Model, spec.Data, spec.Training, 4, Virtual: batch)));

        var first = (await jobs.StartAsync(step, default)).Result!.Updates!;
        var again = (await jobs.StartAsync(step, default)).Result!.Updates!;

        Assert.Equal(Enumerable.Range(1, 12).Select(i => $"{host}#{i}"), first.Select(u => u.SiloId));
        Assert.Equal(first, again, UpdateComparer.Instance);
        var blob = Assert.Single(first.Select(u => u.Update.Uri).Distinct());
        Assert.EndsWith(BlobLayout.VirtualGroupUpdates(spec.RunId!, 1, 1, 1), blob, StringComparison.Ordinal);
        Assert.All(first, u => Assert.Equal(host, u.Host));
        Assert.Equal(first.Select(u => u.Offset!.Value), first.Select((u, i) => first.Take(i).Sum(p => p.Update.Bytes)));

        // Each slice, read alone as the aggregator reads it, is that virtual silo's update: a whole safetensors file.
        var store = new SiloUpdateStore(registry);
        var slice = await ((IUpdateStore)store).ReadUpdateRangeAsync(host, first[5].Update, first[5].Offset!.Value, default);
        Assert.Equal(first[5].Update.Sha256, Hashing.Sha256Hex(slice.Span));
        Assert.Equal(2, Safetensors.Parse(slice).Tensors.Count);

        // Added in the order the step wrote them (h#2 before h#10), so the twelve slices are one range read.
        var reads = new CountedReads(store);
        var counted = new AggregationService(new BlobCheckpointStore(azurite.Blobs), reads, new TorchTensorEngine(), NullLogger<AggregationService>.Instance);
        var aggregate = await counted.AggregateAsync(new AggregateRequest(spec.RunId!, 1, Container, new StrategySpec(), init.Model, first), default);
        Assert.Equal(first.Select(u => u.SiloId), aggregate.Participants.Select(p => p.SiloId));
        Assert.Empty(aggregate.Rejected);
        Assert.Equal((1, 0), (reads.Ranges, reads.Wholes));
        Assert.Equal(aggregate.Model, (await aggregation.AggregateAsync(new AggregateRequest(spec.RunId!, 1, Container, new StrategySpec(), init.Model, [.. first.Reverse()]), default)).Model);
    }

    [Fact]
    public async Task GroupStep_ReExecutedOverOtherStoredBytes_ReportsTheStoredSlices()
    {
        var (jobs, _, registry, init, spec, host) = await StartAsync("vhost-b", "vs-b");
        var batch = new VirtualBatch(2, [3, 4, 5], spec.Simulation!);
        var step = SiloJob.First(Container, new SiloStep(Train: new TrainRequest(spec.RunId!, 1, host, init.Model, spec.Model, spec.Data, spec.Training, 4, Virtual: batch)));
        var first = (await jobs.StartAsync(step, default)).Result!.Updates!;

        // Another execution's bytes (as another CPU would compute): the middle update's first value differs.
        var outbox = registry.GetOutbox(host).GetBlobClient(BlobLayout.VirtualGroupUpdates(spec.RunId!, 1, 2, 1));
        var stored = (await outbox.DownloadContentAsync()).Value.Content.ToArray();
        var middle = Safetensors.Parse(stored.AsMemory((int)first[1].Offset!.Value, (int)first[1].Update.Bytes));
        var changed = middle.Tensors.Select((t, i) => i > 0 ? t : t with { Data = BitConverter.GetBytes(BitConverter.ToSingle(t.Data.Span) + 1f).Concat(t.Data.ToArray().Skip(4)).ToArray() }).ToArray();
        var other = Safetensors.Serialize(changed);
        Assert.Equal(first[1].Update.Bytes, other.Length);
        other.CopyTo(stored, (int)first[1].Offset!.Value);
        await outbox.UploadAsync(new BinaryData(stored), overwrite: true);

        var again = (await jobs.StartAsync(step, default)).Result!.Updates!;

        Assert.Equal(first[0].Update, again[0].Update);
        Assert.Equal(first[2].Update, again[2].Update);
        Assert.NotEqual(first[1].Update.Sha256, again[1].Update.Sha256);
        Assert.Equal(Hashing.Sha256Hex(other), again[1].Update.Sha256);
    }

    [Fact]
    public async Task RangeRead_OffsetOrReferenceWrong_RefusedByItsVirtualSiloOnly()
    {
        var (jobs, aggregation, registry, init, spec, host) = await StartAsync("vhost-c", "vs-c");
        var batch = new VirtualBatch(1, [1, 2, 3, 4], spec.Simulation!);
        var step = SiloJob.First(Container, new SiloStep(Train: new TrainRequest(spec.RunId!, 1, host, init.Model, spec.Model, spec.Data, spec.Training, 4, Virtual: batch)));
        var updates = (await jobs.StartAsync(step, default)).Result!.Updates!.ToArray();
        updates[1] = updates[1] with { Offset = updates[1].Offset + 1 };
        updates[2] = updates[2] with { Offset = 1L << 40 };

        var aggregate = await aggregation.AggregateAsync(new AggregateRequest(spec.RunId!, 1, Container, new StrategySpec(), init.Model, updates), default);

        Assert.Equal([updates[0].SiloId, updates[3].SiloId], aggregate.Participants.Select(p => p.SiloId));
        Assert.Equal([(updates[1].SiloId, "sha256-mismatch"), (updates[2].SiloId, "truncated")], aggregate.Rejected.Select(r => (r.SiloId, r.Reason)));

        // A slice of a blob outside the host's outbox is refused before any read.
        var foreign = updates[0].Update with { Uri = updates[0].Update.Uri.Replace("/outbox/", "/data/", StringComparison.Ordinal) };
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => ((IUpdateStore)new SiloUpdateStore(registry)).ReadUpdateRangeAsync(host, foreign, 0, default));
    }

    [Fact]
    public async Task GroupStep_WithRecentBlobs_TheAggregationReadsWhatThisProcessWroteFromMemory_AndGivesTheSameModel()
    {
        var recent = new RecentBlobs();
        var (jobs, aggregation, registry, init, spec, host) = await StartAsync("vhost-d", "vs-d", recent);
        var batch = new VirtualBatch(1, [.. Enumerable.Range(1, 12)], spec.Simulation!);
        var step = SiloJob.First(Container, new SiloStep(Train: new TrainRequest(spec.RunId!, 1, host, init.Model, spec.Model, spec.Data, spec.Training, 4, Virtual: batch)));
        var updates = (await jobs.StartAsync(step, default)).Result!.Updates!;
        var request = new AggregateRequest(spec.RunId!, 1, Container, new StrategySpec(), init.Model, updates);
        var fromStorage = new AggregationService(new BlobCheckpointStore(azurite.Blobs), new SiloUpdateStore(registry), new TorchTensorEngine(), NullLogger<AggregationService>.Instance);
        var expected = await fromStorage.AggregateAsync(request, default);

        // Storage now holds other bytes, of the same sizes, where the step wrote its group blob and the run its global model.
        var group = registry.GetOutbox(host).GetBlobClient(BlobLayout.VirtualGroupUpdates(spec.RunId!, 1, 1, 1));
        await group.UploadAsync(new BinaryData(new byte[updates.Sum(u => u.Update.Bytes)]), overwrite: true);
        await azurite.Blobs.GetBlobContainerClient(Container).GetBlobClient(BlobLayout.Model(spec.RunId!, 0)).UploadAsync(new BinaryData(new byte[init.Model.Bytes]), overwrite: true);

        var aggregate = await aggregation.AggregateAsync(request, default);

        Assert.Empty(aggregate.Rejected);
        Assert.Equal(updates.Select(u => u.SiloId), aggregate.Participants.Select(p => p.SiloId));
        Assert.Equal(expected.Model, aggregate.Model);
        await Assert.ThrowsAsync<IntegrityException>(() => fromStorage.AggregateAsync(request, default));
    }

    private async Task<(SiloJobService Jobs, AggregationService Aggregation, SiloRegistry Registry, InitializeModelResult Init, RunSpec Spec, string Host)> StartAsync(string host, string runId, RecentBlobs? recent = null)
    {
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, [host], TimeSpan.FromHours(1));
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = entries.ToDictionary(e => e.Key, e => e.Value.Entry) }));
        await LocalSiloProvisioner.WriteSplitsAsync(entries[host], SyntheticData.Generate(new SyntheticOptions(1, 3, 4, 240, 40, null, 8))[0] with { SiloId = host });
        var store = new BlobCheckpointStore(azurite.Blobs, recent);
        var engine = new TorchTensorEngine();
        var catalog = new SiloCatalog(registry, [new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache()), recent)]);
        var spec = new RunSpec
        {
            RunId = runId,
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Silos = [host],
            Simulation = new SimulationSpec { VirtualSilos = 20, Seed = 4 },
            Participation = new ParticipationSpec { SampleCount = 12 },
            Checkpoints = new CheckpointSpec { Container = Container },
        };
        Assert.Empty(RunSpecValidator.Validate(spec));
        var init = await new CheckpointService(store, engine).InitializeAsync(new InitializeModelRequest(runId, Container, "fedavg", spec.Model, 4, 3, 42, DateTimeOffset.UnixEpoch, Spec: spec), default);
        return (
            new SiloJobService(catalog, store, new SiloUpdateStore(registry, recent), NullLogger<SiloJobService>.Instance),
            new AggregationService(store, new SiloUpdateStore(registry, recent), engine, NullLogger<AggregationService>.Instance),
            registry,
            init,
            spec,
            host);
    }

    // Counts the reads the aggregator makes: whole updates, and range reads (a run of slices of one blob each).
    private sealed class CountedReads(IUpdateStore inner) : IUpdateStore
    {
        private int ranges;
        private int wholes;

        public int Ranges => ranges;

        public int Wholes => wholes;

        public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref wholes);
            return inner.ReadUpdateAsync(siloId, update, cancellationToken);
        }

        public Task<ReadOnlyMemory<byte>> ReadUpdateRangeAsync(string siloId, BlobRef update, long offset, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref ranges);
            return inner.ReadUpdateRangeAsync(siloId, update, offset, cancellationToken);
        }

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => inner.ReadOutboxAsync(siloId, path, cancellationToken);
    }

    // Records hold their metrics dictionaries by reference: compare by value.
    private sealed class UpdateComparer : IEqualityComparer<SiloUpdate>
    {
        public static readonly UpdateComparer Instance = new();

        public bool Equals(SiloUpdate? x, SiloUpdate? y) =>
            x is not null && y is not null && x with { Metrics = null } == y with { Metrics = null }
            && (x.Metrics ?? new Dictionary<string, double>()).OrderBy(k => k.Key).SequenceEqual((y.Metrics ?? new Dictionary<string, double>()).OrderBy(k => k.Key));

        public int GetHashCode(SiloUpdate obj) => obj.SiloId.GetHashCode(StringComparison.Ordinal);
    }
}
