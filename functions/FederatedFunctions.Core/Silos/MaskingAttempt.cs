namespace FederatedFunctions.Core.Silos;

/// <summary>The secure-sum attempt a silo masks a vector for: an analysis pass's partial, or a round's evaluation.</summary>
/// <param name="MaskingRun">The masking context's run id (<see cref="ForAnalysis"/>, <see cref="ForEvaluation"/>): no two sums share masks.</param>
/// <param name="Attempt">The attempt within the pass or round (the masking context's round is the pass or round).</param>
/// <param name="KeyExchange">Every public key of the attempt, the silo's own included.</param>
public sealed record MaskingAttempt(string MaskingRun, int Attempt, IReadOnlyList<MaskingPublicKey> KeyExchange)
{
    /// <summary>
    /// The masking context's run id of an execution of an analysis: <c>{analysisId}-{execution}-</c>. It ends with
    /// <c>-</c>, which no run id does, so a training run's masks, masked updates and reveal records never share its names.
    /// </summary>
    public static string ForAnalysis(string analysisId, string execution) => $"{analysisId}-{execution}-";

    /// <summary>
    /// The masking context's run id of a run's evaluations: <c>{runId}-evaluation-</c>. It ends with <c>-</c> (no run id
    /// does) and its last part is not 16 hex digits (every analysis execution's is), so its masks, masked vectors and
    /// reveal records share names with neither the run's training nor any analysis.
    /// </summary>
    public static string ForEvaluation(string runId) => $"{runId}-evaluation-";
}
