using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>What one pass of an analysis asks of each silo.</summary>
/// <param name="Data">Where the rows are.</param>
/// <param name="Numeric">Columns read as numbers.</param>
/// <param name="Categorical">Columns whose values are counted.</param>
/// <param name="GroupBy">The group-by column, if any.</param>
/// <param name="Covariance">Columns of the co-moment matrix, on the first pass.</param>
/// <param name="Moments">Whether this pass computes count, missing and moments (the first pass).</param>
/// <param name="HistogramEdges">Histograms this pass counts, by column.</param>
/// <param name="Thresholds">Quantile thresholds this pass counts values at or below, by column: over every row, and with a group-by, per group too.</param>
/// <param name="Bounds">Declared bounds values are clamped to, by column.</param>
/// <param name="Categories">Declared categories, by column: the silo counts those, and every other value as <c>(other)</c>, so no undeclared value (nor how many distinct ones there are) leaves it.</param>
/// <param name="Groups">The group-by column's declared values: the silo puts rows of any other value in the group <c>(other)</c>; null takes the groups found.</param>
public sealed record AnalysisQuery(
    AnalysisDataSpec Data,
    IReadOnlyList<string> Numeric,
    IReadOnlyList<string> Categorical,
    string? GroupBy,
    IReadOnlyList<string>? Covariance,
    bool Moments,
    IReadOnlyDictionary<string, double[]> HistogramEdges,
    IReadOnlyDictionary<string, double[]> Thresholds,
    IReadOnlyDictionary<string, BoundsSpec> Bounds,
    IReadOnlyDictionary<string, IReadOnlyList<string>>? Categories = null,
    IReadOnlyList<string>? Groups = null)
{
    /// <summary>
    /// Pass 1's query of a spec: every numeric and categorical column, the group-by and its declared groups, the
    /// covariance, the histograms over given edges (or a given range), the bounds and the declared categories.
    /// </summary>
    public static AnalysisQuery FirstPass(AnalysisSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new AnalysisQuery(
            spec.Data,
            spec.Features.Where(f => f.Statistics.Any(AnalysisStatistics.Numeric.Contains)).Select(f => f.Column).ToArray(),
            spec.Features.Where(f => f.Statistics.Contains(AnalysisStatistics.ValueCounts)).Select(f => f.Column).ToArray(),
            spec.GroupBy,
            spec.Covariance,
            true,
            spec.Features.Where(f => f.Histogram is { } h && (h.Edges is not null || h.Min is not null)).ToDictionary(f => f.Column, f => GivenEdges(f.Histogram!), StringComparer.Ordinal),
            new Dictionary<string, double[]>(),
            spec.Features.Where(f => f.Bounds is not null).ToDictionary(f => f.Column, f => f.Bounds!, StringComparer.Ordinal),
            spec.Features.Where(f => f.Categories is not null).ToDictionary(f => f.Column, f => f.Categories!, StringComparer.Ordinal),
            spec.Groups);
    }

    private static double[] GivenEdges(HistogramSpec histogram) =>
        histogram.Edges is { } edges ? [.. edges] : Histogram.EqualWidth(histogram.Min!.Value, histogram.Max!.Value, histogram.Bins!.Value);
}

/// <summary>One analysis pass of one silo: ids and the query, no value.</summary>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Pass">The pass, from 1.</param>
/// <param name="SiloId">The silo.</param>
/// <param name="Query">What to compute.</param>
/// <param name="Privacy">eyes-on or eyes-off.</param>
/// <param name="Execution">A token of this execution of the analysis: in the partial's path and content, so that running an analysis id again never reads an earlier execution's partials.</param>
/// <param name="Pad">Pad the partial as eyes-off does, also in eyes-on (a differentially private analysis): its size, which history records, then says little about the data.</param>
/// <param name="Masking">With secure aggregation, the attempt to mask the partial for: the silo writes its masked vector (<see cref="SecureAnalysisVector"/>), never the partial.</param>
public sealed record AnalyzeRequest(string AnalysisId, int Pass, string SiloId, AnalysisQuery Query, string Privacy = PrivacyModes.EyesOn, string Execution = "", bool Pad = false, Silos.MaskingAttempt? Masking = null);

/// <summary>A silo's partial statistics for one pass: by group (the empty string when there is no group-by).</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Pass">The pass.</param>
/// <param name="Rows">Rows read.</param>
/// <param name="Groups">The statistics of each group's rows.</param>
/// <param name="CountsAtOrBelow">Per column, the count of values at or below each of the pass's thresholds, over every row.</param>
/// <param name="Execution">The execution it belongs to (<see cref="AnalyzeRequest.Execution"/>).</param>
/// <param name="Nonce">Random bytes the silo adds, so that the partial's SHA-256 (which history records) cannot be matched by guessing its small counts.</param>
public sealed record AnalysisPartial(
    string SiloId,
    int Pass,
    long Rows,
    IReadOnlyDictionary<string, GroupPartial> Groups,
    IReadOnlyDictionary<string, long[]> CountsAtOrBelow,
    string Execution = "",
    string Nonce = "");

