using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Reads a blob a silo reported and checks it against the reference in history: present, same size, same SHA-256.</summary>
internal static class VerifiedReads
{
    /// <summary>The blob's bytes, or the refusal (<c>missing</c>, <c>truncated</c>, <c>sha256-mismatch</c>) that names the silo.</summary>
    public static async Task<(ReadOnlyMemory<byte>? Bytes, RejectedUpdate? Refusal)> ReadAsync(IUpdateStore updates, string siloId, BlobRef reference, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> bytes;
        try
        {
            bytes = await updates.ReadUpdateAsync(siloId, reference, cancellationToken).ConfigureAwait(false);
        }
        catch (UpdateUnavailableException ex)
        {
            return (null, new RejectedUpdate(siloId, "missing", ex.Message));
        }

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
