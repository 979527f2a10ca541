using System.Globalization;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>A round's audit entries, before they are chained: pure, so the orchestrator computes them deterministically.</summary>
public static class RoundAudit
{
    /// <summary>
    /// One audit entry per artifact that left a silo this round: each update the aggregator read, each masked update of
    /// every secure-aggregation attempt (summed or discarded), each eyes-off evaluation report, and each masked
    /// evaluation of every attempt of the evaluation's secure sum.
    /// </summary>
    public static IReadOnlyList<AuditDraft> Drafts(
        string runId,
        int round,
        IEnumerable<SiloUpdate> updates,
        IReadOnlyList<RejectedUpdate> rejected,
        IReadOnlyList<SiloEvaluation> reports,
        PrivacySpec privacy,
        RobustnessSpec robustness,
        DateTimeOffset now,
        IReadOnlyList<SecureAttemptRecord>? secureAttempts = null,
        IReadOnlyList<SecureAttemptRecord>? evaluationAttempts = null)
    {
        ArgumentNullException.ThrowIfNull(privacy);
        ArgumentNullException.ThrowIfNull(robustness);
        var dp = privacy.DifferentialPrivacy;
        var checks = "sha256,size,format,keys,shapes,dtypes,finite" + (robustness.MaxNormRatio is { } r ? $",norm-screen<={r.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : string.Empty) + (dp is null ? string.Empty : ",dp-clip");
        var drafts = new List<AuditDraft>();
        // A virtual silo's update is a slice of a blob its host wrote: the entry locates the slice (#offset=…) and names the
        // host's identity, which wrote it.
        void Add(string siloId, string kind, BlobRef artifact, string checks, DpNoiseParameters? noise = null, long? offset = null, string? writer = null) => drafts.Add(new AuditDraft
        {
            RunId = runId,
            Round = round,
            SiloId = siloId,
            Kind = kind,
            Blob = offset is { } at ? artifact.Uri + "#offset=" + at.ToString(CultureInfo.InvariantCulture) : artifact.Uri,
            Bytes = artifact.Bytes,
            Sha256 = artifact.Sha256,
            Policy = new AuditPolicy(privacy.Mode, checks),
            DpNoise = noise,
            Identity = "silo:" + (writer ?? siloId),
            RecordedAt = now,
        });

        var noise = dp is null ? null : new DpNoiseParameters(dp.NoiseMultiplier, dp.ClipNorm);
        foreach (var u in updates.OrderBy(u => u.SiloId, StringComparer.Ordinal))
        {
            var refusal = rejected.FirstOrDefault(x => x.SiloId == u.SiloId);
            Add(u.SiloId, AuditKinds.Update, u.Update, (refusal is null ? "accepted: " : $"rejected ({refusal.Reason}): ") + checks, refusal is null ? noise : null, u.Offset, u.Host);
        }

        // Every masked vector of every attempt of a secure sum, summed or not: what its attempt made of it.
        void AddMasked(IReadOnlyList<SecureAttemptRecord>? attempts, string kind, string sum, string? summed, DpNoiseParameters? summedNoise)
        {
            foreach (var attempt in attempts ?? [])
            {
                var exchange = MaskedUpdateCodec.KeyExchangeSha256(KeyExchanges.BySilo(attempt.KeyExchange, attempt.Attempt));
                foreach (var m in attempt.Masked.OrderBy(m => m.SiloId, StringComparer.Ordinal))
                {
                    var left = attempt.Left.FirstOrDefault(x => x.SiloId == m.SiloId);
                    var redone = attempts!.Any(x => x.Attempt > attempt.Attempt);
                    var fate = attempt.Summed ? "summed"
                        : left is not null ? $"refused ({left.Reason})"
                        : redone ? "discarded: attempt redone without the silos that dropped out"
                        : "discarded: the attempt failed and was not redone, nothing of it was released";
                    var applied = string.Create(CultureInfo.InvariantCulture, $"{sum} attempt {attempt.Attempt} over {attempt.KeyExchange.Count} silos (key exchange sha256 {exchange}): {fate}") + (attempt.Summed ? summed : null);
                    Add(m.SiloId, kind, m.Masked, applied, attempt.Summed ? summedNoise : null);
                }
            }
        }

        AddMasked(secureAttempts, AuditKinds.MaskedUpdate, "secure-aggregation", dp is null ? null : ", dp-clip", noise);
        AddMasked(evaluationAttempts, AuditKinds.MaskedMetrics, "secure evaluation", string.Create(CultureInfo.InvariantCulture, $", released only over at least {SecureAggregationRound.Minimum(privacy)} silos that scored"), null);

        foreach (var e in reports.Where(e => e.Report is not null).OrderBy(e => e.SiloId, StringComparer.Ordinal))
        {
            Add(e.SiloId, AuditKinds.Metrics, e.Report!, $"aggregated over at least {privacy.MinAggregateSilos} silos");
        }

        return drafts;
    }
}
