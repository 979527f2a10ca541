using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Services;

namespace FederatedFunctions.Workflow.Tests.Services;

public sealed class UpdateReadsTests
{
    private const string Host = "host";
    private readonly CountingOutbox outbox = new();

    // A group blob of `count` slices of `size` bytes each (slice i filled with i + 1), and the updates that report them.
    private List<SiloUpdate> Group(string uri, int count, int size, int firstIndex = 1)
    {
        var blob = new byte[count * size];
        var updates = new List<SiloUpdate>();
        for (var i = 0; i < count; i++)
        {
            var slice = blob.AsSpan(i * size, size);
            slice.Fill((byte)(firstIndex + i));
            updates.Add(new SiloUpdate(VirtualSilos.Id(Host, firstIndex + i), 1, new BlobRef(uri, Hashing.Sha256Hex(slice), size), 10, 1, null, Host, (long)i * size));
        }

        outbox.Blobs[uri] = blob;
        return updates;
    }

    private static async Task<List<(ReadOnlyMemory<byte>? Bytes, RejectedUpdate? Refusal)>> ReadAllAsync(UpdateReads reads, int count)
    {
        var all = new List<(ReadOnlyMemory<byte>?, RejectedUpdate?)>();
        for (var i = 0; i < count; i++)
        {
            all.Add(await reads.ReadAsync(i));
        }

        return all;
    }

    [Fact]
    public async Task TenSlicesOfOneBlob_AreOneRangeRead_EachCheckedAgainstItsOwnReference()
    {
        var updates = Group("mem://host/outbox/r/round-00001/group-1.safetensors", 10, 1_000);

        var read = await ReadAllAsync(new UpdateReads(outbox, updates, default), updates.Count);

        Assert.Equal(1, outbox.RangeReads);
        Assert.All(read, (r, i) =>
        {
            Assert.Null(r.Refusal);
            Assert.Equal(1_000, r.Bytes!.Value.Length);
            Assert.All(r.Bytes!.Value.ToArray(), b => Assert.Equal(i + 1, b));
        });
    }

    [Fact]
    public async Task TheSlicesOfARun_AskedForInAnyOrder_AreStillOneRangeRead()
    {
        // The aggregation reads several updates at once, so a run's slices may be asked for last first.
        var updates = Group("mem://host/outbox/r/round-00001/group-1.safetensors", 2, 1_000);
        var reads = new UpdateReads(outbox, updates, default);

        var second = await reads.ReadAsync(1);
        var first = await reads.ReadAsync(0);

        Assert.Equal((1, 0), (outbox.RangeReads, outbox.WholeReads));
        Assert.Null(first.Refusal);
        Assert.Null(second.Refusal);
        Assert.All(first.Bytes!.Value.ToArray(), b => Assert.Equal(1, b));
        Assert.All(second.Bytes!.Value.ToArray(), b => Assert.Equal(2, b));
    }

    [Fact]
    public async Task ATamperedSlice_IsRefusedAlone()
    {
        var updates = Group("mem://host/outbox/r/round-00001/group-1.safetensors", 4, 100);
        outbox.Blobs[updates[2].Update.Uri][250] ^= 0xFF;

        var read = await ReadAllAsync(new UpdateReads(outbox, updates, default), updates.Count);

        Assert.Equal([null, null, "sha256-mismatch", null], read.Select(r => r.Refusal?.Reason));
        Assert.Equal("host#3", read[2].Refusal!.SiloId);
    }

    [Fact]
    public async Task AMissingBlob_RefusesEachSliceAsMissing_AndAShortOne_TheSlicesItDoesNotCover()
    {
        var missing = Group("mem://host/outbox/r/round-00001/group-1.safetensors", 3, 100);
        outbox.Blobs.Remove(missing[0].Update.Uri);
        var short_ = Group("mem://host/outbox/r/round-00001/group-2.safetensors", 3, 100, firstIndex: 4);
        outbox.Blobs[short_[0].Update.Uri] = outbox.Blobs[short_[0].Update.Uri][..150];
        var pass = missing.Concat(short_).ToArray();

        var read = await ReadAllAsync(new UpdateReads(outbox, pass, default), pass.Length);

        Assert.Equal(["missing", "missing", "missing", null, "truncated", "truncated"], read.Select(r => r.Refusal?.Reason));
        Assert.Equal(2, outbox.RangeReads);
    }

    [Fact]
    public async Task SlicesOfTwoBlobsInterleaved_OrFarApart_AreReadSeparately()
    {
        var a = Group("mem://host/outbox/r/round-00001/group-1.safetensors", 2, 100);
        var b = Group("mem://host/outbox/r/round-00001/group-2.safetensors", 2, 100, firstIndex: 3);
        var far = Group("mem://host/outbox/r/round-00001/group-3.safetensors", 10, 100, firstIndex: 5);
        var pass = new[] { a[0], b[0], a[1], b[1], far[0], far[9] };

        var read = await ReadAllAsync(new UpdateReads(outbox, pass, default), pass.Length);

        Assert.All(read, r => Assert.Null(r.Refusal));
        // a and b alternate (four runs of one), and far[0] and far[9] span ten slices for two (two runs of one).
        Assert.Equal(6, outbox.RangeReads);
    }

    [Fact]
    public async Task WholeBlobUpdates_AreReadOneByOne_AndTwoPassesReadTwice()
    {
        var updates = Enumerable.Range(1, 3).Select(i =>
        {
            var uri = $"mem://silo-{i}/outbox/r/round-00001/update.safetensors";
            outbox.Blobs[uri] = [(byte)i];
            return new SiloUpdate($"silo-{i}", 1, new BlobRef(uri, Hashing.Sha256Hex(outbox.Blobs[uri]), 1), 10, 1, null);
        }).Concat(Group("mem://host/outbox/r/round-00001/group-1.safetensors", 3, 10)).ToArray();

        await ReadAllAsync(new UpdateReads(outbox, updates, default), updates.Length);
        await ReadAllAsync(new UpdateReads(outbox, updates, default), updates.Length);

        Assert.Equal((6, 2), (outbox.WholeReads, outbox.RangeReads));
    }

    private sealed class CountingOutbox : IUpdateStore
    {
        public Dictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);

        public int WholeReads { get; private set; }

        public int RangeReads { get; private set; }

        public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
        {
            WholeReads++;
            return Task.FromResult<ReadOnlyMemory<byte>>(Blobs.TryGetValue(update.Uri, out var bytes) ? bytes : throw new UpdateUnavailableException($"{update.Uri} does not exist"));
        }

        public Task<ReadOnlyMemory<byte>> ReadUpdateRangeAsync(string siloId, BlobRef update, long offset, CancellationToken cancellationToken)
        {
            Assert.Equal(Host, siloId);
            RangeReads++;
            if (!Blobs.TryGetValue(update.Uri, out var bytes))
            {
                throw new UpdateUnavailableException($"{update.Uri} does not exist");
            }

            return Task.FromResult<ReadOnlyMemory<byte>>(offset >= bytes.Length ? ReadOnlyMemory<byte>.Empty : bytes.AsMemory((int)offset, (int)Math.Min(update.Bytes, bytes.Length - offset)));
        }

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => Task.FromResult<byte[]?>(null);
    }
}
