namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// Exact quantiles over data that stays in the silos, from counts only. Doubles are mapped to 64-bit keys in the same
/// order; each pass asks every silo for the count of its values at or below each of <see cref="Splits"/> thresholds
/// inside the current bracket, and the summed counts narrow the bracket to one part of it. With 255 thresholds a pass
/// cuts the bracket into 256 parts, so at most 9 passes leave a bracket of one double: the exact quantile, the smallest
/// value whose cumulative count reaches the rank ⌈p·n⌉ (the inverse of the empirical distribution function, type 1).
/// </summary>
/// <remarks>
/// A search stops early, with a stated bound, when the bracket would hold fewer than <c>k</c> rows (small-cell
/// suppression): the result is then the bracket, and the quantile lies in it.
/// </remarks>
public sealed record QuantileSearch
{
    /// <summary>Thresholds per pass.</summary>
    public const int Splits = 255;

    /// <summary>The probability.</summary>
    public required double Probability { get; init; }

    /// <summary>The target rank, from 1.</summary>
    public required long Rank { get; init; }

    /// <summary>The lowest key the quantile can have.</summary>
    public required ulong Low { get; init; }

    /// <summary>The highest key the quantile can have.</summary>
    public required ulong High { get; init; }

    /// <summary>Rows at or below the key just under <see cref="Low"/>.</summary>
    public long CountBelow { get; init; }

    /// <summary>Rows inside the bracket.</summary>
    public required long CountInside { get; init; }

    /// <summary>Whether the bracket is a single value: the exact quantile.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Exact => Low == High;

    /// <summary>The bracket as values.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public (double Low, double High) Bracket => (FromKey(Low), FromKey(High));

    /// <summary>The start of a search for the <paramref name="probability"/> quantile of <paramref name="count"/> values between <paramref name="min"/> and <paramref name="max"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The probability is not in [0, 1], or there is no value.</exception>
    public static QuantileSearch Start(double probability, long count, double min, double max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (!(probability is >= 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "A quantile's probability is from 0 to 1.");
        }

        // In decimal: 0.07 × 100 is 7.000000000000001 in double, whose ceiling would be rank 8.
        var rank = Math.Max(1, (long)Math.Ceiling((decimal)probability * count));
        return new QuantileSearch { Probability = probability, Rank = rank, Low = ToKey(min), High = ToKey(max), CountInside = count };
    }

    /// <summary>The thresholds of the next pass: values whose count at or below each the silos report.</summary>
    public double[] Thresholds()
    {
        var width = High - Low;
        var parts = (ulong)Math.Min(Splits, (long)Math.Min(width, Splits));
        var thresholds = new double[parts];
        for (ulong i = 1; i <= parts; i++)
        {
            // The key ending part i of parts+1 equal parts of [Low, High]; the last part ends at High, which needs no count.
            var key = Low + (ulong)((UInt128)width * i / (parts + 1));
            thresholds[i - 1] = FromKey(key);
        }

        return thresholds.Distinct().ToArray();
    }

    /// <summary>The bracket after a pass, from the summed counts at or below each threshold of <see cref="Thresholds"/>.</summary>
    /// <param name="thresholds">The thresholds of the pass.</param>
    /// <param name="countsAtOrBelow">The count of values at or below each, over every silo.</param>
    /// <param name="minimumCell">The least number of rows a bracket may be narrowed to (small-cell suppression); 1 for none.</param>
    /// <returns>The narrowed search, or this one when narrowing would go below the minimum cell.</returns>
    public QuantileSearch Narrow(double[] thresholds, long[] countsAtOrBelow, int minimumCell = 1)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        ArgumentNullException.ThrowIfNull(countsAtOrBelow);
        var low = Low;
        var below = CountBelow;
        for (var i = 0; i < thresholds.Length; i++)
        {
            var key = ToKey(thresholds[i]);
            if (countsAtOrBelow[i] >= Rank)
            {
                var inside = countsAtOrBelow[i] - below;
                return inside < minimumCell ? this : this with { Low = low, High = key, CountBelow = below, CountInside = inside };
            }

            low = key + 1;
            below = countsAtOrBelow[i];
        }

        var rest = CountBelow + CountInside - below;
        return rest < minimumCell ? this : this with { Low = low, CountBelow = below, CountInside = rest };
    }

    /// <summary>A silo's answer to a pass: how many of its values are at or below each threshold.</summary>
    public static long[] CountAtOrBelow(ReadOnlySpan<double> values, double[] thresholds)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        // Thresholds increase: x counts for every threshold from the first one at or above it. Each value is counted
        // once at that threshold, and the running sum gives the count at or below each.
        var counts = new long[thresholds.Length];
        foreach (var x in values)
        {
            var i = Array.BinarySearch(thresholds, x);
            var first = i >= 0 ? i : ~i;
            if (first < counts.Length)
            {
                counts[first]++;
            }
        }

        for (var j = 1; j < counts.Length; j++)
        {
            counts[j] += counts[j - 1];
        }

        return counts;
    }

    /// <summary>
    /// The order-preserving 64-bit key of a finite double. −0 and +0 share one key, and the keys have no gap there, so
    /// adjacent keys are adjacent doubles.
    /// </summary>
    public static ulong ToKey(double value)
    {
        var bits = (ulong)BitConverter.DoubleToInt64Bits(value == 0 ? 0.0 : value);
        return (bits & 0x8000_0000_0000_0000UL) != 0 ? ~bits + 1 : bits | 0x8000_0000_0000_0000UL;
    }

    /// <summary>The double of a key.</summary>
    public static double FromKey(ulong key) =>
        BitConverter.Int64BitsToDouble((long)((key & 0x8000_0000_0000_0000UL) != 0 ? key & 0x7FFF_FFFF_FFFF_FFFFUL : ~(key - 1)));
}
