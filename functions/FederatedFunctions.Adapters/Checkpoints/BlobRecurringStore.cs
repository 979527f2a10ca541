using System.Text.Json;
using FederatedFunctions.Core;
using Azure;
using Azure.Storage.Blobs;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Checkpoints;

/// <summary>Recurring training's template and state as blobs in the orchestrator's storage.</summary>
public sealed class BlobRecurringStore(BlobServiceClient service, IOptions<RecurringOptions> options) : IRecurringStore
{
    private sealed record State(string LastRunId);

    private BlobContainerClient Container => service.GetBlobContainerClient(options.Value.Container);

    /// <inheritdoc />
    public async Task<byte[]?> ReadTemplateAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await Container.GetBlobClient(options.Value.TemplateBlob).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<string?> GetLastRunIdAsync(CancellationToken cancellationToken)
    {
        try
        {
            var content = (await Container.GetBlobClient(options.Value.StateBlob).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
            return content.ToObjectFromJson<State>(JsonDefaults.Documents)?.LastRunId;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"the blob is not the state's JSON: {ex.Message}", ex);
        }
    }

    /// <inheritdoc />
    public async Task SetLastRunIdAsync(string runId, CancellationToken cancellationToken)
    {
        await Container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await Container.GetBlobClient(options.Value.StateBlob)
            .UploadAsync(BinaryData.FromObjectAsJson(new State(runId), JsonDefaults.Documents), overwrite: true, cancellationToken)
            .ConfigureAwait(false);
    }
}
