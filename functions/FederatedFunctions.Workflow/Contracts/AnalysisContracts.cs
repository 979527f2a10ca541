using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;

namespace FederatedFunctions.Workflow.Contracts;

/// <summary>The input of <see cref="Orchestration.AnalysisOrchestrator"/>: ids, the validated spec, nothing else.</summary>
/// <param name="AnalysisId">The analysis id, also the orchestration instance id.</param>
/// <param name="Spec">The validated spec.</param>
/// <param name="Container">The checkpoint container its result and manifest go to.</param>
public sealed record AnalysisState(string AnalysisId, AnalysisSpec Spec, string Container)
{
    /// <summary>The checkpoint container every host writes analyses to (<c>fl analyze</c> and the HTTP API alike), so each reads the others' results.</summary>
    public const string DefaultContainer = "checkpoints";
}

/// <summary>A silo's partial of one pass, by reference.</summary>
public sealed record SiloAnalysisRef(string SiloId, BlobRef Partial);

/// <summary>Input of the merge of one pass.</summary>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Execution">This execution's token: every partial must carry it.</param>
/// <param name="Pass">The pass.</param>
/// <param name="Partials">Each silo's partial.</param>
/// <param name="Privacy">eyes-on or eyes-off: eyes-off, no min or max comes back.</param>
/// <param name="Searches">The quantile searches this pass's thresholds came from, to narrow with the pass's counts.</param>
/// <param name="MinCount">The least rows a search may narrow a bracket to.</param>
/// <param name="GroupQuantiles">On pass 1 with a group-by: the quantiles asked per column, for the merge to start their searches in each group the result will show.</param>
/// <param name="DifferentialPrivacy">Whether the analysis is differentially private: then no aggregate comes back at all, since an exact count or range in history would be a release outside the mechanism (and a private analysis has no later pass to plan).</param>
/// <param name="Audit">Where and how the merge records the partials it read in the audit log; null records nothing (a test's merge alone).</param>
/// <param name="MinSilos">The least number of silos a reported cell must hold rows of: a group filled by fewer gets no quantile search.</param>
/// <param name="Secure">With secure aggregation: the attempt whose masked vectors <paramref name="Partials"/> are, and, once every silo revealed, the self-mask seeds.</param>
public sealed record MergeAnalysisPassRequest(string AnalysisId, string Execution, int Pass, IReadOnlyList<SiloAnalysisRef> Partials, string Privacy, IReadOnlyList<ColumnSearch> Searches, int MinCount, IReadOnlyList<QuantileAsk>? GroupQuantiles = null, bool DifferentialPrivacy = false, AnalysisAuditContext? Audit = null, int MinSilos = 1, SecurePass? Secure = null);

/// <summary>What the merge needs to record a pass's partials in the analysis's audit log.</summary>
/// <param name="Container">The checkpoint container the log is in.</param>
/// <param name="RecordedAt">The entries' time: the orchestration's, so a retry writes the same bytes.</param>
/// <param name="Privacy">The analysis's privacy settings, which each entry's policy states.</param>
public sealed record AnalysisAuditContext(string Container, DateTime RecordedAt, AnalysisPrivacySpec Privacy);

/// <summary>The quantiles asked of one column.</summary>
public sealed record QuantileAsk(string Column, IReadOnlyList<double> Probabilities);

/// <summary>A quantile search of one column.</summary>
/// <param name="Column">The column.</param>
/// <param name="Search">The search.</param>
/// <param name="Group">The group whose rows it searches, or null for every row.</param>
public sealed record ColumnSearch(string Column, QuantileSearch Search, string? Group = null)
{
    /// <summary>
    /// The thresholds a pass asks each silo to count at, per column: the union of the searches' own, in order. The
    /// orchestrator sends it and the merge reads the counts back by it, so both build it here.
    /// </summary>
    public static Dictionary<string, double[]> Thresholds(IEnumerable<ColumnSearch> searches)
    {
        ArgumentNullException.ThrowIfNull(searches);
        return searches.GroupBy(s => s.Column).ToDictionary(g => g.Key, g => g.SelectMany(s => s.Search.Thresholds()).Distinct().Order().ToArray(), StringComparer.Ordinal);
    }
}

/// <summary>What the orchestrator needs of a pass to plan the next: aggregates only. The counts at the thresholds stay in the merge; only the narrowed brackets (each of at least the minimum count of rows) come back.</summary>
/// <param name="Columns">Per numeric column over every row: present values, and (eyes-on) the global min and max.</param>
/// <param name="Searches">The searches of the request, narrowed, in the same order.</param>
/// <param name="GroupSearches">The searches started per group (<see cref="MergeAnalysisPassRequest.GroupQuantiles"/>): only in groups the result shows, and only of columns with at least the minimum count of values there.</param>
/// <param name="Refused">With secure aggregation, when checking an attempt: the silos whose masked vectors are missing, altered or not of the attempt.</param>
public sealed record AnalysisPassSummary(IReadOnlyDictionary<string, ColumnRange> Columns, IReadOnlyList<ColumnSearch> Searches, IReadOnlyList<ColumnSearch>? GroupSearches = null, IReadOnlyList<Core.Runs.RejectedUpdate>? Refused = null);

