using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace FederatedFunctions.Adapters;

/// <summary>First-writer-wins blob writes, for outputs that a re-executed activity must not replace.</summary>
internal static class BlobWrites
{
    /// <summary>Uploads <paramref name="bytes"/> unless the blob exists; returns null when this call wrote it, else the bytes already there.</summary>
    public static async Task<ReadOnlyMemory<byte>?> UploadIfAbsentAsync(BlobClient blob, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        try
        {
            await blob.UploadAsync(
                BinaryData.FromBytes(bytes),
                new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } },
                cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            return (await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToMemory();
        }
    }
}
