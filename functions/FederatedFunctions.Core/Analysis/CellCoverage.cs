using System.Globalization;

namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// Which silos' rows are in each cell of an analysis (a group, a column's values, a histogram bin, a value count, the
/// co-moment rows), so that a cell filled by fewer than the analysis's <c>minSilos</c> silos is never reported.
/// </summary>
/// <remarks>
/// <para>Built by the merge from the silos' partials, before they are summed; only the sets' sizes decide anything, and
/// neither the sets nor their sizes are reported. A silo is in a cell when it has at least one row there.</para>
/// <para>Why: the minimum number of silos an analysis needs says how many silos took part, not how many are behind each
/// number. A category, a bin or a group that only one silo's rows fill would otherwise be that silo's own statistic,
/// however many silos took part. With this rule, eyes-off, every reported number aggregates at least <c>minSilos</c>
/// silos, as vantage6's minimum number of organizations asks of every aggregate.</para>
/// </remarks>
public sealed class CellCoverage
{
    /// <summary>The cell of a column's present values.</summary>
    public const string Values = "values";

    /// <summary>The cell of a group's rows.</summary>
    public const string Rows = "rows";

    /// <summary>The cell of the rows the co-moments are computed over.</summary>
    public const string CoMoments = "comoments";

    private readonly Dictionary<string, HashSet<string>> silos = new(StringComparer.Ordinal);

    private CellCoverage(int minSilos) => MinSilos = minSilos;

    /// <summary>The least number of silos a reported cell must hold rows of.</summary>
    public int MinSilos { get; }

    /// <summary>No rule: every cell is covered (a single silo's own analysis, or tests of the other rules).</summary>
    public static CellCoverage None { get; } = new(1);

    /// <summary>The coverage of the cells of <paramref name="partials"/> (one per silo; several passes may be given).</summary>
    public static CellCoverage Of(IEnumerable<AnalysisPartial> partials, int minSilos)
    {
        ArgumentNullException.ThrowIfNull(partials);
        var coverage = new CellCoverage(minSilos);
        foreach (var partial in partials)
        {
            foreach (var (group, g) in partial.Groups)
            {
                void Add(string? column, string cell, long count)
                {
                    if (count > 0)
                    {
                        coverage.Set(group, column, cell).Add(partial.SiloId);
                        coverage.Set(null, column, cell).Add(partial.SiloId);
                    }
                }

                Add(null, Rows, g.Rows);
                Add(null, CoMoments, g.CoMoments?.Count ?? 0);
                foreach (var (column, f) in g.Features)
                {
                    Add(column, Values, f.Moments?.Count ?? 0);
                    if (f.Histogram is { } h)
                    {
                        for (var i = 0; i < h.Counts.Length; i++)
                        {
                            Add(column, Bin(i), h.Counts[i]);
                        }

                        Add(column, "below", h.Below);
                        Add(column, "above", h.Above);
                    }

                    foreach (var (value, count) in f.ValueCounts ?? new Dictionary<string, long>())
                    {
                        Add(column, Value(value), count);
                    }
                }
            }
        }

        return coverage;
    }

    /// <summary>
    /// A coverage known by each cell's number of silos only (secure aggregation sums one indicator per silo and cell), so
    /// no silo is named. A union of cells then counts as many silos as its fullest cell: a lower bound of the true union,
    /// so a rule over a union withholds at least what it would with the silos known.
    /// </summary>
    /// <param name="minSilos">The least number of silos a reported cell must hold rows of.</param>
    /// <param name="cells">Each cell (group, column, cell) with its number of silos.</param>
    public static CellCoverage OfCounts(int minSilos, IEnumerable<(string? Group, string? Column, string Cell, long Silos)> cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        var coverage = new CellCoverage(minSilos);
        foreach (var (group, column, cell, count) in cells)
        {
            // Stand-ins numbered from 1, the same in every cell, so that a union of cells has as many as its fullest one.
            coverage.Set(group, column, cell).UnionWith(Enumerable.Range(1, (int)Math.Min(count, int.MaxValue)).Select(i => "#" + i.ToString(CultureInfo.InvariantCulture)));
        }

        return coverage;
    }

    /// <summary>The coverage of two passes' cells (pass 1's and the ranged histograms' of pass 2), which name different cells.</summary>
    public static CellCoverage Combine(CellCoverage first, CellCoverage second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (ReferenceEquals(second, None))
        {
            return first;
        }

        if (ReferenceEquals(first, None))
        {
            return second;
        }

        var combined = new CellCoverage(first.MinSilos);
        foreach (var (key, set) in first.silos.Concat(second.silos))
        {
            (combined.silos.TryGetValue(key, out var seen) ? seen : combined.silos[key] = new HashSet<string>(StringComparer.Ordinal)).UnionWith(set);
        }

        return combined;
    }

    /// <summary>The cell of histogram bin <paramref name="index"/>.</summary>
    public static string Bin(int index) => index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The cell of a value count.</summary>
    public static string Value(string value) => "value:" + value;

    /// <summary>The silos with rows in a cell of <paramref name="group"/> (null: every row) and <paramref name="column"/> (null: the group's own cells); null without a rule.</summary>
    public IReadOnlySet<string>? SilosOf(string? group, string? column, string cell) =>
        ReferenceEquals(this, None) ? null : silos.GetValueOrDefault(Key(group, column, cell)) ?? [];

    /// <summary>Whether a cell holds rows of at least <see cref="MinSilos"/> silos (always, without a rule).</summary>
    public bool Covered(string? group, string? column, string cell) => SilosOf(group, column, cell) is not { } s || s.Count >= MinSilos;

    private HashSet<string> Set(string? group, string? column, string cell)
    {
        var key = Key(group, column, cell);
        if (!silos.TryGetValue(key, out var set))
        {
            silos[key] = set = new HashSet<string>(StringComparer.Ordinal);
        }

        return set;
    }

    // Group names and column names are arbitrary text: a separator they cannot hold keeps the keys apart.
    private static string Key(string? group, string? column, string cell) => $"{(group is null ? "*" : "=" + group)}\u0000{column}\u0000{cell}";
}
