namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// Small-cell suppression, as DataSHIELD's sites do it: a reported count (a histogram bin, a value count, a group) of at
/// least 1 and fewer than <c>k</c> rows is never reported. A count of zero is reported: it says nothing about any row.
/// </summary>
public static class CellSuppression
{
    /// <summary>Whether a count may be reported under a minimum of <paramref name="k"/> rows per cell.</summary>
    public static bool Reportable(long count, int k) => count == 0 || count >= k;

    /// <summary>The counts, each replaced by null when it may not be reported.</summary>
    public static long?[] Apply(IReadOnlyList<long> counts, int k)
    {
        ArgumentNullException.ThrowIfNull(counts);
        return counts.Select(c => Reportable(c, k) ? c : (long?)null).ToArray();
    }

    /// <summary>
    /// The strictest of the run's minimum and each silo's own: a silo that sets a higher minimum in its registry entry
    /// raises it for every cell its rows are part of.
    /// </summary>
    public static int Minimum(int run, IEnumerable<int?> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        return silos.Aggregate(run, (k, silo) => Math.Max(k, silo ?? 0));
    }
}
