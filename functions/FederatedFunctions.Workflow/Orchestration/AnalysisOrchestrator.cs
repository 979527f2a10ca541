using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>
/// A federated analysis, pass by pass: each pass is one step per silo on the silo's own compute (the same fan-out as
/// training), whose partial stays in the silo's outbox, and one merge that returns aggregates only.
/// </summary>
/// <remarks>
/// <para>Pass 1 computes counts, missing values, moments, value counts, co-moments and histograms over given edges. Pass 2,
/// when needed, counts histograms over the global range pass 1 found (eyes-on only) and starts the quantile searches;
/// each later pass narrows them (<see cref="QuantileSearch"/>: at most 9 passes to an exact value). The merge narrows
/// the searches itself, so the counts at the thresholds never reach history; a search stops early rather than isolate
/// fewer rows than the minimum count. Every partial carries this execution's token, so running an analysis id again
/// never reads an earlier execution's partials.</para>
/// <para>A silo that fails pass 1 is left out, if enough silos remain (<c>privacy.minSilos</c>); a silo that took part in
/// pass 1 must take part in every later pass, or the analysis fails: a result must come from one set of rows.</para>
/// <para>The orchestration's history holds references, counts over every silo, and (eyes-on) global ranges; never a
/// per-silo value. With differential privacy, the budget is charged (or the analysis refused) before pass 1, the spec
/// allows only statistics of pass 1, the merge returns no aggregate to history, and the noise is added in the commit.</para>
/// <para>Under secure aggregation (every eyes-off analysis), each pass is a key exchange, each silo's partial masked for
/// the attempt (<see cref="SecureAnalysisVector"/>), a check of the masked partials, the reveals and the merge of their
/// unmasked sum: the orchestrator's side never reads one silo's partial. In pass 1 an attempt is redone without a silo
/// that fails after the key exchange, with fresh keys.</para>
/// </remarks>
[DurableTask(nameof(AnalysisOrchestrator))]
public sealed class AnalysisOrchestrator : TaskOrchestrator<AnalysisState, AnalysisOutcome>
{
    /// <summary>Most passes after the first: the quantile searches' nine (histograms over the global range share the first of them).</summary>
    public const int MaxLaterPasses = 9;

    /// <summary>Most secure-aggregation attempts of one pass: each redo leaves out at least one silo that failed.</summary>
    public const int MaxSecureAttempts = 5;

    /// <inheritdoc />
    public override async Task<AnalysisOutcome> RunAsync(TaskOrchestrationContext context, AnalysisState input)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        var spec = input.Spec;
        var plan = await context.CallActivityAsync<SiloPlan>(nameof(PlanSilosActivity), new PlanSilosRequest(input.AnalysisId, spec.Silos), TaskPolicies.StorageRetry);
        var silos = new SiloFanOut(context, plan, input.Container, new RetrySpec(), epoch: null);
        var k = CellSuppression.Minimum(spec.Privacy.MinCount, plan.Silos.Select(p => p.MinCount));
        var first = AnalysisQuery.FirstPass(spec);

        // The privacy budget is charged, or the analysis refused, before any silo reads a row.
        var execution = context.NewGuid().ToString("N")[..16];
        var charge = await context.CallActivityAsync<BudgetCharge>(
            nameof(ChargeAnalysisBudgetActivity),
            new ChargeBudgetRequest(input.AnalysisId, execution, input.Container, spec.Data.Path, spec.Privacy.DifferentialPrivacy, context.CurrentUtcDateTime),
            TaskPolicies.StorageRetry);
        if (charge.Refusal is { } refusal)
        {
            throw new InvalidOperationException(refusal);
        }

        // Pass 1: everything that needs one look at the rows.
        var run = new PassRun(context, silos, input, execution, k);
        var passes = new List<IReadOnlyList<SiloAnalysisRef>>();
        var groupQuantiles = spec.GroupBy is null ? null : spec.Features.Where(f => f.Quantiles is not null).Select(f => new QuantileAsk(f.Column, f.Quantiles!)).ToArray();
        var (taking, summary) = await run.PassAsync(spec.Silos, 1, first, [], required: false, groupQuantiles);
        passes.Add(taking);
        var participants = taking.Select(t => t.SiloId).ToArray();

