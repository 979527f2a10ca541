using System.Globalization;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>An analysis's result: aggregates only, after small-cell suppression.</summary>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Silos">The silos that took part.</param>
/// <param name="Privacy">eyes-on or eyes-off.</param>
/// <param name="MinCount">The least rows per reported cell that was applied: the analysis's, raised by any silo's own.</param>
/// <param name="Rows">Rows over every silo; null when suppressed.</param>
/// <param name="Results">Per column, over every row.</param>
/// <param name="Groups">Per group-by value, when the analysis has a group-by; a group under the minimum (and, by complementary suppression, the smallest others when needed) is left out.</param>
/// <param name="Covariance">The covariance and correlation matrix over every complete row, when asked.</param>
/// <param name="DifferentialPrivacy">With differential privacy: the mechanism, the ε (and δ) spent, the budget charged and every query's noise; null for exact results.</param>
public sealed record AnalysisResult(
    string AnalysisId,
    IReadOnlyList<string> Silos,
    string Privacy,
    int MinCount,
    long? Rows,
    IReadOnlyDictionary<string, FeatureResult> Results,
    IReadOnlyDictionary<string, GroupResult>? Groups,
    CovarianceResult? Covariance,
    DpReleaseInfo? DifferentialPrivacy = null);

/// <summary>One group's statistics.</summary>
/// <param name="Rows">Rows in the group; null when the group is suppressed (fewer than the minimum).</param>
/// <param name="Results">Per column.</param>
/// <param name="Covariance">Over the group's complete rows, when asked.</param>
public sealed record GroupResult(long? Rows, IReadOnlyDictionary<string, FeatureResult> Results, CovarianceResult? Covariance);

/// <summary>One column's statistics: those asked for, each null when suppressed.</summary>
public sealed record FeatureResult
{
    /// <summary>Present values.</summary>
    public long? Count { get; init; }

    /// <summary>Missing values.</summary>
    public long? Missing { get; init; }

    /// <summary>Sum.</summary>
    public double? Sum { get; init; }

    /// <summary>Mean.</summary>
    public double? Mean { get; init; }

    /// <summary>Sample variance (n − 1).</summary>
    public double? Variance { get; init; }

    /// <summary>Sample standard deviation.</summary>
    public double? Stddev { get; init; }

    /// <summary>Least value (eyes-on only).</summary>
    public double? Min { get; init; }

    /// <summary>Greatest value (eyes-on only).</summary>
    public double? Max { get; init; }

    /// <summary>Counts per bin.</summary>
    public HistogramResult? Histogram { get; init; }

    /// <summary>Quantiles, keyed by probability.</summary>
    public IReadOnlyDictionary<string, QuantileResult>? Quantiles { get; init; }

    /// <summary>Counts per value (categorical columns); values under the minimum are folded into <c>(other)</c>, never named.</summary>
    public IReadOnlyDictionary<string, long?>? ValueCounts { get; init; }

    /// <summary>True when the column's values in this group are fewer than the minimum: nothing is reported of them.</summary>
    public bool? Suppressed { get; init; }
}

/// <summary>A histogram as reported: a count under the minimum is null.</summary>
public sealed record HistogramResult(double[] Edges, long?[] Counts, long? Below, long? Above);

/// <summary>A quantile: exact (<see cref="Value"/>), or the bracket [<see cref="Low"/>, <see cref="High"/>] it lies in when narrowing further would isolate fewer rows than the minimum.</summary>
public sealed record QuantileResult(double? Value, double? Low, double? High);

/// <summary>Covariance and correlation over complete rows.</summary>
public sealed record CovarianceResult(IReadOnlyList<string> Columns, long Rows, double?[][] Covariance, double?[][] Correlation);

