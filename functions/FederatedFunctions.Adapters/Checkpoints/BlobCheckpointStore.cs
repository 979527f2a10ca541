using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Adapters.Checkpoints;

/// <summary>Checkpoints in the orchestrator's own blob storage.</summary>
/// <remarks>
/// Layout (see <see cref="BlobLayout"/>): <c>{container}/{runId}/round-NNNNN/model.safetensors</c>, its
/// <c>manifest.json</c>, and <c>{runId}/latest.json</c>. Writes overwrite deterministic names (idempotent under
/// at-least-once execution). The manifest is written after the model, and the pointer after the manifest, so a
/// reader following the pointer never sees a half-written round. Every model read is checked against the
/// size and SHA-256 in its <see cref="BlobRef"/>. With <paramref name="recent"/>, the models and strategy states this
/// store writes are kept there, and a model read whose reference they match is answered without a download.
/// </remarks>
/// <param name="service">The orchestrator's storage account.</param>
/// <param name="recent">Blobs this process wrote lately (the host's one instance), or null to read every model from storage.</param>
public sealed class BlobCheckpointStore(BlobServiceClient service, RecentBlobs? recent = null) : ICheckpointStore
{
    // Commits that race on the latest pointer each win or step back after one re-read; more than a few conflicts in a
    // row means something other than racing commits.
    private const int MaxPointerAttempts = 8;

    private readonly ConcurrentDictionary<string, Task> ensured = new(StringComparer.Ordinal);

    /// <summary>The storage account the store writes to.</summary>
    public BlobServiceClient Service => service;

    /// <inheritdoc />
    public async Task<BlobRef> PutModelAsync(string container, string runId, int round, ReadOnlyMemory<byte> safetensors, bool firstWriterWins, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, BlobLayout.Model(runId, round), cancellationToken).ConfigureAwait(false);
        if (!firstWriterWins)
        {
            await blob.UploadAsync(BinaryData.FromBytes(safetensors), overwrite: true, cancellationToken).ConfigureAwait(false);
            return Written(blob, safetensors);
        }

