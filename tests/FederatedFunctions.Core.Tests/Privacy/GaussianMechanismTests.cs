using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Tests.Privacy;

public sealed class GaussianMechanismTests
{
    private static double ExactNorm(ReadOnlySpan<float> values)
    {
        // Independent of the code under test: plain double sum of squares.
        var sum = 0.0;
        foreach (var v in values)
        {
            sum += (double)v * v;
        }

        return Math.Sqrt(sum);
    }

    [Theory]
    [InlineData(0.0, 1.0, 1.0)]
    [InlineData(0.5, 1.0, 1.0)]
    [InlineData(1.0, 1.0, 1.0)]
    [InlineData(4.0, 1.0, 0.25)]
    [InlineData(10.0, 2.5, 0.25)]
    public void ClipScale_NormAndClip_IsMinOfOneAndRatio(double norm, double clip, double expected)
    {
        Assert.Equal(expected, GaussianMechanism.ClipScale(norm, clip), 1e-15);
    }

    [Theory]
    [InlineData(1.0, 0.0)]
    [InlineData(1.0, -1.0)]
    [InlineData(1.0, double.PositiveInfinity)]
    [InlineData(-1.0, 1.0)]
    [InlineData(double.NaN, 1.0)]
    public void ClipScale_InvalidInput_Throws(double norm, double clip)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianMechanism.ClipScale(norm, clip));
    }

    [Fact]
    public void L2Norm_ThreeFourTwelve_IsThirteen()
    {
        Assert.Equal(13.0, GaussianMechanism.L2Norm([3f, 4f, 12f]));
    }

    [Fact]
    public void L2Norm_ValuesWhoseSquaresOverflowFloat_IsComputedInDouble()
    {
        // 3e20² = 9e40 overflows float (max 3.4e38) but not double.
        Assert.Equal(5e20, GaussianMechanism.L2Norm([3e20f, 4e20f]), 5e20 * 1e-7);
    }

    [Fact]
    public void Clip_OverTheBound_ReturnsOriginalNormAndRespectsTheBound()
    {
        float[] update = [3f, 4f, 12f];

        var original = GaussianMechanism.Clip(update, 1.0);

        Assert.Equal(13.0, original, 1e-12);
        Assert.True(ExactNorm(update) <= 1.0, $"norm after clip {ExactNorm(update):R}");
        Assert.Equal(1.0, ExactNorm(update), 1e-6);
    }

    [Fact]
    public void Clip_OverTheBound_PreservesDirection()
    {
        float[] update = [3f, -4f, 12f, 0f];

        GaussianMechanism.Clip(update, 0.5);

        // Each coordinate keeps its share of the vector: x_i / ‖x‖ before = after.
        float[] before = [3f, -4f, 12f, 0f];
        var norm = ExactNorm(update);
        for (var i = 0; i < update.Length; i++)
        {
            Assert.Equal(before[i] / 13.0, update[i] / norm, 1e-6);
        }
    }

    [Fact]
    public void Clip_UnderTheBound_LeavesUpdateUnchanged()
    {
        float[] update = [0.1f, -0.2f, 0.3f];
        var copy = update.ToArray();

        var norm = GaussianMechanism.Clip(update, 1.0);

        Assert.Equal(copy, update);
        Assert.Equal(Math.Sqrt(0.01 + 0.04 + 0.09), norm, 1e-7);
    }

    [Fact]
    public void Clip_ZeroUpdate_StaysZero()
    {
        float[] update = [0f, 0f, 0f];

        Assert.Equal(0.0, GaussianMechanism.Clip(update, 1.0));
        Assert.Equal([0f, 0f, 0f], update);
    }

    [Fact]
    public void Clip_ManyRandomUpdates_NeverExceedTheBound()
    {
        // Float rounding of the scaled values must never push the norm above C.
        var random = new Random(12345);
        foreach (var clip in new[] { 1e-3, 0.1, 1.0, 3.7, 1000.0 })
        {
            for (var trial = 0; trial < 200; trial++)
            {
                var update = new float[1 + random.Next(5000)];
                for (var i = 0; i < update.Length; i++)
                {
                    update[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 4)));
                }

                var before = ExactNorm(update);
                GaussianMechanism.Clip(update, clip);
                var after = ExactNorm(update);

                Assert.True(after <= clip * (1 + 1e-12), $"clip {clip}: norm {after:R} > {clip}");
                if (before > clip)
                {
                    Assert.True(after >= clip * (1 - 1e-6), $"clip {clip}: clipped too much, {after:R}");
                }
            }
        }
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Clip_NonFiniteValue_Throws(float bad)
    {
        var update = new[] { 1f, bad };

        Assert.Throws<ArgumentException>(() => GaussianMechanism.Clip(update, 1.0));
    }

    [Fact]
    public void AddNoise_200000Coordinates_HaveMeanZeroAndStdZTimesC()
    {
        const int n = 200_000;
        const double z = 1.1, clip = 0.5, expectedStd = z * clip;
        var sum = new float[n];

        GaussianMechanism.AddNoise(sum, z, clip, new SeededGaussianSource(20240601));

        var stats = SampleStatistics.Of(sum);
        // Standard errors: mean σ/√n; sample standard deviation ≈ σ/√(2n); a fraction p ≈ √(p(1 − p)/n).
        Assert.InRange(stats.Mean, -5 * expectedStd / Math.Sqrt(n), 5 * expectedStd / Math.Sqrt(n));
        Assert.InRange(stats.StdDev, expectedStd * (1 - 5 / Math.Sqrt(2.0 * n)), expectedStd * (1 + 5 / Math.Sqrt(2.0 * n)));
        // Normality: P(|X| ≤ σ) = erf(1/√2) = 0.682689…, P(|X| ≤ 2σ) = erf(√2) = 0.954499… (A&S 26.2).
        var within1 = sum.Count(v => Math.Abs(v) <= expectedStd) / (double)n;
        var within2 = sum.Count(v => Math.Abs(v) <= 2 * expectedStd) / (double)n;
        Assert.InRange(within1, 0.682689 - 5 * Math.Sqrt(0.6827 * 0.3173 / n), 0.682689 + 5 * Math.Sqrt(0.6827 * 0.3173 / n));
        Assert.InRange(within2, 0.954500 - 5 * Math.Sqrt(0.9545 * 0.0455 / n), 0.954500 + 5 * Math.Sqrt(0.9545 * 0.0455 / n));
    }

    [Fact]
    public void AddNoise_CryptoSource_HasStdZTimesC()
    {
        // Not seeded, so this draws fresh noise each run; a 6-standard-error band fails about once in 5e8 runs.
        const int n = 200_000;
        const double z = 0.8, clip = 2.0, expectedStd = z * clip;
        var sum = new float[n];

        GaussianMechanism.AddNoise(sum, z, clip, new CryptoGaussianSource());

        var stats = SampleStatistics.Of(sum);
        Assert.InRange(stats.Mean, -6 * expectedStd / Math.Sqrt(n), 6 * expectedStd / Math.Sqrt(n));
        Assert.InRange(stats.StdDev, expectedStd * (1 - 6 / Math.Sqrt(2.0 * n)), expectedStd * (1 + 6 / Math.Sqrt(2.0 * n)));
    }

    [Fact]
    public void AddNoise_AddsToTheSum_RatherThanReplacingIt()
    {
        var sum = Enumerable.Repeat(100f, 50_000).ToArray();

        GaussianMechanism.AddNoise(sum, 1.0, 1.0, new SeededGaussianSource(7));

        var stats = SampleStatistics.Of(sum);
        Assert.InRange(stats.Mean, 100 - 5 / Math.Sqrt(50_000), 100 + 5 / Math.Sqrt(50_000));
        Assert.InRange(stats.StdDev, 0.97, 1.03);
    }

    [Fact]
    public void AddNoise_SameSeed_SameNoisySum()
    {
        var a = new float[1000];
        var b = new float[1000];

        GaussianMechanism.AddNoise(a, 1.3, 0.7, new SeededGaussianSource(99));
        GaussianMechanism.AddNoise(b, 1.3, 0.7, new SeededGaussianSource(99));

        Assert.Equal(a, b);
        Assert.Contains(a, v => v != 0f);
    }

    [Fact]
    public void AddNoise_ZeroNoiseMultiplier_LeavesSumUnchanged()
    {
        float[] sum = [1f, 2f, 3f];

        GaussianMechanism.AddNoise(sum, 0.0, 1.0, new SeededGaussianSource(1));

        Assert.Equal([1f, 2f, 3f], sum);
    }

    [Theory]
    [InlineData(-1.0, 1.0)]
    [InlineData(double.NaN, 1.0)]
    [InlineData(1.0, 0.0)]
    public void AddNoise_InvalidParameters_Throw(double z, double clip)
    {
        var sum = new float[3];

        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianMechanism.AddNoise(sum, z, clip, new SeededGaussianSource(1)));
    }
}

internal readonly record struct SampleStatistics(double Mean, double StdDev)
{
    public static SampleStatistics Of(IReadOnlyCollection<float> values)
    {
        var mean = values.Sum(v => (double)v) / values.Count;
        var variance = values.Sum(v => ((double)v - mean) * ((double)v - mean)) / (values.Count - 1);
        return new SampleStatistics(mean, Math.Sqrt(variance));
    }

    public static SampleStatistics Of(IReadOnlyCollection<double> values)
    {
        var mean = values.Sum() / values.Count;
        var variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        return new SampleStatistics(mean, Math.Sqrt(variance));
    }
}
