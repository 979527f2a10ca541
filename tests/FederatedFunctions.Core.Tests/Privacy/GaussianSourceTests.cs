using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Tests.Privacy;

public sealed class GaussianSourceTests
{
    private static double[] Draw(IGaussianSource source, int count) =>
        [.. Enumerable.Range(0, count).Select(_ => source.NextStandardNormal())];

    [Fact]
    public void CryptoSource_ThousandSamples_AreAllDistinct()
    {
        // A continuous distribution sampled at 53-bit resolution repeats a value with probability ~1e-10 here;
        // a constant, stuck or short-period generator repeats at once.
        var samples = Draw(new CryptoGaussianSource(), 1000);

        Assert.Equal(samples.Length, samples.Distinct().Count());
    }

    [Fact]
    public void CryptoSource_TwoInstances_ProduceDifferentSequences()
    {
        var a = Draw(new CryptoGaussianSource(), 64);
        var b = Draw(new CryptoGaussianSource(), 64);

        Assert.NotEqual(a, b);
        Assert.Empty(a.Intersect(b));
    }

    [Fact]
    public void CryptoSource_Fill_WritesNoiseOfTheRequestedScale()
    {
        var buffer = new float[100_000];

        new CryptoGaussianSource().Fill(buffer, 3.0);

        var stats = SampleStatistics.Of(buffer);
        Assert.InRange(stats.StdDev, 3.0 * (1 - 6 / Math.Sqrt(200_000.0)), 3.0 * (1 + 6 / Math.Sqrt(200_000.0)));
        Assert.True(buffer.Distinct().Count() > 0.99 * buffer.Length); // Float rounding allows some collisions, not many.
    }

    [Fact]
    public void SeededSource_SameSeed_ReproducesTheSequence()
    {
        var a = Draw(new SeededGaussianSource(42), 500);
        var b = Draw(new SeededGaussianSource(42), 500);

        Assert.Equal(a, b);
    }

    [Fact]
    public void SeededSource_DifferentSeeds_DifferentSequences()
    {
        var a = Draw(new SeededGaussianSource(42), 100);
        var b = Draw(new SeededGaussianSource(43), 100);
        var c = Draw(new SeededGaussianSource(long.MinValue), 100);

        Assert.Empty(a.Intersect(b));
        Assert.Empty(a.Intersect(c));
    }

    [Fact]
    public void SeededSource_FillAndNextStandardNormal_DrawFromTheSameStream()
    {
        var filled = new float[10];
        new SeededGaussianSource(5).Fill(filled, 2.0);
        var drawn = Draw(new SeededGaussianSource(5), 10);

        Assert.Equal(drawn.Select(d => (float)(2.0 * d)), filled);
    }

    [Fact]
    public void SeededSource_LongSequence_IsStandardNormal()
    {
        const int n = 200_000;
        var samples = Draw(new SeededGaussianSource(-7), n);

        var stats = SampleStatistics.Of(samples);
        Assert.InRange(stats.Mean, -5 / Math.Sqrt(n), 5 / Math.Sqrt(n));
        Assert.InRange(stats.StdDev, 1 - 5 / Math.Sqrt(2.0 * n), 1 + 5 / Math.Sqrt(2.0 * n));
        // Tails: P(|X| > 3) = erfc(3/√2) = 0.0026998 (A&S 26.2); standard error √(p(1 − p)/n) ≈ 1.16e-4.
        var beyond3 = samples.Count(s => Math.Abs(s) > 3) / (double)n;
        Assert.InRange(beyond3, 0.0026998 - 5 * 1.16e-4, 0.0026998 + 5 * 1.16e-4);
    }

    [Theory]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Fill_InvalidStandardDeviation_Throws(double standardDeviation)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SeededGaussianSource(1).Fill(new float[4], standardDeviation));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CryptoGaussianSource().Fill(new float[4], standardDeviation));
    }
}
