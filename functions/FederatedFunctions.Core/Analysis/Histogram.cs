namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// Counts of values per bin, over fixed edges: bin i holds edges[i] ≤ x &lt; edges[i + 1], and the last bin also holds
/// x = its upper edge. Values outside the edges are counted apart (<see cref="Below"/>, <see cref="Above"/>). Counts are
/// exact and merge by addition.
/// </summary>
public sealed record Histogram
{
    /// <summary>The bin edges, strictly increasing, at least two.</summary>
    public required double[] Edges { get; init; }

    /// <summary>The count of each bin (one fewer than the edges).</summary>
    public required long[] Counts { get; init; }

    /// <summary>Values below the first edge.</summary>
    public long Below { get; init; }

    /// <summary>Values above the last edge.</summary>
    public long Above { get; init; }

    /// <summary>Equal-width edges: <paramref name="bins"/> bins from <paramref name="min"/> to <paramref name="max"/>.</summary>
    /// <exception cref="ArgumentException">Not finite, <paramref name="max"/> not above <paramref name="min"/>, or no bin.</exception>
    public static double[] EqualWidth(double min, double max, int bins)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max) || max <= min || bins < 1)
        {
            throw new ArgumentException($"Equal-width bins need finite min < max and at least one bin; got [{min}, {max}], {bins}.");
        }

        var edges = Lerp(min, max, bins);
        if (edges.Zip(edges.Skip(1)).Any(p => !(p.Second > p.First)))
        {
            throw new ArgumentException($"[{min}, {max}] is too narrow for {bins} distinct equal-width bins.");
        }

        return edges;
    }

    /// <summary>Equal-width edges of at most <paramref name="bins"/> bins: as many as the range has distinct edges for (at least one).</summary>
    /// <exception cref="ArgumentException">Not finite, or <paramref name="max"/> not above <paramref name="min"/>.</exception>
    public static double[] EqualWidthUpTo(double min, double max, int bins)
    {
        for (var n = Math.Max(1, bins); ; n--)
        {
            var edges = Lerp(min, max, n);
            if (n == 1 || edges.Zip(edges.Skip(1)).All(p => p.Second > p.First))
            {
                return n == 1 ? EqualWidth(min, max, 1) : edges;
            }
        }
    }

    /// <summary>The histogram of <paramref name="values"/> over <paramref name="edges"/>.</summary>
    /// <exception cref="ArgumentException">The edges are not strictly increasing finite numbers, at least two.</exception>
    public static Histogram Of(ReadOnlySpan<double> values, double[] edges)
    {
        ArgumentNullException.ThrowIfNull(edges);
        if (edges.Length < 2 || edges.Any(e => !double.IsFinite(e)) || edges.Zip(edges.Skip(1)).Any(p => p.Second <= p.First))
        {
            throw new ArgumentException("Histogram edges must be at least two strictly increasing finite numbers.", nameof(edges));
        }

        var counts = new long[edges.Length - 1];
        long below = 0, above = 0;
        foreach (var x in values)
        {
            if (x < edges[0])
            {
                below++;
            }
            else if (x > edges[^1])
            {
                above++;
            }
            else
            {
                // The last index whose edge is at or below x; the upper edge itself belongs to the last bin.
                var i = Array.BinarySearch(edges, x);
                var bin = i >= 0 ? i : ~i - 1;
                counts[Math.Min(bin, counts.Length - 1)]++;
            }
        }

        return new Histogram { Edges = (double[])edges.Clone(), Counts = counts, Below = below, Above = above };
    }

    // A weighted mean of the ends: no overflow, whatever the range.
    private static double[] Lerp(double min, double max, int bins)
    {
        var edges = new double[bins + 1];
        for (var i = 0; i <= bins; i++)
        {
            edges[i] = i == 0 ? min : i == bins ? max : (min * ((double)(bins - i) / bins)) + (max * ((double)i / bins));
        }

        return edges;
    }

    /// <summary>The histogram of the union of two disjoint sets of values over the same edges.</summary>
    /// <exception cref="ArgumentException">The edges differ.</exception>
    public static Histogram Merge(Histogram a, Histogram b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Edges.SequenceEqual(b.Edges))
        {
            throw new ArgumentException("Histograms over different edges cannot be merged.", nameof(b));
        }

        return a with { Counts = a.Counts.Zip(b.Counts, (x, y) => x + y).ToArray(), Below = a.Below + b.Below, Above = a.Above + b.Above };
    }
}
