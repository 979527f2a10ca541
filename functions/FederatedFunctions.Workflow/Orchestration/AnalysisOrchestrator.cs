using FederatedFunctions.Core.Analysis;
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
/// each later pass narrows them (<see cref="QuantileSearch"/>: at most 8 passes to an exact value). A search stops early
/// rather than isolate fewer rows than the minimum count.</para>
/// <para>A silo that fails pass 1 is left out, if enough silos remain (<c>privacy.minSilos</c>); a silo that took part in
/// pass 1 must take part in every later pass, or the analysis fails: a result must come from one set of rows.</para>
/// <para>The orchestration's history holds references, counts over every silo, and (eyes-on) global ranges; never a
/// per-silo value.</para>
/// </remarks>
[DurableTask(nameof(AnalysisOrchestrator))]
public sealed class AnalysisOrchestrator : TaskOrchestrator<AnalysisState, AnalysisOutcome>
{
    /// <summary>Most passes after the first: one for histograms over the global range, and the quantile searches' eight.</summary>
    public const int MaxLaterPasses = 9;

    /// <inheritdoc />
    public override async Task<AnalysisOutcome> RunAsync(TaskOrchestrationContext context, AnalysisState input)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        var spec = input.Spec;
        var plan = await context.CallActivityAsync<SiloPlan>(nameof(PlanSilosActivity), new PlanSilosRequest(input.AnalysisId, spec.Silos), TaskPolicies.StorageRetry);
        var silos = new SiloFanOut(context, plan, input.Container, new RetrySpec(), epoch: null);
        var k = CellSuppression.Minimum(spec.Privacy.MinCount, plan.Silos.Select(p => p.MinCount));
        var numeric = spec.Features.Where(f => f.Statistics.Any(AnalysisStatistics.Numeric.Contains)).Select(f => f.Column).ToArray();
        var categorical = spec.Features.Where(f => f.Statistics.Contains(AnalysisStatistics.ValueCounts)).Select(f => f.Column).ToArray();
        var bounds = spec.Features.Where(f => f.Bounds is not null).ToDictionary(f => f.Column, f => f.Bounds!, StringComparer.Ordinal);
        var given = spec.Features.Where(f => f.Histogram is { } h && (h.Edges is not null || h.Min is not null)).ToDictionary(f => f.Column, f => GivenEdges(f.Histogram!), StringComparer.Ordinal);

        // Pass 1: everything that needs one look at the rows.
        var passes = new List<IReadOnlyList<SiloAnalysisRef>>();
        var (taking, summary) = await PassAsync(context, silos, input, spec.Silos, 1, new AnalysisQuery(spec.Data, numeric, categorical, spec.GroupBy, spec.Covariance, true, given, new Dictionary<string, double[]>(), bounds), required: false);
        passes.Add(taking);
        var participants = taking.Select(t => t.SiloId).ToArray();

        // Histograms over the global range (eyes-on), and the quantile searches, from pass 1's aggregates.
        var ranged = spec.Features
            .Where(f => f.Histogram is { Edges: null, Min: null, Bins: { } } && summary.Columns.GetValueOrDefault(f.Column) is { Count: > 0, Min: not null })
            .ToDictionary(f => f.Column, f => GlobalEdges(summary.Columns[f.Column], f.Histogram!.Bins!.Value), StringComparer.Ordinal);
        var searches = spec.Features
            .Where(f => f.Quantiles is not null && summary.Columns.GetValueOrDefault(f.Column) is { Count: > 0 })
            .SelectMany(f => f.Quantiles!.Select(p => (f.Column, Search: Start(p, summary.Columns[f.Column]))))
            .ToList();
        var active = searches.Select(s => !s.Search.Exact).ToList();
        for (var pass = 2; pass <= MaxLaterPasses + 1 && (ranged.Count > 0 || active.Contains(true)); pass++)
        {
            var thresholds = searches.Where((_, i) => active[i]).GroupBy(s => s.Column)
                .ToDictionary(g => g.Key, g => g.SelectMany(s => s.Search.Thresholds()).Distinct().Order().ToArray(), StringComparer.Ordinal);
            (taking, summary) = await PassAsync(context, silos, input, participants, pass, new AnalysisQuery(spec.Data, numeric, [], null, null, false, ranged, thresholds, bounds), required: true);
            passes.Add(taking);
            ranged = [];
            for (var i = 0; i < searches.Count; i++)
            {
                if (!active[i])
                {
                    continue;
                }

                var (column, search) = searches[i];
                var mine = search.Thresholds();
                var all = thresholds[column];
                var counts = mine.Select(t => summary.CountsAtOrBelow[column][Array.BinarySearch(all, t)]).ToArray();
                var next = search.Narrow(mine, counts, k);
                searches[i] = (column, next);
                active[i] = !next.Exact && next != search;
            }
        }

