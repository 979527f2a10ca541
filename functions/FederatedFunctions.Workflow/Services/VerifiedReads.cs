using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Reads a blob a silo reported and checks it against the reference in history: present, same size, same SHA-256.</summary>
internal static class VerifiedReads
{
    /// <summary>The blob's bytes, or the refusal (<c>missing</c>, <c>truncated</c>, <c>sha256-mismatch</c>) that names the silo.</summary>
    /// <param name="updates">The outboxes.</param>
    /// <param name="siloId">The silo (or virtual silo) that reported the blob, which a refusal names.</param>
    /// <param name="reference">The blob as reported.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <param name="outbox">The silo whose outbox holds the blob, when not <paramref name="siloId"/>'s own (a virtual silo's host).</param>
    /// <param name="offset">Where the reported bytes start in the blob, when it holds several updates.</param>
    public static async Task<(ReadOnlyMemory<byte>? Bytes, RejectedUpdate? Refusal)> ReadAsync(IUpdateStore updates, string siloId, BlobRef reference, CancellationToken cancellationToken, string? outbox = null, long? offset = null)
    {
        ReadOnlyMemory<byte> bytes;
        try
        {
            bytes = offset is { } at
                ? await updates.ReadUpdateRangeAsync(outbox ?? siloId, reference, at, cancellationToken).ConfigureAwait(false)
                : await updates.ReadUpdateAsync(outbox ?? siloId, reference, cancellationToken).ConfigureAwait(false);
        }
        catch (UpdateUnavailableException ex)
        {
            return (null, new RejectedUpdate(siloId, "missing", ex.Message));
        }

        return Check(siloId, reference, bytes);
    }

    /// <summary>Bytes already read for <paramref name="reference"/>, or the refusal (<c>truncated</c>, <c>sha256-mismatch</c>) that names the silo.</summary>
    public static (ReadOnlyMemory<byte>? Bytes, RejectedUpdate? Refusal) Check(string siloId, BlobRef reference, ReadOnlyMemory<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (bytes.Length != reference.Bytes)
        {
            return (null, new RejectedUpdate(siloId, "truncated", $"blob has {bytes.Length} bytes, the silo reported {reference.Bytes}"));
        }

        var sha = Hashing.Sha256Hex(bytes.Span);
        return string.Equals(sha, reference.Sha256, StringComparison.Ordinal)
            ? (bytes, null)
            : (null, new RejectedUpdate(siloId, "sha256-mismatch", $"blob hashes to {sha}, the silo reported {reference.Sha256}"));
    }
}
