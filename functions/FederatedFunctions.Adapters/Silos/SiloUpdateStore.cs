using System.Runtime.InteropServices;
using Azure;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>Reads each silo's outbox with the orchestrator's own read grant on it (<c>OutboxReader</c> in the registry).</summary>
/// <remarks>
/// A reported blob must be under <c>outbox/</c> in the reporting silo's own outbox container; a reference to anything else
/// (another silo's container, another account, data files) is refused, so a silo cannot make the aggregator read what it
/// should not. With the <c>local</c> compute and no reader configured, the silo's own credential serves. With
/// <paramref name="recent"/>, what a silo step in this process has just written to that outbox is read from memory once
/// its URI has passed the same check: when it has the reference's size and SHA-256, or, for one read covering several
/// slices (no hash), when the range lies inside it; the caller checks each update as it checks a download's.
/// </remarks>
/// <param name="registry">The silos' outboxes and the orchestrator's read grant on each.</param>
/// <param name="recent">Blobs this process wrote lately (the host's one instance), or null to read every update from storage.</param>
public sealed class SiloUpdateStore(ISiloRegistry registry, RecentBlobs? recent = null) : IUpdateStore
{
    /// <inheritdoc />
    public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        return DownloadAsync(siloId, update, null, cancellationToken);
    }

    /// <inheritdoc />
    public Task<ReadOnlyMemory<byte>> ReadUpdateRangeAsync(string siloId, BlobRef update, long offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        return DownloadAsync(siloId, update, Range(siloId, update, offset), cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The download's own stream: the SDK resumes it from where it broke off when a read fails on the way. What this
    /// process has just written, with the reference's size and SHA-256, is a stream over memory instead.
    /// </remarks>
    public Task<Stream> OpenUpdateAsync(string siloId, BlobRef update, long? offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        return FromOutboxAsync(
            siloId,
            update,
            offset is { } at ? Range(siloId, update, at) : null,
            async (blob, options) => (await blob.DownloadStreamingAsync(options, cancellationToken).ConfigureAwait(false)).Value.Content,
            held => new MemoryStream(held.Array!, held.Offset, held.Count, writable: false, publiclyVisible: false),
            new MemoryStream([], writable: false));
    }

    // The reported blob, or a range of it, from the silo's own outbox with the orchestrator's read grant.
    private Task<ReadOnlyMemory<byte>> DownloadAsync(string siloId, BlobRef update, HttpRange? range, CancellationToken cancellationToken) =>
        FromOutboxAsync(
            siloId,
            update,
            range,
            async (blob, options) => (await blob.DownloadContentAsync(options, cancellationToken).ConfigureAwait(false)).Value.Content.ToMemory(),
            held => held.AsMemory(),
            ReadOnlyMemory<byte>.Empty);

    // The range of an update inside a blob of several.
    private static HttpRange Range(string siloId, BlobRef update, long offset) =>
        offset < 0 || update.Bytes <= 0
            ? throw new UpdateUnavailableException($"silo '{siloId}': update at offset {offset} of {update.Bytes} bytes is not a range of a blob")
            : new HttpRange(offset, update.Bytes);

    // Reads the reported blob (a range of it) from the silo's outbox, its failures as UpdateUnavailableException; a range
    // that starts past the blob's end gives `pastTheEnd`, which the size check refuses as truncated. What this process has
    // just written there is read from memory when it holds what is asked (Held).
    private async Task<T> FromOutboxAsync<T>(string siloId, BlobRef update, HttpRange? range, Func<BlobClient, Azure.Storage.Blobs.Models.BlobDownloadOptions, Task<T>> read, Func<ArraySegment<byte>, T> fromMemory, T pastTheEnd)
    {
        var blob = ResolveInOutbox(registry.GetOutboxReader(siloId), siloId, update.Uri);
        if (Held(blob, update, range) is { } held)
        {
            return fromMemory(held);
        }

        try
        {
            return await read(blob, new Azure.Storage.Blobs.Models.BlobDownloadOptions { Range = range ?? default }).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update blob {update.Uri} does not exist", ex);
        }
        catch (RequestFailedException ex) when (ex.Status == 416 && range is not null)
        {
            return pastTheEnd;
        }
        catch (RequestFailedException ex)
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update blob {update.Uri} could not be read ({ex.Status} {ex.ErrorCode})", ex);
        }
    }

    /// <inheritdoc />
    public async Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!path.StartsWith("outbox/", StringComparison.Ordinal) || path.Contains("..", StringComparison.Ordinal))
        {
            throw new UpdateUnavailableException($"silo '{siloId}': '{path}' is not a path of the silo's outbox");
        }

        try
        {
            return (await registry.GetOutboxReader(siloId).GetBlobClient(path).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    // The bytes asked for, from what this process last wrote to the blob, when they lie inside it and are the reference's
    // (size and SHA-256); a range without a hash (one read covering several slices, which the caller checks one by one)
    // only has to lie inside. Anything else is read from storage, which answers a blob changed since as it is now.
    private ArraySegment<byte>? Held(BlobClient blob, BlobRef update, HttpRange? range)
    {
        if (recent is null || !recent.TryGet(BlobCheckpointStore.PlainUri(blob), out var kept))
        {
            return null;
        }

        // Range() refuses a reference of no bytes, so a range here has a length (storage reads one without to the end).
        var (offset, length) = range is { } r ? (r.Offset, r.Length ?? 0) : (0L, (long)kept.Length);
        if (length <= 0 || offset > kept.Length - length)
        {
            return null;
        }

        var part = kept.Slice((int)offset, (int)length);
        var covering = range is not null && string.IsNullOrEmpty(update.Sha256);
        return (covering || RecentBlobs.Matches(part.Span, update)) && MemoryMarshal.TryGetArray(part, out var segment) ? segment : (ArraySegment<byte>?)null;
    }

    /// <summary>Resolves an update URI to a blob of the silo's outbox, or throws.</summary>
    public static BlobClient ResolveInOutbox(BlobContainerClient container, string siloId, string uri)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || !string.IsNullOrEmpty(parsed.Query))
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update URI '{uri}' is not an absolute URI without a query");
        }

        var parts = new BlobUriBuilder(parsed);
        if (!string.Equals(parts.AccountName, container.AccountName, StringComparison.Ordinal)
            || !string.Equals(parts.BlobContainerName, container.Name, StringComparison.Ordinal)
            || !parts.BlobName.StartsWith("outbox/", StringComparison.Ordinal)
            || parts.BlobName.Contains("..", StringComparison.Ordinal))
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update URI '{uri}' is outside the silo's outbox");
        }

        return container.GetBlobClient(parts.BlobName);
    }
}