/// <summary>Builds the result from merged partials: the statistics asked for, with small-cell suppression applied.</summary>
public static class AnalysisReport
{
    /// <summary>The result of an analysis.</summary>
    /// <param name="analysisId">The analysis.</param>
    /// <param name="spec">Its spec.</param>
    /// <param name="silos">The silos that took part.</param>
    /// <param name="first">The merged first pass (moments, value counts, co-moments, histograms over given edges).</param>
    /// <param name="ranged">The merged second pass's histograms over the global range, if there was one.</param>
    /// <param name="quantiles">The quantile searches' ends.</param>
    /// <param name="k">The least rows per reported cell.</param>
    /// <param name="coverage">Which silos fill each cell, for the analysis's minimum silos per cell; null applies no such rule.</param>
    public static AnalysisResult Build(string analysisId, AnalysisSpec spec, IReadOnlyList<string> silos, AnalysisPartial first, AnalysisPartial? ranged, IReadOnlyList<QuantileEnd> quantiles, int k, CellCoverage? coverage = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(quantiles);
        coverage ??= CellCoverage.None;
        var overall = Overall(first);
        var overallRanged = ranged is null ? null : Overall(ranged);
        var rowsOk = CellSuppression.Reportable(overall.Rows, k) && coverage.Covered(null, null, CellCoverage.Rows);
        var results = rowsOk ? Features(spec, overall, overallRanged, quantiles.Where(q => q.Group is null).ToArray(), new Rule(k, coverage, null)) : new Dictionary<string, FeatureResult>();
        Dictionary<string, GroupResult>? groups = null;
        if (spec.GroupBy is not null)
        {
            // Withheld groups are left out by name; with complementary suppression their rows add up to at least k, so
            // the whole minus the groups shown never isolates a small group.
            var shown = ShownGroups(first, k, coverage);
            groups = first.Groups.Where(g => shown.Contains(g.Key)).ToDictionary(
                g => g.Key,
                g => new GroupResult(g.Value.Rows, Features(spec, g.Value, ranged?.Groups.GetValueOrDefault(g.Key), quantiles.Where(q => q.Group == g.Key).ToArray(), new Rule(k, coverage, g.Key)), Covariance(spec, g.Value, new Rule(k, coverage, g.Key))),
                StringComparer.Ordinal);
        }

        return new AnalysisResult(analysisId, silos, spec.Privacy.Mode, k, rowsOk ? overall.Rows : null, results, groups, rowsOk ? Covariance(spec, overall, new Rule(k, coverage, null)) : null);
    }

    // The suppression rule of one group's cells (null: every row): at least k rows and, with a coverage, minSilos silos.
    private sealed record Rule(int K, CellCoverage Coverage, string? Group)
    {
        public bool Reportable(long count, string? column, string cell) => CellSuppression.Reportable(count, K) && (count == 0 || Coverage.Covered(Group, column, cell));

        public Func<string, IReadOnlySet<string>?> SilosOf(string? column, Func<string, string> cell) => key => Coverage.SilosOf(Group, column, cell(key));
    }

    /// <summary>
    /// The groups a result shows: those of at least <paramref name="k"/> rows (and, with a coverage, of at least its
    /// minimum number of silos), with complementary suppression over the groups' row counts. The merge starts quantile
    /// searches for these groups only, so no other group's count is ever in orchestration history.
    /// </summary>
    public static HashSet<string> ShownGroups(AnalysisPartial first, int k, CellCoverage? coverage = null)
    {
        ArgumentNullException.ThrowIfNull(first);
        coverage ??= CellCoverage.None;
        return Complementary(first.Groups.ToDictionary(g => g.Key, g => g.Value.Rows, StringComparer.Ordinal), k, g => coverage.SilosOf(g, null, CellCoverage.Rows), coverage.MinSilos);
    }

    /// <summary>Every group of a partial merged into one.</summary>
    public static GroupPartial Overall(AnalysisPartial partial)
    {
        ArgumentNullException.ThrowIfNull(partial);
        return partial.Groups.Values.Aggregate(new GroupPartial(0, new Dictionary<string, FeaturePartial>(), null), AnalysisMerge.Merge);
    }

    /// <summary>The key of a quantile in a result: its probability, invariant and round-trippable (e.g. <c>0.5</c>).</summary>
    public static string QuantileKey(double probability) => probability.ToString("R", CultureInfo.InvariantCulture);