        // Histograms over the global range (eyes-on), and the quantile searches, from pass 1's aggregates.
        var ranged = spec.Features
            .Where(f => f.Histogram is { Edges: null, Min: null, Bins: { } } && summary.Columns.GetValueOrDefault(f.Column) is { Count: > 0, Min: not null })
            .ToDictionary(f => f.Column, f => GlobalEdges(summary.Columns[f.Column], f.Histogram!.Bins!.Value), StringComparer.Ordinal);
        var searches = spec.Features
            .Where(f => f.Quantiles is not null && summary.Columns.GetValueOrDefault(f.Column) is { Count: > 0 })
            .SelectMany(f => f.Quantiles!.Select(p => new ColumnSearch(f.Column, Start(p, summary.Columns[f.Column]))))
            .Concat(summary.GroupSearches ?? [])
            .ToList();
        var active = searches.Select(s => !s.Search.Exact).ToList();
        for (var pass = 2; pass <= MaxLaterPasses + 1 && (ranged.Count > 0 || active.Contains(true)); pass++)
        {
            var asked = searches.Where((_, i) => active[i]).ToArray();
            var thresholds = ColumnSearch.Thresholds(asked);
            (taking, summary) = await run.PassAsync(participants, pass, first with { Categorical = [], Covariance = null, Moments = false, HistogramEdges = ranged, Thresholds = thresholds, Categories = null }, asked, required: true);
            passes.Add(taking);
            ranged = [];
            var narrowed = summary.Searches.GetEnumerator();
            for (var i = 0; i < searches.Count; i++)
            {
                if (active[i] && narrowed.MoveNext())
                {
                    var next = narrowed.Current;
                    active[i] = !next.Search.Exact && next != searches[i];
                    searches[i] = next;
                }
            }
        }

