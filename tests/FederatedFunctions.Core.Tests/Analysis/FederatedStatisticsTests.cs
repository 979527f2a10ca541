using FederatedFunctions.Core.Analysis;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>
/// Each statistic merged over silos against the same statistic computed centrally over the union of their rows: counts,
/// bins and quantiles exactly, moments to double precision (1e-9 relative), including data far from zero, where sums of
/// squares lose every digit.
/// </summary>
public sealed class FederatedStatisticsTests
{
    private const double Tolerance = 1e-9;

    // Silos of uneven sizes (one of them empty), seeded.
    private static double[][] Silos(int seed, Func<Random, double> draw, params int[] sizes)
    {
        var random = new Random(seed);
        return sizes.Select(n => Enumerable.Range(0, n).Select(_ => draw(random)).ToArray()).ToArray();
    }

    private static double Normal(Random r, double mean, double sd) =>
        mean + (sd * Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    // The central computation: two passes over the union, in decimal-free double arithmetic that is exact enough here.
    private static (double Sum, double Mean, double Variance) Central(double[] all)
    {
        var mean = all.Sum() / all.Length;
        var m2 = all.Sum(x => (x - mean) * (x - mean));
        var correction = all.Sum(x => x - mean);
        mean += correction / all.Length;
        m2 = all.Sum(x => (x - mean) * (x - mean));
        return (mean * all.Length, mean, m2 / (all.Length - 1));
    }

    private static void Close(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= Tolerance * Math.Max(1, Math.Abs(expected)), $"{what}: central {expected:R}, merged {actual:R}");

    public static TheoryData<string, double, double> Distributions() => new()
    {
        { "standard", 0, 1 },
        { "far from zero", 1e9, 0.5 },
        { "tiny spread", -3.25, 1e-7 },
    };

    [Theory]
    [MemberData(nameof(Distributions))]
    public void Moments_MergedOverSilos_EqualTheCentralComputation(string name, double mean, double sd)
    {
        var silos = Silos(11, r => Normal(r, mean, sd), 1000, 1, 0, 37, 4000);
        var merged = silos.Select(s => Moments.Of(s)).Aggregate(Moments.Merge);
        var all = silos.SelectMany(s => s).ToArray();
        var (sum, centralMean, variance) = Central(all);

        Assert.Equal(all.Length, merged.Count);
        Close(centralMean, merged.Mean, name + " mean");
        Close(variance, merged.Variance!.Value, name + " variance");
        Close(Math.Sqrt(variance), merged.StandardDeviation!.Value, name + " stddev");
        Close(sum, merged.Total, name + " sum");
        Assert.Equal(all.Min(), merged.Min);
        Assert.Equal(all.Max(), merged.Max);
    }

    [Fact]
    public void Moments_OfDataWithKnownMoments_AreTheKnownValues()
    {
        // 1e9 + 0.5 k for k = 0..N-1, dealt round-robin to 7 silos: every value is exact in double, and
        // mean = 1e9 + 0.25 (N - 1), sample variance = 0.25 N (N + 1) / 12, sum = N 1e9 + 0.25 N (N - 1).
        const int n = 10_001;
        var silos = Enumerable.Range(0, 7).Select(s => Enumerable.Range(0, n).Where(k => k % 7 == s).Select(k => 1e9 + (0.5 * k)).ToArray()).ToArray();
        var merged = silos.Select(s => Moments.Of(s)).Aggregate(Moments.Merge);
        Assert.Equal(n, merged.Count);
        Close(1e9 + (0.25 * (n - 1)), merged.Mean, "mean");
        Close(0.25 * n * (n + 1) / 12.0, merged.Variance!.Value, "variance");
        Close((n * 1e9) + (0.25 * n * (n - 1)), merged.Total, "sum");
        Assert.Equal((1e9, 1e9 + (0.5 * (n - 1))), (merged.Min, merged.Max));
    }

    [Fact]
    public void Moments_FarFromZero_AreWhatSumsOfSquaresCannotGive()
    {
        // The check above is not loose: the textbook sum-of-squares formula is off by orders of magnitude on this data.
        var all = Silos(3, r => Normal(r, 1e9, 0.5), 5000)[0];
        var naive = (all.Sum(x => x * x) - (all.Sum() * all.Sum() / all.Length)) / (all.Length - 1);
        var (_, _, variance) = Central(all);
        Assert.True(Math.Abs(naive - variance) > 1e-3 * variance, $"naive {naive}, central {variance}");
        Close(variance, Moments.Of(all).Variance!.Value, "two-pass");
    }

    [Fact]
    public void Moments_OfNothingAndOfOne_HaveNoVariance_AndANonFiniteValueIsRefused()
    {
        Assert.Null(Moments.Empty.Variance);
        Assert.Null(Moments.Of([4.5]).Variance);
        Assert.Equal(4.5, Moments.Merge(Moments.Empty, Moments.Of([4.5])).Mean);
        Assert.Throws<ArgumentException>(() => Moments.Of([1, double.NaN]));
    }

    [Fact]
    public void CoMoments_MergedOverSilos_GiveTheCentralCovarianceAndCorrelation()
    {
        var random = new Random(5);
        double[] Row()
        {
            var z = Normal(random, 0, 1);
            return [1e6 + z, (2 * z) + Normal(random, 0, 0.1), Normal(random, -7, 3)];
        }

        var silos = new[] { 700, 3, 0, 1200 }.Select(n => Enumerable.Range(0, n).Select(_ => Row()).ToArray()).ToArray();
        var merged = silos.Select(s => CoMoments.Of(s, 3)).Aggregate(CoMoments.Merge);
        var all = silos.SelectMany(s => s).ToArray();
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                var mi = all.Average(r => r[i]);
                var mj = all.Average(r => r[j]);
                var cov = all.Sum(r => (r[i] - mi) * (r[j] - mj)) / (all.Length - 1);
                var vi = all.Sum(r => (r[i] - mi) * (r[i] - mi)) / (all.Length - 1);
                var vj = all.Sum(r => (r[j] - mj) * (r[j] - mj)) / (all.Length - 1);
                Close(cov, merged.Covariance(i, j)!.Value, $"cov[{i},{j}]");
                Close(cov / Math.Sqrt(vi * vj), merged.Correlation(i, j)!.Value, $"corr[{i},{j}]");
            }
        }