    private static Dictionary<string, FeatureResult> Features(AnalysisSpec spec, GroupPartial group, GroupPartial? ranged, IReadOnlyList<QuantileEnd> quantiles, Rule rule)
    {
        var results = new Dictionary<string, FeatureResult>(StringComparer.Ordinal);
        foreach (var feature in spec.Features)
        {
            var stats = feature.Statistics;
            var partial = group.Features.GetValueOrDefault(feature.Column) ?? new FeaturePartial(0, Moments.Empty, null, null);
            // Counts of present and missing values say which rows have a value, not what it is: they are reported as they are.
            long? missing = stats.Contains(AnalysisStatistics.Missing) || stats.Contains(AnalysisStatistics.ValueCounts) ? partial.Missing : null;
            if (stats.Contains(AnalysisStatistics.ValueCounts))
            {
                var declared = feature.Categories?.ToHashSet(StringComparer.Ordinal);
                var values = (partial.ValueCounts ?? new Dictionary<string, long>()).Keys.ToArray();
                IReadOnlySet<string>? SilosOfCell(string cell) => declared is null || cell != OtherValues
                    ? rule.Coverage.SilosOf(rule.Group, feature.Column, CellCoverage.Value(cell))
                    : Union(values.Where(v => !declared.Contains(v)).Select(v => rule.Coverage.SilosOf(rule.Group, feature.Column, CellCoverage.Value(v))));
                results[feature.Column] = new FeatureResult { Missing = missing, ValueCounts = ValueCounts(Cells(partial.ValueCounts, feature.Categories), rule.K, SilosOfCell, rule.Coverage.MinSilos) };
                continue;
            }

            var m = partial.Moments ?? Moments.Empty;
            if (!rule.Reportable(m.Count, feature.Column, CellCoverage.Values))
            {
                results[feature.Column] = new FeatureResult { Missing = missing, Suppressed = true };
                continue;
            }

            var histogram = (partial.Histogram ?? ranged?.Features.GetValueOrDefault(feature.Column)?.Histogram) is { } h && stats.Contains(AnalysisStatistics.Histogram)
                ? Suppress(h, rule.K, rule.SilosOf(feature.Column, cell => cell), rule.Coverage.MinSilos)
                : null;
            var asked = quantiles.Where(q => q.Column == feature.Column).ToArray();
            results[feature.Column] = new FeatureResult
            {
                Count = stats.Contains(AnalysisStatistics.Count) ? m.Count : null,
                Missing = stats.Contains(AnalysisStatistics.Missing) ? missing : null,
                Sum = stats.Contains(AnalysisStatistics.Sum) ? m.Total : null,
                Mean = stats.Contains(AnalysisStatistics.Mean) && m.Count > 0 ? m.Mean : null,
                Variance = stats.Contains(AnalysisStatistics.Variance) ? m.Variance : null,
                Stddev = stats.Contains(AnalysisStatistics.StdDev) ? m.StandardDeviation : null,
                Min = stats.Contains(AnalysisStatistics.Min) && m.Count > 0 ? m.Min : null,
                Max = stats.Contains(AnalysisStatistics.Max) && m.Count > 0 ? m.Max : null,
                Histogram = histogram,
                Quantiles = asked.Length == 0 ? null : asked.ToDictionary(
                    q => QuantileKey(q.Probability),
                    q => q.Low == q.High ? new QuantileResult(q.Low, null, null) : new QuantileResult(null, q.Low, q.High),
                    StringComparer.Ordinal),
            };
        }

        return results;
    }

    private static CovarianceResult? Covariance(AnalysisSpec spec, GroupPartial group, Rule rule)
    {
        if (spec.Covariance is not { } columns || group.CoMoments is not { } co || !rule.Reportable(co.Count, null, CellCoverage.CoMoments) || co.Count < 2)
        {
            return null;
        }

        var d = columns.Count;
        var cov = Enumerable.Range(0, d).Select(i => Enumerable.Range(0, d).Select(j => co.Covariance(i, j)).ToArray()).ToArray();
        var corr = Enumerable.Range(0, d).Select(i => Enumerable.Range(0, d).Select(j => co.Correlation(i, j)).ToArray()).ToArray();
        return new CovarianceResult(columns, co.Count, cov, corr);
    }

    /// <summary>The key of the count of the values folded together because each is under the minimum (or, with declared categories, is none of them).</summary>
    public const string OtherValues = "(other)";

    /// <summary>
    /// A column's value counts as cells: as they are; or, with declared <paramref name="categories"/>, one cell per category
    /// (zero when absent) and one <see cref="OtherValues"/> cell for every other value.
    /// </summary>
    internal static Dictionary<string, long> Cells(IReadOnlyDictionary<string, long>? counts, IReadOnlyList<string>? categories)
    {
        counts ??= new Dictionary<string, long>();
        if (categories is null)
        {
            return counts.ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);
        }

