using System.Globalization;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>An analysis's audit entries, before they are chained: one per partial the merge of a pass read.</summary>
/// <remarks>
/// The entries go into the same hash-chained log as a training run's (<see cref="AuditLog"/>), under the analysis id: one
/// blob per merged pass, numbered on from the log's last blob (the <c>round</c> field), so that the passes of a failed
/// execution, and of every execution of the same id, stay in one chain. Each entry's policy starts with
/// <see cref="PassMarker"/>, by which a retried merge finds its pass already recorded. The drafts depend only on the
/// request, so a retry writes the same bytes.
/// </remarks>
public static class AnalysisAudit
{
    /// <summary>The text every entry of one pass of one execution starts its policy checks with.</summary>
    public static string PassMarker(string execution, int pass) => string.Create(CultureInfo.InvariantCulture, $"pass {pass} of execution {execution};");

    /// <summary>The drafts of the partials one merge read, silos in ordinal order, as blob <paramref name="index"/> of the log.</summary>
    public static IReadOnlyList<AuditDraft> PassDrafts(MergeAnalysisPassRequest request, AnalysisAuditContext audit, int index)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(audit);
        var privacy = audit.Privacy;
        var released = PassMarker(request.Execution, request.Pass) + string.Create(
            CultureInfo.InvariantCulture,
            $" sha256,size,silo,pass,execution; merged over {request.Partials.Count} silos (privacy.minSilos {privacy.MinSilos}); cells under {request.MinCount} rows suppressed")
            + (privacy.DifferentialPrivacy is { } dp
                ? string.Create(CultureInfo.InvariantCulture, $"; differential privacy: {dp.Mechanism}, epsilon {dp.Epsilon:R}{(dp.Delta is { } d ? $", delta {d:R}" : string.Empty)}, budget {dp.Budget}")
                : string.Empty)
            + (request.Secure is { } secure
                ? string.Create(CultureInfo.InvariantCulture, $"; secure aggregation: only the sum of these masked partials was unmasked (attempt {secure.Attempt})")
                : string.Empty);
        return request.Partials
            .OrderBy(p => p.SiloId, StringComparer.Ordinal)
            .Select(p => new AuditDraft
            {
                RunId = request.AnalysisId,
                Round = index,
                SiloId = p.SiloId,
                Kind = request.Secure is null ? AuditKinds.AnalysisPartial : AuditKinds.MaskedAnalysisPartial,
                Blob = p.Partial.Uri,
                Bytes = p.Partial.Bytes,
                Sha256 = p.Partial.Sha256,
                Policy = new AuditPolicy(privacy.Mode, released),
                Identity = "silo:" + p.SiloId,
                RecordedAt = audit.RecordedAt,
            })
            .ToArray();
    }
}
