using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Silo;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>A silo's storage on Azure Blob Storage: the data and private areas in the data container, the outbox in the outbox container.</summary>
/// <remarks>
/// Both clients carry the silo's own credential. The orchestrator's blobs (global models, job documents) are read through
/// <paramref name="orchestratorBlobs"/>: in process, the orchestrator's checkpoint store; in a silo job, a client with the
/// silo identity's read grant on the checkpoint container. Every such read is checked against its size and SHA-256.
/// In process, what a write leaves in the outbox (the bytes written, or those a first writer left) is also kept in
/// <paramref name="recent"/>, for the aggregation that reads it next (<see cref="SiloUpdateStore"/>).
/// </remarks>
/// <param name="siloId">The silo.</param>
/// <param name="data">The data container, with the silo's credential.</param>
/// <param name="outbox">The outbox container (may be the data container), with the silo's credential.</param>
/// <param name="orchestratorBlobs">Reads a blob of the orchestrator's storage and checks it against its reference (<see cref="IntegrityException"/> otherwise).</param>
/// <param name="recent">Blobs this process wrote lately, when the orchestrator's side runs in this process; else null.</param>
public sealed class BlobSiloStorage(string siloId, BlobContainerClient data, BlobContainerClient outbox, Func<BlobRef, CancellationToken, Task<byte[]>> orchestratorBlobs, RecentBlobs? recent = null) : ISiloStorage
{
    /// <inheritdoc />
    public string SiloId => siloId;

    /// <inheritdoc />
    public async Task<string?> GetVersionAsync(SiloArea area, string path, CancellationToken cancellationToken)
    {
        try
        {
            return (await Blob(area, path).GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Value.ETag.ToString();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<Stream?> OpenReadAsync(SiloArea area, string path, CancellationToken cancellationToken)
    {
        try
        {
            return await Blob(area, path).OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<byte[]?> ReadAsync(SiloArea area, string path, CancellationToken cancellationToken)
    {
        try
        {
            return (await Blob(area, path).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<byte[]?> WriteIfAbsentAsync(SiloArea area, string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var stored = await BlobWrites.UploadIfAbsentAsync(Blob(area, path), bytes, cancellationToken).ConfigureAwait(false);
        if (area == SiloArea.Outbox)
        {
            recent?.Remember(Uri(area, path), stored ?? bytes);
        }

        return stored?.ToArray();
    }

    /// <inheritdoc />
    public async Task WriteAsync(SiloArea area, string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await Blob(area, path).UploadAsync(BinaryData.FromBytes(bytes), overwrite: true, cancellationToken).ConfigureAwait(false);
        if (area == SiloArea.Outbox)
        {
            recent?.Remember(Uri(area, path), bytes);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<SiloBlobInfo> ListAsync(SiloArea area, string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var container = area == SiloArea.Outbox ? outbox : data;
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken).ConfigureAwait(false))
        {
            yield return new SiloBlobInfo(item.Name, item.Properties.ContentLength ?? 0, item.Properties.ETag?.ToString("H") ?? string.Empty);
        }
    }

    /// <inheritdoc />
    public string Uri(SiloArea area, string path) => BlobCheckpointStore.PlainUri(Blob(area, path));

    /// <inheritdoc />
    public Task<byte[]> ReadOrchestratorBlobAsync(BlobRef blob, CancellationToken cancellationToken) => orchestratorBlobs(blob, cancellationToken);

    private BlobClient Blob(SiloArea area, string path) =>
        area == SiloArea.Outbox ? outbox.GetBlobClient(path) : data.GetBlobClient(path);
}

/// <summary>Reads blobs by reference and checks them.</summary>
public static class BlobRefChecks
{
    /// <summary>Downloads <paramref name="reference"/> with <paramref name="container"/>'s credential and checks its size and SHA-256.</summary>
    /// <exception cref="IntegrityException">The blob is missing, outside that container, or differs from the reference.</exception>
    public static async Task<byte[]> ReadAsync(BlobContainerClient container, BlobRef reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(reference);
        var parts = new BlobUriBuilder(new System.Uri(reference.Uri));
        if (parts.AccountName != container.AccountName || parts.BlobContainerName != container.Name || string.IsNullOrEmpty(parts.BlobName))
        {
            throw new IntegrityException($"Blob {reference.Uri} is not in container {container.Name} of account {container.AccountName}.");
        }

        byte[] bytes;
        try
        {
            bytes = (await container.GetBlobClient(parts.BlobName).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new IntegrityException($"Blob {reference.Uri} does not exist.");
        }

        Verify(reference, bytes);
        return bytes;
    }

    /// <summary>Throws unless <paramref name="bytes"/> has the reference's size and SHA-256.</summary>
    /// <exception cref="IntegrityException">Either differs.</exception>
    public static void Verify(BlobRef reference, ReadOnlySpan<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (bytes.Length != reference.Bytes)
        {
            throw new IntegrityException($"Blob {reference.Uri} has {bytes.Length} bytes; {reference.Bytes} were recorded.");
        }

        var sha = FederatedFunctions.Core.Hashing.Sha256Hex(bytes);
        if (sha != reference.Sha256)
        {
            throw new IntegrityException($"Blob {reference.Uri} hashes to {sha}; {reference.Sha256} was recorded.");
        }
    }
}
