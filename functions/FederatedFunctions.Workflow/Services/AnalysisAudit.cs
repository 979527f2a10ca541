using System.Globalization;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>An analysis's audit entries, before they are chained: one per partial that left a silo, pass by pass.</summary>
/// <remarks>
/// The entries go into the same hash-chained log as a training run's (<see cref="AuditLog"/>), under the analysis id, with
/// the pass in the round field: <c>{analysisId}/audit/round-0000P.jsonl</c>. They are built from the commit request alone
/// and stamped with its orchestration time, so a re-executed commit writes the same bytes.
/// </remarks>
public static class AnalysisAudit
{
    /// <summary>The drafts of <paramref name="request"/>'s partials, grouped by pass, silos in ordinal order within each.</summary>
    public static IReadOnlyList<IReadOnlyList<AuditDraft>> Drafts(CommitAnalysisRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (state, privacy) = (request.State, request.State.Spec.Privacy);
        var released = string.Create(
            CultureInfo.InvariantCulture,
            $"sha256,size,silo,pass,execution; merged over {request.Passes[0].Count} silos (privacy.minSilos {privacy.MinSilos}); cells under {request.MinCount} rows suppressed");
        return request.Passes.Select((partials, i) => (IReadOnlyList<AuditDraft>)partials
            .OrderBy(p => p.SiloId, StringComparer.Ordinal)
            .Select(p => new AuditDraft
            {
                RunId = state.AnalysisId,
                Round = i + 1,
                SiloId = p.SiloId,
                Kind = AuditKinds.AnalysisPartial,
                Blob = p.Partial.Uri,
                Bytes = p.Partial.Bytes,
                Sha256 = p.Partial.Sha256,
                Policy = new AuditPolicy(privacy.Mode, released),
                Identity = "silo:" + p.SiloId,
                RecordedAt = request.CreatedAt,
            })
            .ToArray()).ToArray();
    }
}
