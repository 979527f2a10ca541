using Azure;
using Azure.Storage.Blobs;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>Reads silo updates from each silo's own outbox, with that silo's credential.</summary>
/// <remarks>
/// A reported update must name a blob under <c>outbox/</c> in the reporting silo's own container; a reference
/// to anything else (another silo's container, another account, data files) is refused, so a silo cannot make
/// the aggregator read what it should not.
/// </remarks>
public sealed class SiloUpdateStore(ISiloRegistry registry) : IUpdateStore
{
    /// <inheritdoc />
    public async Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        var container = registry.GetContainer(siloId);
        var blob = ResolveInOutbox(container, siloId, update.Uri);
        try
        {
            var content = (await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
            return content.ToMemory();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update blob {update.Uri} does not exist", ex);
        }
        catch (RequestFailedException ex)
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update blob {update.Uri} could not be read ({ex.Status} {ex.ErrorCode})", ex);
        }
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
