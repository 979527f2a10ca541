using FederatedFunctions.Core.Audit;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Services;

namespace FederatedFunctions.Api;

/// <summary>A run's audit log and the verdict on it.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Entries">Every entry, in order (empty when the log cannot be parsed).</param>
/// <param name="Verification">The hash chain checked entry by entry, and its head against the latest manifest's anchor.</param>
/// <param name="AnchoredHead">The head hash the latest manifest records, if any.</param>
public sealed record AuditReport(string RunId, IReadOnlyList<AuditEntry> Entries, AuditVerification Verification, string? AnchoredHead);

/// <summary>Reads and verifies a run's or an analysis's audit log, for <c>fl audit</c> and <c>GET /api/runs/{id}/audit</c>.</summary>
public static class AuditReader
{
    /// <summary>
    /// The run's audit log, verified against the head anchored in its latest committed manifest; for an analysis (no
    /// round committed under that id), against the head its analysis manifest anchors.
    /// </summary>
    /// <remarks>
    /// Verifying against the anchored head catches a removed tail, which the chain alone cannot: each manifest records
    /// the head of the log as it stood when that round committed, and the latest pointer moves only after the manifest.
    /// </remarks>
    public static async Task<AuditReport> ReadAsync(ICheckpointStore checkpoints, string container, string runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        var latest = await checkpoints.GetLatestAsync(container, runId, cancellationToken).ConfigureAwait(false);
        var (through, anchored) = latest is not null
            ? (latest.Round, (await checkpoints.GetManifestAsync(container, runId, latest.Round, cancellationToken).ConfigureAwait(false))?.Audit?.Hash)
            : await AnalysisService.ReadManifestAsync(checkpoints, container, runId, cancellationToken).ConfigureAwait(false) is { } analysis
                ? (AnalysisService.MaxAuditBlob, analysis.Audit?.Hash)
                : (-1, null);
        var bytes = through < 0 ? [] : await checkpoints.ReadAuditAsync(container, runId, through, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<AuditEntry> entries;
        try
        {
            entries = AuditLog.Parse(bytes);
        }
        catch (AuditLogFormatException ex)
        {
            return new AuditReport(runId, [], new AuditVerification(false, ex.LineNumber - 1, "malformed", ex.Message, null), anchored);
        }

        return new AuditReport(runId, entries, AuditChain.Verify(entries, anchored, runId), anchored);
    }
}
