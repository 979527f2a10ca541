namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// Count, compensated sum, mean, M2 (the sum of squared deviations from the mean), min and max of one column's present
/// values, mergeable across silos without loss: per-silo moments combine with Chan, Golub and LeVeque's pairwise
/// formula, never through sums of squares, so the variance of data far from zero keeps double precision.
/// </summary>
public sealed record Moments
{
    /// <summary>Values seen.</summary>
    public long Count { get; init; }

    /// <summary>Their sum, Neumaier-compensated: <see cref="Sum"/> plus <see cref="SumCompensation"/> is the exact sum to double precision.</summary>
    public double Sum { get; init; }

    /// <summary>The running compensation of <see cref="Sum"/>.</summary>
    public double SumCompensation { get; init; }

    /// <summary>Their mean (0 when there is none).</summary>
    public double Mean { get; init; }

    /// <summary>The sum of squared deviations from <see cref="Mean"/>.</summary>
    public double M2 { get; init; }

    /// <summary>The smallest value (positive infinity when there is none).</summary>
    public double Min { get; init; } = double.PositiveInfinity;

    /// <summary>The largest value (negative infinity when there is none).</summary>
    public double Max { get; init; } = double.NegativeInfinity;

    /// <summary>No value.</summary>
    public static Moments Empty { get; } = new();

    /// <summary>The compensated sum.</summary>
    public double Total => Sum + SumCompensation;

    /// <summary>The sample variance (divisor n − 1); null below 2 values.</summary>
    public double? Variance => Count < 2 ? null : M2 / (Count - 1);

    /// <summary>The sample standard deviation; null below 2 values.</summary>
    public double? StandardDeviation => Variance is { } v ? Math.Sqrt(v) : null;

    /// <summary>
    /// The moments of <paramref name="values"/>, in two passes: the compensated sum gives the mean, corrected once, and the
    /// squared deviations from it give M2. A silo holds all its values, so it can afford the pass that one-pass updates
    /// (Welford's) save, and keeps double precision on data far from zero.
    /// </summary>
    /// <exception cref="ArgumentException">A value is not finite.</exception>
    public static Moments Of(ReadOnlySpan<double> values)
    {
        if (values.IsEmpty)
        {
            return Empty;
        }

        double sum = 0, c = 0, min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var x in values)
        {
            if (!double.IsFinite(x))
            {
                throw new ArgumentException($"Value {x} is not finite.", nameof(values));
            }

            (sum, c) = Neumaier(sum, c, x);
            min = Math.Min(min, x);
            max = Math.Max(max, x);
        }

        var n = values.Length;
        var mean = (sum + c) / n;
        double residual = 0, m2 = 0;
        foreach (var x in values)
        {
            residual += x - mean;
        }

        mean += residual / n;
        foreach (var x in values)
        {
            var d = x - mean;
            m2 += d * d;
        }

        return new Moments { Count = n, Sum = sum, SumCompensation = c, Mean = mean, M2 = m2, Min = min, Max = max };
    }

    /// <summary>The moments of the union of two disjoint sets of values.</summary>
    public static Moments Merge(Moments a, Moments b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count == 0)
        {
            return b;
        }

        if (b.Count == 0)
        {
            return a;
        }

        var n = a.Count + b.Count;
        var delta = b.Mean - a.Mean;
        var (sum, c) = Neumaier(a.Sum, a.SumCompensation + b.SumCompensation, b.Sum);
        return new Moments
        {
            Count = n,
            Sum = sum,
            SumCompensation = c,
            Mean = a.Mean + (delta * b.Count / n),
            M2 = a.M2 + b.M2 + (delta * delta * ((double)a.Count * b.Count / n)),
            Min = Math.Min(a.Min, b.Min),
            Max = Math.Max(a.Max, b.Max),
        };
    }

    private static (double Sum, double Compensation) Neumaier(double sum, double compensation, double x)
    {
        var t = sum + x;
        compensation += Math.Abs(sum) >= Math.Abs(x) ? (sum - t) + x : (x - t) + sum;
        return (t, compensation);
    }
}
