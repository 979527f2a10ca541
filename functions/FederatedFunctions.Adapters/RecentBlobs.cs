using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;

namespace FederatedFunctions.Adapters;

/// <summary>The bytes of the small blobs this process wrote lately, so that a step that reads one back in this process does not download it again.</summary>
/// <remarks>
/// <para>Why: a round writes blobs that the next step reads at once. The aggregation reads the updates that silo steps
/// running in this process (the <c>local</c> compute, a simulation's) have just written, and the next round's steps and
/// the next aggregation read the model it has just written. Each of those reads is a round trip to storage on the round's
/// critical path; a hit here is a copy in memory.</para>
/// <para>What is kept: what a blob holds after this process wrote it (the bytes written, or those an earlier writer left
/// when first writer won), under the blob's URI without its query, which callers pass as
/// <c>BlobCheckpointStore.PlainUri</c> gives it. A hit of <see cref="TryGet(BlobRef, out ReadOnlyMemory{byte})"/> has the
/// reference's size and SHA-256, so it is never other bytes than those history names; <see cref="TryGet(string, out ReadOnlyMemory{byte})"/>
/// is unchecked, and its callers check what they use. A hit does not show that storage still holds the bytes: a blob
/// changed or deleted in storage by another process after this one wrote it is not noticed. Two writes of one blob at
/// once in this process may leave the one that lost in storage here; a checked hit then misses and reads storage. The
/// bytes lent are never written, by this class or by its callers.</para>
/// <para>Bounded: blobs of 1 byte up to a quarter of the capacity are kept, at most <see cref="MaxEntries"/> of them, and
/// the oldest written are dropped first, so the bytes held stay under the capacity however many rounds and silos. A
/// capacity of 0 keeps nothing. Thread-safe.</para>
/// </remarks>
public sealed class RecentBlobs
{
    /// <summary>The default capacity: 64 MiB.</summary>
    public const long DefaultCapacityBytes = 64L * 1024 * 1024;

    /// <summary>Most blobs held at once, so that many tiny blobs do not hold more in keys than in bytes.</summary>
    public const int MaxEntries = 4096;

    private readonly Lock gate = new();
    private readonly Dictionary<string, LinkedListNode<(string Uri, byte[] Bytes)>> entries = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Uri, byte[] Bytes)> order = new();
    private long held;

    /// <summary>Keeps up to <paramref name="capacityBytes"/> bytes of blobs; 0 keeps nothing.</summary>
    public RecentBlobs(long capacityBytes = DefaultCapacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        CapacityBytes = capacityBytes;
    }

    /// <summary>Most bytes held in all.</summary>
    public long CapacityBytes { get; }

    /// <summary>The largest blob kept: a quarter of the capacity.</summary>
    public long MaxEntryBytes => CapacityBytes / 4;

    /// <summary>Bytes held now.</summary>
    public long HeldBytes
    {
        get
        {
            lock (gate)
            {
                return held;
            }
        }
    }

    /// <summary>Blobs held now.</summary>
    public int Count
    {
        get
        {
            lock (gate)
            {
                return entries.Count;
            }
        }
    }

    /// <summary>
    /// Records that the blob at <paramref name="uri"/> now holds <paramref name="bytes"/> (copied): kept when its size is
    /// within bounds, and in every case no longer answered with what it held before.
    /// </summary>
    public void Remember(string uri, ReadOnlyMemory<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        var copy = bytes.Length > 0 && bytes.Length <= MaxEntryBytes ? bytes.ToArray() : null;
        lock (gate)
        {
            if (entries.Remove(uri, out var old))
            {
                order.Remove(old);
                held -= old.Value.Bytes.Length;
            }

            if (copy is null)
            {
                return;
            }

            entries[uri] = order.AddLast((uri, copy));
            held += copy.Length;
            while (held > CapacityBytes || entries.Count > MaxEntries)
            {
                var oldest = order.First!;
                order.RemoveFirst();
                entries.Remove(oldest.Value.Uri);
                held -= oldest.Value.Bytes.Length;
            }
        }
    }

    /// <summary>The bytes last remembered for <paramref name="uri"/>, if still held; unchecked, so callers check what they use.</summary>
    public bool TryGet(string uri, out ReadOnlyMemory<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(uri);
        lock (gate)
        {
            if (entries.TryGetValue(uri, out var node))
            {
                bytes = node.Value.Bytes;
                return true;
            }
        }

        bytes = ReadOnlyMemory<byte>.Empty;
        return false;
    }

    /// <summary>The bytes of <paramref name="reference"/>, if held with its size and SHA-256.</summary>
    public bool TryGet(BlobRef reference, out ReadOnlyMemory<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (TryGet(reference.Uri, out var kept) && Matches(kept.Span, reference))
        {
            bytes = kept;
            return true;
        }

        bytes = ReadOnlyMemory<byte>.Empty;
        return false;
    }

    /// <summary>Whether <paramref name="bytes"/> have <paramref name="reference"/>'s size and SHA-256.</summary>
    public static bool Matches(ReadOnlySpan<byte> bytes, BlobRef reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return bytes.Length == reference.Bytes && !string.IsNullOrEmpty(reference.Sha256) && string.Equals(Hashing.Sha256Hex(bytes), reference.Sha256, StringComparison.Ordinal);
    }
}