/// <summary>A numeric column's present values over every silo and row, with its global range in eyes-on mode.</summary>
public sealed record ColumnRange(long Count, double? Min, double? Max);

/// <summary>Where a quantile's search ended.</summary>
/// <param name="Column">The column.</param>
/// <param name="Probability">The probability.</param>
/// <param name="Low">The least value the quantile can be.</param>
/// <param name="High">The greatest; equal to <paramref name="Low"/> when exact.</param>
/// <param name="RowsInside">Rows with a value in [Low, High].</param>
/// <param name="Group">The group, or null over every row.</param>
public sealed record QuantileOutcome(string Column, double Probability, double Low, double High, long RowsInside, string? Group = null);

/// <summary>Input of the commit: every pass's partials, the quantiles, the silos' own minimums.</summary>
/// <param name="State">The analysis.</param>
/// <param name="Execution">This execution's token.</param>
/// <param name="Passes">Each pass's partials, in pass order.</param>
/// <param name="Quantiles">Each quantile's outcome.</param>
/// <param name="MinCount">The least rows per reported cell: the analysis's, raised by any silo's own.</param>
/// <param name="CreatedAt">When the analysis ran (orchestration time).</param>
/// <param name="Secure">With secure aggregation, each pass's completed attempt, in the order of <paramref name="Passes"/>.</param>
public sealed record CommitAnalysisRequest(AnalysisState State, string Execution, IReadOnlyList<IReadOnlyList<SiloAnalysisRef>> Passes, IReadOnlyList<QuantileOutcome> Quantiles, int MinCount, DateTime CreatedAt, IReadOnlyList<SecurePass>? Secure = null);

/// <summary>Input of the activity that turns a standardization analysis's result into a <see cref="Core.Specs.FeatureStandardization"/>.</summary>
/// <param name="Container">The checkpoint container the analysis wrote to.</param>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Features">The features, in the run's order.</param>
public sealed record ReadStandardizationRequest(string Container, string AnalysisId, IReadOnlyList<string> Features);

/// <summary>The output of an analysis orchestration.</summary>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Result">The result document.</param>
/// <param name="Manifest">The manifest.</param>
/// <param name="Silos">The silos that took part.</param>
/// <param name="Passes">Passes run.</param>
public sealed record AnalysisOutcome(string AnalysisId, BlobRef Result, BlobRef Manifest, IReadOnlyList<string> Silos, int Passes);

/// <summary>Input of the budget charge, made before any silo reads a row.</summary>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Execution">This execution's token: the charge's key with the analysis id, so a retried charge is not charged twice.</param>
/// <param name="Container">The checkpoint container, which holds the budgets' ledgers.</param>
/// <param name="DataPath">The data the analysis reads (<c>data.path</c>), which its budget must cover.</param>
/// <param name="DifferentialPrivacy">The analysis's differential privacy; null for an exact analysis, which only checks that its data is under no budget.</param>
/// <param name="At">Orchestration time, recorded in the ledger.</param>
public sealed record ChargeBudgetRequest(string AnalysisId, string Execution, string Container, string DataPath, AnalysisDifferentialPrivacySpec? DifferentialPrivacy, DateTime At);

/// <summary>The outcome of a budget charge: granted (or nothing to charge), or refused with the reason.</summary>
/// <param name="Budget">The budget charged; null when the analysis is exact.</param>
/// <param name="Epsilon">The ε charged (0 when exact or refused).</param>
/// <param name="EpsilonSpent">The budget's ε spent, this charge included when granted.</param>
/// <param name="EpsilonTotal">The budget's total ε.</param>
/// <param name="Refusal">Why the analysis is refused; null when it may run.</param>
public sealed record BudgetCharge(string? Budget, double Epsilon, double EpsilonSpent, double EpsilonTotal, string? Refusal);

/// <summary>One secure-aggregation attempt of an analysis pass, as the merge needs it to check or unmask the silos' masked vectors.</summary>
/// <param name="MaskingRun">The masking context's run id (<see cref="Core.Silos.MaskingAttempt.MaskingRun"/>).</param>
/// <param name="Attempt">The attempt.</param>
/// <param name="KeyExchange">The attempt's public keys.</param>
/// <param name="Query">The pass's query, which fixes the vectors' layout.</param>
/// <param name="Reveals">Every contributor's self-mask seed; null to check the masked vectors only.</param>
public sealed record SecurePass(string MaskingRun, int Attempt, IReadOnlyList<Core.Silos.MaskingPublicKey> KeyExchange, AnalysisQuery Query, IReadOnlyList<Core.Silos.SelfMaskReveal>? Reveals);