        var quantiles = searches.Select(s => new QuantileOutcome(s.Column, s.Search.Probability, s.Search.Bracket.Low, s.Search.Bracket.High, s.Search.CountInside, s.Group)).ToArray();
        return await context.CallActivityAsync<AnalysisOutcome>(
            nameof(CommitAnalysisActivity),
            new CommitAnalysisRequest(input, run.Execution, passes, quantiles, k, context.CurrentUtcDateTime, spec.Privacy.SecurelyAggregated ? run.Secured : null),
            TaskPolicies.StorageRetry);
    }

    // One execution's passes: the fan-out and merge of each, under this execution's token.
    private sealed class PassRun(TaskOrchestrationContext context, SiloFanOut silos, AnalysisState input, string execution, int k)
    {
        private readonly List<SecurePass> secured = [];

        public string Execution => execution;

        // Under secure aggregation, each pass's completed attempt, for the commit to unmask the same sums again.
        public IReadOnlyList<SecurePass> Secured => secured;

        public async Task<(IReadOnlyList<SiloAnalysisRef> Refs, AnalysisPassSummary Summary)> PassAsync(
            IReadOnlyList<string> participants, int pass, AnalysisQuery query, IReadOnlyList<ColumnSearch> searches, bool required, IReadOnlyList<QuantileAsk>? groupQuantiles = null)
        {
            var privacy = input.Spec.Privacy;
            if (privacy.SecurelyAggregated)
            {
                return await SecurePassAsync(participants, pass, query, searches, required, groupQuantiles);
            }

            var calls = await silos.RunAsync(
                participants,
                silo => new SiloStep(Analyze: new AnalyzeRequest(input.AnalysisId, pass, silo, query, privacy.Mode, execution, Pad: privacy.DifferentialPrivacy is not null)),
                r => r.Analysis,
                "analyze-failed",
                "partial",
                deadlineSeconds: null);
            var failed = calls.Where(c => c.Failure is not null).ToArray();
            if (required && failed.Length > 0)
            {
                throw new InvalidOperationException($"Analysis '{input.AnalysisId}' pass {pass}: {string.Join("; ", failed.Select(f => $"{f.SiloId}: {f.Failure!.Reason} ({f.Failure.Detail})"))}; a silo of pass 1 must take part in every pass.");
            }

            var refs = calls.Where(c => c.Result is not null).Select(c => new SiloAnalysisRef(c.SiloId, c.Result!)).ToArray();
            if (refs.Length < privacy.MinSilos)
            {
                throw new InvalidOperationException(
                    $"Analysis '{input.AnalysisId}' pass {pass}: {refs.Length} silos took part, fewer than privacy.minSilos ({privacy.MinSilos}); nothing is reported." +
                    (failed.Length == 0 ? string.Empty : " Failed: " + string.Join("; ", failed.Select(f => $"{f.SiloId}: {f.Failure!.Reason} ({f.Failure.Detail})"))));
            }

            var summary = await context.CallActivityAsync<AnalysisPassSummary>(
                nameof(MergeAnalysisPassActivity),
                Merge(pass, refs, searches, groupQuantiles, null),
                TaskPolicies.StorageRetry);
            return (refs, summary);
        }

        // A pass under secure aggregation: one secure sum of the silos' encoded partials (SecureAnalysisVector), checked and
        // unmasked by the merge. In pass 1 an attempt is redone without the silos that fail before the reveals (while at
        // least minSilos are left); in a later pass every silo of pass 1 must take part, as without secure aggregation.
        private async Task<(IReadOnlyList<SiloAnalysisRef> Refs, AnalysisPassSummary Summary)> SecurePassAsync(
            IReadOnlyList<string> participants, int pass, AnalysisQuery query, IReadOnlyList<ColumnSearch> searches, bool required, IReadOnlyList<QuantileAsk>? groupQuantiles)
        {
            var privacy = input.Spec.Privacy;
            var maskingRun = MaskingAttempt.ForAnalysis(input.AnalysisId, execution);
            SecurePass Secured(SecureSumAttempt a) => new(maskingRun, a.Attempt, a.KeyExchange, query, a.Reveals);
            static SiloAnalysisRef[] Refs(SecureSumAttempt a) => a.Masked.Select(m => new SiloAnalysisRef(m.SiloId, m.Masked)).ToArray();
            var outcome = await new SecureSum(silos, context.CreateReplaySafeLogger<AnalysisOrchestrator>(), maskingRun, pass, privacy.Mode, deadlineSeconds: null).RunAsync<AnalysisPassSummary>(
                participants,
                new SecureSumPolicy(Math.Max(2, privacy.MinSilos), MaxSecureAttempts, EverySilo: required, "masked partial"),
                (silo, masking) => new SiloStep(Analyze: new AnalyzeRequest(input.AnalysisId, pass, silo, query, privacy.Mode, execution, Masking: masking)),
                "analyze-failed",
                async a =>
                {
                    var summary = await context.CallActivityAsync<AnalysisPassSummary>(nameof(MergeAnalysisPassActivity), Merge(pass, Refs(a), searches, groupQuantiles, Secured(a)), TaskPolicies.StorageRetry);
                    // After the reveals a refused partial means one changed after the check: no sum, the attempt fails.
                    var refused = summary.Refused ?? [];
                    return new SecureSumStep<AnalysisPassSummary>(a.Reveals is null || refused.Count > 0 ? null : summary, refused);
                });
            if (outcome is { Result: { } merged, Summed: { } summed })
            {
                secured.Add(Secured(summed));
                return (Refs(summed), merged);
            }

            throw new InvalidOperationException($"Analysis '{input.AnalysisId}' pass {pass}: {outcome.Message}" + outcome.Failure switch
            {
                SecureSumFailure.SiloFailed => "; a silo of pass 1 must take part in every pass.",
                SecureSumFailure.NotRevealed => " Run the analysis again.",
                _ => $"; nothing is reported (privacy.minSilos is {privacy.MinSilos}).",
            });
        }

        private MergeAnalysisPassRequest Merge(int pass, IReadOnlyList<SiloAnalysisRef> refs, IReadOnlyList<ColumnSearch> searches, IReadOnlyList<QuantileAsk>? groupQuantiles, SecurePass? secure)
        {
            var privacy = input.Spec.Privacy;
            return new MergeAnalysisPassRequest(
                input.AnalysisId, execution, pass, refs, privacy.Mode, searches, k, groupQuantiles, privacy.DifferentialPrivacy is not null,
                new AnalysisAuditContext(input.Container, context.CurrentUtcDateTime, privacy), privacy.MinSilos, secure);
        }

    }

    // Equal bins over the global range (fewer when it is too narrow for that many distinct edges); a constant column
    // gets one bin, from its value to the next double.
    private static double[] GlobalEdges(ColumnRange range, int bins) =>
        range.Max!.Value > range.Min!.Value
            ? Histogram.EqualWidthUpTo(range.Min.Value, range.Max.Value, bins)
            : [range.Min.Value, Math.BitIncrement(range.Min.Value)];

    // Eyes-off, no range is known: the search starts over every finite double, still exact within 8 passes.
    private static QuantileSearch Start(double probability, ColumnRange range) =>
        QuantileSearch.Start(probability, range.Count, range.Min ?? -double.MaxValue, range.Max ?? double.MaxValue);
}