        var quantiles = searches.Select(s => new QuantileOutcome(s.Column, s.Search.Probability, s.Search.Bracket.Low, s.Search.Bracket.High, s.Search.CountInside)).ToArray();
        return await context.CallActivityAsync<AnalysisOutcome>(
            nameof(CommitAnalysisActivity),
            new CommitAnalysisRequest(input, passes, quantiles, k, context.CurrentUtcDateTime),
            TaskPolicies.StorageRetry);
    }

    private static async Task<(IReadOnlyList<SiloAnalysisRef> Refs, AnalysisPassSummary Summary)> PassAsync(
        TaskOrchestrationContext context, SiloFanOut silos, AnalysisState input, IReadOnlyList<string> participants, int pass, AnalysisQuery query, bool required)
    {
        var privacy = input.Spec.Privacy;
        var calls = await silos.RunAsync(
            participants,
            silo => new SiloStep(Analyze: new AnalyzeRequest(input.AnalysisId, pass, silo, query, privacy.Mode)),
            r => r.Analysis,
            "analyze-failed",
            "partial",
            deadlineSeconds: null);
        var failed = calls.Where(c => c.Failure is not null).ToArray();
        if (required && failed.Length > 0)
        {
            throw new InvalidOperationException($"Analysis '{input.AnalysisId}' pass {pass}: {string.Join("; ", failed.Select(f => $"{f.SiloId}: {f.Failure!.Reason}"))}; a silo of pass 1 must take part in every pass.");
        }

        var refs = calls.Where(c => c.Result is not null).Select(c => new SiloAnalysisRef(c.SiloId, c.Result!)).ToArray();
        if (refs.Length < privacy.MinSilos)
        {
            throw new InvalidOperationException(
                $"Analysis '{input.AnalysisId}' pass {pass}: {refs.Length} silos took part, fewer than privacy.minSilos ({privacy.MinSilos}); nothing is reported." +
                (failed.Length == 0 ? string.Empty : " Failed: " + string.Join("; ", failed.Select(f => $"{f.SiloId}: {f.Failure!.Reason}"))));
        }

        var summary = await context.CallActivityAsync<AnalysisPassSummary>(
            nameof(MergeAnalysisPassActivity),
            new MergeAnalysisPassRequest(input.AnalysisId, pass, refs, privacy.MinSilos, privacy.Mode),
            TaskPolicies.StorageRetry);
        return (refs, summary);
    }

    private static double[] GivenEdges(HistogramSpec histogram) =>
        histogram.Edges is { } edges ? [.. edges] : Histogram.EqualWidth(histogram.Min!.Value, histogram.Max!.Value, histogram.Bins!.Value);

    // A constant column still gets its bins: one unit wide from its value.
    private static double[] GlobalEdges(ColumnRange range, int bins) =>
        Histogram.EqualWidth(range.Min!.Value, range.Max!.Value > range.Min.Value ? range.Max.Value : range.Min.Value + 1, bins);

    // Eyes-off, no range is known: the search starts over every finite double, still exact within 8 passes.
    private static QuantileSearch Start(double probability, ColumnRange range) =>
        QuantileSearch.Start(probability, range.Count, range.Min ?? -double.MaxValue, range.Max ?? double.MaxValue);
}