/// <summary>The statistics of one group's rows in one silo.</summary>
/// <param name="Rows">Rows in the group.</param>
/// <param name="Features">By column.</param>
/// <param name="CoMoments">Over the covariance columns' complete rows, on the first pass.</param>
public sealed record GroupPartial(long Rows, IReadOnlyDictionary<string, FeaturePartial> Features, CoMoments? CoMoments);

/// <summary>The statistics of one column in one group of one silo.</summary>
/// <param name="Missing">Missing values.</param>
/// <param name="Moments">Count, sum, mean, M2, min, max of the present values (numeric columns, first pass).</param>
/// <param name="Histogram">Counts per bin (when the pass asks for it).</param>
/// <param name="ValueCounts">Counts per value (categorical columns, first pass).</param>
/// <param name="CountsAtOrBelow">With a group-by, the group's count of values at or below each of the pass's thresholds of the column.</param>
public sealed record FeaturePartial(long Missing, Moments? Moments, Histogram? Histogram, IReadOnlyDictionary<string, long>? ValueCounts, long[]? CountsAtOrBelow = null);

/// <summary>Merges silos' partials: each statistic of the union of their rows.</summary>
public static class AnalysisMerge
{
    /// <summary>The partial of the union of the rows of <paramref name="partials"/>, all of one pass.</summary>
    public static AnalysisPartial Merge(IReadOnlyList<AnalysisPartial> partials)
    {
        ArgumentNullException.ThrowIfNull(partials);
        var groups = new SortedDictionary<string, GroupPartial>(StringComparer.Ordinal);
        var counts = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var partial in partials)
        {
            foreach (var (name, group) in partial.Groups)
            {
                groups[name] = groups.TryGetValue(name, out var seen) ? Merge(seen, group) : group;
            }

            foreach (var (column, c) in partial.CountsAtOrBelow)
            {
                counts[column] = counts.TryGetValue(column, out var seen) ? Add(seen, c) : (long[])c.Clone();
            }
        }

        return new AnalysisPartial("*", partials.Count == 0 ? 0 : partials[0].Pass, partials.Sum(p => p.Rows), groups, counts);
    }

    /// <summary>The statistics of the union of two disjoint groups of rows.</summary>
    public static GroupPartial Merge(GroupPartial a, GroupPartial b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var features = new SortedDictionary<string, FeaturePartial>(StringComparer.Ordinal);
        foreach (var column in a.Features.Keys.Union(b.Features.Keys))
        {
            features[column] = (a.Features.GetValueOrDefault(column), b.Features.GetValueOrDefault(column)) switch
            {
                ({ } x, { } y) => Merge(x, y),
                ({ } x, null) => x,
                (null, { } y) => y,
                _ => throw new InvalidOperationException("unreachable"),
            };
        }

        var co = (a.CoMoments, b.CoMoments) switch
        {
            ({ } x, { } y) => CoMoments.Merge(x, y),
            (var x, var y) => x ?? y,
        };
        return new GroupPartial(a.Rows + b.Rows, features, co);
    }

    private static FeaturePartial Merge(FeaturePartial a, FeaturePartial b) => new(
        a.Missing + b.Missing,
        a.Moments is null || b.Moments is null ? a.Moments ?? b.Moments : Moments.Merge(a.Moments, b.Moments),
        a.Histogram is null || b.Histogram is null ? a.Histogram ?? b.Histogram : Histogram.Merge(a.Histogram, b.Histogram),
        a.ValueCounts is null || b.ValueCounts is null ? a.ValueCounts ?? b.ValueCounts : MergeCounts(a.ValueCounts, b.ValueCounts),
        a.CountsAtOrBelow is null || b.CountsAtOrBelow is null ? a.CountsAtOrBelow ?? b.CountsAtOrBelow : Add(a.CountsAtOrBelow, b.CountsAtOrBelow));

    private static long[] Add(long[] a, long[] b) =>
        a.Length == b.Length ? a.Zip(b, (x, y) => x + y).ToArray() : throw new InvalidDataException($"Counts at {a.Length} and at {b.Length} thresholds cannot be added: the partials are of different passes.");

    private static SortedDictionary<string, long> MergeCounts(IReadOnlyDictionary<string, long> a, IReadOnlyDictionary<string, long> b)
    {
        var merged = new SortedDictionary<string, long>(a.ToDictionary(), StringComparer.Ordinal);
        foreach (var (value, count) in b)
        {
            merged[value] = merged.GetValueOrDefault(value) + count;
        }

        return merged;
    }
}