        var cells = categories.ToDictionary(c => c, c => counts.GetValueOrDefault(c), StringComparer.Ordinal);
        cells[OtherValues] = counts.Where(v => !cells.ContainsKey(v.Key)).Sum(v => v.Value);
        return cells;
    }

    /// <summary>
    /// Value counts as reported: values under k are folded into one <see cref="OtherValues"/> count, with complementary
    /// suppression, and never named; the folded count is shown when it has at least k rows.
    /// </summary>
    internal static Dictionary<string, long?> ValueCounts(IReadOnlyDictionary<string, long> cells, int k, Func<string, IReadOnlySet<string>?>? silosOf = null, int minSilos = 1)
    {
        var named = Complementary(cells, k, silosOf, minSilos);
        named.Remove(OtherValues);
        var folded = cells.Where(v => !named.Contains(v.Key)).ToArray();
        var other = folded.Sum(v => v.Value);
        var reported = cells.Where(v => named.Contains(v.Key)).ToDictionary(v => v.Key, v => (long?)v.Value, StringComparer.Ordinal);
        if (other >= k && (silosOf is null || (Union(folded.Select(v => silosOf(v.Key))) is not { } s || s.Count >= minSilos)))
        {
            reported[OtherValues] = other;
        }

        return reported;
    }

    /// <summary>
    /// The cells of a table that may be shown: those of at least <paramref name="k"/> rows, and, when the withheld ones
    /// add up to fewer than k (so that the total minus the shown ones would isolate them), fewer: the smallest shown
    /// cells are withheld too until the withheld add up to at least k, or nothing is shown.
    /// </summary>
    /// <remarks>
    /// With <paramref name="silosOf"/> (the silos with rows in each cell), a cell is also withheld when fewer than
    /// <paramref name="minSilos"/> silos fill it, and the withheld cells must together hold rows of at least that many
    /// silos as well as k rows, so that the total minus the shown cells is itself an aggregate over enough silos.
    /// </remarks>
    public static HashSet<string> Complementary(IReadOnlyDictionary<string, long> cells, int k, Func<string, IReadOnlySet<string>?>? silosOf = null, int minSilos = 1)
    {
        ArgumentNullException.ThrowIfNull(cells);
        bool Covered(string cell) => silosOf?.Invoke(cell) is not { } s || s.Count >= minSilos;
        bool Shown(KeyValuePair<string, long> c) => c.Value == 0 || (CellSuppression.Reportable(c.Value, k) && Covered(c.Key));
        var shown = cells.Where(Shown).Select(c => c.Key).ToHashSet(StringComparer.Ordinal);
        var withheld = cells.Where(c => !shown.Contains(c.Key)).ToList();
        bool Protected()
        {
            var rows = withheld.Sum(c => c.Value);
            return rows == 0 || (rows >= k && (silosOf is null || Union(withheld.Select(c => silosOf(c.Key))) is not { } s || s.Count >= minSilos));
        }

        var candidates = cells.Where(c => c.Value > 0 && shown.Contains(c.Key)).OrderBy(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal).ToList();
        for (var i = 0; !Protected() && i < candidates.Count; i++)
        {
            withheld.Add(candidates[i]);
            shown.Remove(candidates[i].Key);
        }

        return shown;
    }

    // The union of silo sets; null when any is unknown (no coverage rule).
    private static HashSet<string>? Union(IEnumerable<IReadOnlySet<string>?> sets)
    {
        var union = new HashSet<string>(StringComparer.Ordinal);
        foreach (var set in sets)
        {
            if (set is null)
            {
                return null;
            }

            union.UnionWith(set);
        }

        return union;
    }

    // A histogram's cells (its bins, and the counts below and above) with complementary suppression.
    internal static HistogramResult Suppress(Histogram h, int k, Func<string, IReadOnlySet<string>?>? silosOf = null, int minSilos = 1)
    {
        var cells = h.Counts.Select((c, i) => KeyValuePair.Create(CellCoverage.Bin(i), c))
            .Append(KeyValuePair.Create("below", h.Below)).Append(KeyValuePair.Create("above", h.Above))
            .ToDictionary(StringComparer.Ordinal);
        var shown = Complementary(cells, k, silosOf, minSilos);
        long? Shown(string key, long count) => shown.Contains(key) ? count : null;
        return new HistogramResult(h.Edges, h.Counts.Select((c, i) => Shown(i.ToString(CultureInfo.InvariantCulture), c)).ToArray(), Shown("below", h.Below), Shown("above", h.Above));
    }
}

/// <summary>Where a quantile's search ended, for <see cref="AnalysisReport.Build"/>.</summary>
/// <param name="Group">The group, or null over every row.</param>
/// <param name="Column">The column.</param>
/// <param name="Probability">The probability.</param>
/// <param name="Low">The least value the quantile can be.</param>
/// <param name="High">The greatest; equal to <paramref name="Low"/> when exact.</param>
public sealed record QuantileEnd(string? Group, string Column, double Probability, double Low, double High);
