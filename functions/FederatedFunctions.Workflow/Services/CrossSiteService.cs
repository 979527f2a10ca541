using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Cross-site evaluation's storage steps: publishes each silo's local model for the others to score, and writes the matrix.</summary>
public sealed class CrossSiteService(ICheckpointStore checkpoints, IUpdateStore updates)
{
    /// <summary>
    /// Copies each update from its silo's outbox into the run's checkpoints (<see cref="BlobLayout.CrossSiteModel"/>), after
    /// checking it against its reference; an update that fails the check is left out of the matrix rather than scored.
    /// </summary>
    public async Task<IReadOnlyList<PublishedModel>> PublishAsync(PublishLocalModelsRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var published = new List<PublishedModel>();
        foreach (var update in request.Updates.OrderBy(u => u.SiloId, StringComparer.Ordinal))
        {
            var (bytes, _) = await VerifiedReads.ReadAsync(updates, update.SiloId, update.Update, cancellationToken).ConfigureAwait(false);
            if (bytes is { } model)
            {
                var blob = await checkpoints.PutDocumentAsync(request.Container, BlobLayout.CrossSiteModel(request.RunId, update.SiloId), model, cancellationToken).ConfigureAwait(false);
                published.Add(new PublishedModel(update.SiloId, blob));
            }
        }

        return published;
    }

    /// <summary>Writes the matrix as JSON (<see cref="BlobLayout.CrossSite"/>).</summary>
    public Task<BlobRef> WriteAsync(WriteCrossSiteRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return checkpoints.PutDocumentAsync(request.Container, BlobLayout.CrossSite(request.Matrix.RunId), JsonSerializer.SerializeToUtf8Bytes(request.Matrix, JsonDefaults.Documents), cancellationToken);
    }
}