        Assert.True(merged.Correlation(0, 1) > 0.99);
        Assert.Throws<ArgumentException>(() => CoMoments.Merge(CoMoments.Empty(2), CoMoments.Empty(3)));
    }

    [Fact]
    public void Histogram_MergedOverSilos_CountsEveryBinExactly_WithTheEdgesWhereTheyBelong()
    {
        var edges = Histogram.EqualWidth(-2, 2, 8);
        var silos = Silos(9, r => Math.Round(Normal(r, 0, 1.2), 1), 500, 0, 1300);
        silos[1] = [-2, 2, 2.5, -2.5, 0, -0.5];
        var merged = silos.Select(s => Histogram.Of(s, edges)).Aggregate(Histogram.Merge);
        var all = silos.SelectMany(s => s).ToArray();

        var expected = new long[8];
        foreach (var x in all.Where(x => x >= -2 && x <= 2))
        {
            expected[Math.Min(7, (int)Math.Floor((x + 2) / 0.5))]++;
        }

        Assert.Equal(expected, merged.Counts);
        Assert.Equal(all.Count(x => x < -2), merged.Below);
        Assert.Equal(all.Count(x => x > 2), merged.Above);
        Assert.Equal(all.Length, merged.Counts.Sum() + merged.Below + merged.Above);
        Assert.Throws<ArgumentException>(() => Histogram.Merge(merged, Histogram.Of([], Histogram.EqualWidth(-2, 2, 4))));
        Assert.Throws<ArgumentException>(() => Histogram.Of([], [1, 1]));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.999)]
    [InlineData(1.0)]
    public void Quantile_FromCountsAlone_IsTheExactValueInAtMostNinePasses(double p)
    {
        // Ties, zeros of both signs, negatives and values far apart.
        var silos = Silos(21, r => r.Next(4) switch { 0 => Math.Round(Normal(r, 0, 5)), 1 => -0.0, 2 => Normal(r, 1e12, 1e3), _ => Normal(r, -40, 0.01) }, 900, 0, 17, 2500);
        var all = silos.SelectMany(s => s).Order().ToArray();
        var search = QuantileSearch.Start(p, all.Length, all[0], all[^1]);
        var passes = 0;
        while (!search.Exact)
        {
            var thresholds = search.Thresholds();
            var counts = silos.Select(s => QuantileSearch.CountAtOrBelow(s, thresholds)).Aggregate((a, b) => a.Zip(b, (x, y) => x + y).ToArray());
            search = search.Narrow(thresholds, counts);
            passes++;
            Assert.True(passes <= 9, $"not exact after {passes} passes: bracket {search.Bracket}");
        }

        var expected = all[Math.Max(1, (long)Math.Ceiling(p * all.Length)) - 1];
        Assert.Equal(expected == 0 ? 0.0 : expected, search.Bracket.Low);
    }

    [Fact]
    public void Quantile_UnderAMinimumCell_StopsAtABracketOfAtLeastThatManyRowsHoldingTheQuantile()
    {
        var silos = Silos(4, r => Normal(r, 50, 10), 300, 450);
        var all = silos.SelectMany(s => s).Order().ToArray();
        var search = QuantileSearch.Start(0.5, all.Length, all[0], all[^1]);
        for (var pass = 0; pass < 8 && !search.Exact; pass++)
        {
            var thresholds = search.Thresholds();
            var counts = silos.Select(s => QuantileSearch.CountAtOrBelow(s, thresholds)).Aggregate((a, b) => a.Zip(b, (x, y) => x + y).ToArray());
            search = search.Narrow(thresholds, counts, minimumCell: 10);
        }

        Assert.False(search.Exact);
        Assert.True(search.CountInside >= 10, $"{search.CountInside} rows in the bracket");
        var median = all[(all.Length / 2) - 1 + (all.Length % 2)];
        Assert.InRange(median, search.Bracket.Low, search.Bracket.High);
        Assert.Equal(search.CountInside, all.LongCount(x => x >= search.Bracket.Low && x <= search.Bracket.High));
    }

    [Fact]
    public void Quantile_Rank_IsTheCeilingOfPTimesNWithoutFloatingPointError()
    {
        // 0.07 × 100 is 7.000000000000001 in double: the rank is still 7.
        Assert.Equal(7, QuantileSearch.Start(0.07, 100, 0, 1).Rank);
        Assert.Equal(1, QuantileSearch.Start(0, 100, 0, 1).Rank);
        Assert.Equal(100, QuantileSearch.Start(1, 100, 0, 1).Rank);
    }

    [Fact]
    public void Complementary_WithheldCellsUnderKInAll_WithholdTheSmallestShownUntilTheyAreNot()
    {
        // One small cell (2): the smallest shown cell (6) is withheld with it, so the total minus the shown cells is 8 >= 5.
        Assert.Equal(["b", "d"], AnalysisReport.Complementary(new Dictionary<string, long> { ["a"] = 2, ["b"] = 40, ["c"] = 6, ["d"] = 9, ["z"] = 0 }, 5).Where(k => k != "z").Order());
        Assert.Contains("z", AnalysisReport.Complementary(new Dictionary<string, long> { ["a"] = 2, ["z"] = 0, ["c"] = 6 }, 5));

        // Withheld cells that already add up to k need nothing more.
        Assert.Equal(["b"], AnalysisReport.Complementary(new Dictionary<string, long> { ["a"] = 3, ["c"] = 4, ["b"] = 40 }, 5));

        // Nothing under k: everything shown.
        Assert.Equal(3, AnalysisReport.Complementary(new Dictionary<string, long> { ["a"] = 5, ["b"] = 6, ["c"] = 0 }, 5).Count);
    }

    [Fact]
    public void EqualWidth_OverAnyFiniteRange_GivesIncreasingEdges_OrFewerBinsWhenTooNarrow()
    {
        var wide = Histogram.EqualWidth(-double.MaxValue, double.MaxValue, 10);
        Assert.All(wide.Zip(wide.Skip(1)), p => Assert.True(p.Second > p.First));
        Assert.Throws<ArgumentException>(() => Histogram.EqualWidth(1, Math.BitIncrement(1.0), 4));
        Assert.Equal([1, Math.BitIncrement(1.0)], Histogram.EqualWidthUpTo(1, Math.BitIncrement(1.0), 4));
        Assert.Equal(5, Histogram.EqualWidthUpTo(0, 1, 4).Length);
    }

    [Fact]
    public void CellSuppression_CountsFromOneToBelowK_AreNeverReported_AndASilosMinimumRaisesTheRunsK()
    {
        Assert.Equal([0, null, null, 5, 12], CellSuppression.Apply([0, 1, 4, 5, 12], 5));
        Assert.Equal(8, CellSuppression.Minimum(5, [null, 8, 3]));
        Assert.Equal(5, CellSuppression.Minimum(5, []));
    }
}