        return Written(blob, await BlobWrites.UploadIfAbsentAsync(blob, safetensors, cancellationToken).ConfigureAwait(false) ?? safetensors);
    }

    /// <inheritdoc />
    public async Task<BlobRef> PutStrategyStateAsync(string container, string runId, int round, ReadOnlyMemory<byte> safetensors, bool firstWriterWins, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, BlobLayout.StrategyState(runId, round), cancellationToken).ConfigureAwait(false);
        if (!firstWriterWins)
        {
            await blob.UploadAsync(BinaryData.FromBytes(safetensors), overwrite: true, cancellationToken).ConfigureAwait(false);
            return Written(blob, safetensors);
        }

        return Written(blob, await BlobWrites.UploadIfAbsentAsync(blob, safetensors, cancellationToken).ConfigureAwait(false) ?? safetensors);
    }

    // What the blob now holds, remembered for the reads that follow in this process, and its reference.
    private BlobRef Written(BlobClient blob, ReadOnlyMemory<byte> bytes)
    {
        var uri = PlainUri(blob);
        recent?.Remember(uri, bytes);
        return new BlobRef(uri, Hashing.Sha256Hex(bytes.Span), bytes.Length);
    }

    /// <inheritdoc />
    /// <remarks>A model this store wrote lately, with the reference's size and SHA-256, is answered from memory (see <see cref="RecentBlobs"/>).</remarks>
    public async Task<ReadOnlyMemory<byte>> ReadModelAsync(BlobRef model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        var blob = Resolve(model.Uri);
        return recent is not null && recent.TryGet(model, out var held) ? held : await ReadStoredAsync(blob, model, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ReadOnlyMemory<byte>> ReadStoredModelAsync(BlobRef model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        return await ReadStoredAsync(Resolve(model.Uri), model, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<ReadOnlyMemory<byte>> ReadStoredAsync(BlobClient blob, BlobRef model, CancellationToken cancellationToken)
    {
        BinaryData content;
        try
        {
            content = (await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new IntegrityException($"Model blob {model.Uri} does not exist.");
        }

        var bytes = content.ToMemory();
        if (bytes.Length != model.Bytes)
        {
            throw new IntegrityException($"Model blob {model.Uri} has {bytes.Length} bytes; {model.Bytes} were recorded.");
        }

        var sha = Hashing.Sha256Hex(bytes.Span);
        if (!string.Equals(sha, model.Sha256, StringComparison.Ordinal))
        {
            throw new IntegrityException($"Model blob {model.Uri} hashes to {sha}; {model.Sha256} was recorded.");
        }

        return bytes;
    }

    /// <inheritdoc />
    public async Task<BlobRef> CommitRoundAsync(string container, RoundManifest manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest, JsonDefaults.Documents);
        var blob = await BlobAsync(container, BlobLayout.Manifest(manifest.RunId, manifest.Round), cancellationToken).ConfigureAwait(false);

        // The pointer only moves forward: a retried commit of an older round leaves a newer pointer alone. Only commits
        // write it, so reading it while the manifest is written sees what reading it after would: one round trip less.
        var reading = ReadLatestAsync(container, manifest.RunId, cancellationToken);
        await Concurrent.AfterAsync(blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true, cancellationToken), reading).ConfigureAwait(false);

        var manifestRef = new BlobRef(PlainUri(blob), Hashing.Sha256Hex(bytes), bytes.Length);
        var pointer = BinaryData.FromObjectAsJson(new LatestPointer(manifest.RunId, manifest.Round, manifest.Model, manifestRef), JsonDefaults.Documents);
        var pointerBlob = await BlobAsync(container, BlobLayout.Latest(manifest.RunId), cancellationToken).ConfigureAwait(false);
        var (latest, etag) = await reading.ConfigureAwait(false);

        // Written only over the pointer that was read (If-Match, or If-None-Match when there was none): a commit that raced
        // another, such as a late execution of an earlier round's commit, reads the pointer again and writes only if it
        // is still not newer, rather than moving it back over a newer round.
        for (var attempt = 1; latest is null || latest.Round <= manifest.Round; attempt++)
        {
            try
            {
                await pointerBlob.UploadAsync(
                    pointer,
                    new BlobUploadOptions { Conditions = etag is { } read ? new BlobRequestConditions { IfMatch = read } : new BlobRequestConditions { IfNoneMatch = ETag.All } },
                    cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (RequestFailedException ex) when (ex.ErrorCode is "ConditionNotMet" or "BlobAlreadyExists" && attempt < MaxPointerAttempts)
            {
                // Another commit wrote it in between. Anything else (a lease on it, a missing container) is not a race,
                // and fails the commit as it is.
                var failed = etag;
                (latest, etag) = await ReadLatestAsync(container, manifest.RunId, cancellationToken).ConfigureAwait(false);
                if (etag == failed)
                {
                    throw;
                }
            }
        }

        return manifestRef;
    }

    // The latest pointer and its ETag (which the commit writes over), or (null, null) when there is none.
    private async Task<(LatestPointer? Pointer, ETag? ETag)> ReadLatestAsync(string container, string runId, CancellationToken cancellationToken)
    {
        try
        {
            var read = (await service.GetBlobContainerClient(container).GetBlobClient(BlobLayout.Latest(runId)).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value;
            return (read.Content.ToObjectFromJson<LatestPointer>(JsonDefaults.Documents), read.Details.ETag);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return (null, null);
        }
    }

    /// <inheritdoc />
    public async Task<LatestPointer?> GetLatestAsync(string container, string runId, CancellationToken cancellationToken) =>
        (await ReadLatestAsync(container, runId, cancellationToken).ConfigureAwait(false)).Pointer;

    private async Task<BinaryData?> DownloadOrNullAsync(string container, string name, CancellationToken cancellationToken)
    {
        try
        {
            return (await service.GetBlobContainerClient(container).GetBlobClient(name).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RoundManifest>> ListAsync(string container, string runId, CancellationToken cancellationToken)
    {
        var client = service.GetBlobContainerClient(container);
        var manifests = new List<RoundManifest>();
        try
        {
            await foreach (var item in client.GetBlobsAsync(new GetBlobsOptions { Prefix = BlobLayout.RunPrefix(runId) }, cancellationToken).ConfigureAwait(false))
            {
                if (!item.Name.EndsWith("/manifest.json", StringComparison.Ordinal))
                {
                    continue;
                }

                var content = (await client.GetBlobClient(item.Name).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
                manifests.Add(content.ToObjectFromJson<RoundManifest>(JsonDefaults.Documents)!);
            }
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return [];
        }

        return manifests.OrderBy(m => m.Round).ToArray();
    }

    /// <inheritdoc />
    public async Task<RoundManifest?> GetManifestAsync(string container, string runId, int round, CancellationToken cancellationToken)
    {
        var content = await DownloadOrNullAsync(container, BlobLayout.Manifest(runId, round), cancellationToken).ConfigureAwait(false);
        return content?.ToObjectFromJson<RoundManifest>(JsonDefaults.Documents);
    }

    /// <inheritdoc />
    public async Task PutSpecAsync(string container, string runId, ReadOnlyMemory<byte> specJson, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, BlobLayout.Spec(runId), cancellationToken).ConfigureAwait(false);
        await blob.UploadAsync(BinaryData.FromBytes(specJson), overwrite: true, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<byte[]?> GetSpecAsync(string container, string runId, CancellationToken cancellationToken) =>
        (await DownloadOrNullAsync(container, BlobLayout.Spec(runId), cancellationToken).ConfigureAwait(false))?.ToArray();

    /// <inheritdoc />
    public async Task PutAuditAsync(string container, string runId, int round, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, BlobLayout.Audit(runId, round), cancellationToken).ConfigureAwait(false);
        // Already there: written by an earlier execution of the same commit (same bytes: kept), or by a commit of this
        // round that never completed before the run was resumed (different bytes, anchored by no manifest: replaced).
        if (await BlobWrites.UploadIfAbsentAsync(blob, jsonLines, cancellationToken).ConfigureAwait(false) is { } existing
            && !existing.Span.SequenceEqual(jsonLines.Span))
        {
            await blob.UploadAsync(BinaryData.FromBytes(jsonLines), overwrite: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<byte[]> ReadAuditAsync(string container, string runId, int throughRound, CancellationToken cancellationToken)
    {
        var client = service.GetBlobContainerClient(container);
        using var all = new MemoryStream();
        try
        {
            var names = new List<string>();
            await foreach (var item in client.GetBlobsAsync(new GetBlobsOptions { Prefix = BlobLayout.AuditPrefix(runId) }, cancellationToken).ConfigureAwait(false))
            {
                names.Add(item.Name);
            }

            var last = BlobLayout.Audit(runId, throughRound);
            foreach (var name in names.Where(n => string.CompareOrdinal(n, last) <= 0).Order(StringComparer.Ordinal))
            {
                var content = (await client.GetBlobClient(name).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
                all.Write(content.ToMemory().Span);
            }
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return [];
        }

        return all.ToArray();
    }

    /// <inheritdoc />
    public async Task<BlobRef> PutJobRequestAsync(string container, string runId, int round, string jobName, ReadOnlyMemory<byte> document, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, BlobLayout.SiloJobRequest(runId, round, jobName), cancellationToken).ConfigureAwait(false);
        await blob.UploadAsync(BinaryData.FromBytes(document), overwrite: true, cancellationToken).ConfigureAwait(false);
        return new BlobRef(PlainUri(blob), Hashing.Sha256Hex(document.Span), document.Length);
    }

    /// <inheritdoc />
    public async Task<BlobRef> PutDocumentAsync(string container, string path, ReadOnlyMemory<byte> document, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, path, cancellationToken).ConfigureAwait(false);
        await blob.UploadAsync(BinaryData.FromBytes(document), overwrite: true, cancellationToken).ConfigureAwait(false);
        return new BlobRef(PlainUri(blob), Hashing.Sha256Hex(document.Span), document.Length);
    }

    /// <inheritdoc />
    public async Task<byte[]?> GetDocumentAsync(string container, string path, CancellationToken cancellationToken) =>
        (await DownloadOrNullAsync(container, path, cancellationToken).ConfigureAwait(false))?.ToArray();

    /// <inheritdoc />
    public async Task<VersionedDocument?> GetVersionedDocumentAsync(string container, string path, CancellationToken cancellationToken)
    {
        try
        {
            var download = (await service.GetBlobContainerClient(container).GetBlobClient(path).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value;
            return new VersionedDocument(download.Content.ToArray(), download.Details.ETag.ToString());
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<BlobRef?> TryPutDocumentAsync(string container, string path, ReadOnlyMemory<byte> document, string? ifMatch, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, path, cancellationToken).ConfigureAwait(false);
        var conditions = ifMatch is null ? new BlobRequestConditions { IfNoneMatch = ETag.All } : new BlobRequestConditions { IfMatch = new ETag(ifMatch) };
        try
        {
            await blob.UploadAsync(BinaryData.FromBytes(document), new BlobUploadOptions { Conditions = conditions }, cancellationToken).ConfigureAwait(false);
            return new BlobRef(PlainUri(blob), Hashing.Sha256Hex(document.Span), document.Length);
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            // 409: created by another writer under if-none-match; 412: changed since it was read.
            return null;
        }
    }

    /// <inheritdoc />
    public async Task SetCancelledAsync(string container, string runId, bool cancelled, CancellationToken cancellationToken)
    {
        var blob = await BlobAsync(container, BlobLayout.Cancelled(runId), cancellationToken).ConfigureAwait(false);
        if (cancelled)
        {
            await blob.UploadAsync(BinaryData.FromString("{\"cancelled\":true}"), overwrite: true, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await blob.DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<bool> IsCancelledAsync(string container, string runId, CancellationToken cancellationToken) =>
        (await service.GetBlobContainerClient(container).GetBlobClient(BlobLayout.Cancelled(runId)).ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;

    /// <summary>The URI of a blob without any query string, as recorded in history.</summary>
    public static string PlainUri(BlobClient blob) => new UriBuilder(blob.Uri) { Query = string.Empty }.Uri.AbsoluteUri;

    private BlobClient Resolve(string uri)
    {
        var parts = new BlobUriBuilder(new Uri(uri));
        if (!string.Equals(parts.AccountName, service.AccountName, StringComparison.Ordinal) || string.IsNullOrEmpty(parts.BlobName))
        {
            throw new IntegrityException($"Blob {uri} is not in the checkpoint storage account '{service.AccountName}'.");
        }

        return service.GetBlobContainerClient(parts.BlobContainerName).GetBlobClient(parts.BlobName);
    }

    private async Task<BlobClient> BlobAsync(string container, string name, CancellationToken cancellationToken)
    {
        var client = service.GetBlobContainerClient(container);
        var creation = ensured.GetOrAdd(container, _ => client.CreateIfNotExistsAsync());
        try
        {
            await creation.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException)
        {
            ensured.TryRemove(container, out _);
            throw;
        }

        return client.GetBlobClient(name);
    }
}
