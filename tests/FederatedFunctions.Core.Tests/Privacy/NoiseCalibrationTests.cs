using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Tests.Privacy;

/// <summary>
/// The calibration of the Laplace and Gaussian mechanisms against hand-computed values, and the samplers' noise against
/// the calibrated scale.
/// </summary>
public sealed class NoiseCalibrationTests
{
    [Theory]
    [InlineData(1.0, 1.0, 1.0)]
    [InlineData(10.0, 0.5, 20.0)]
    [InlineData(100.0, 0.25, 400.0)]
    public void LaplaceScale_SensitivityOverEpsilon_IsTheScale(double sensitivity, double epsilon, double expected) =>
        Assert.Equal(expected, NoiseCalibration.LaplaceScale(sensitivity, epsilon), 12);

    [Fact]
    public void ClassicGaussianSigma_HandComputed_MatchesDworkRoth()
    {
        // Δ = 2, ε = 0.5, δ = 1e-5: 2·√(2 ln(125000))/0.5 = 4·√(23.4717...) = 19.37922...
        var expected = 2 * Math.Sqrt(2 * Math.Log(1.25e5)) / 0.5;
        Assert.Equal(19.379221050, expected, 9);
        Assert.Equal(expected, NoiseCalibration.ClassicGaussianSigma(2, 0.5, 1e-5), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseCalibration.ClassicGaussianSigma(1, 1.5, 1e-5));
    }

    [Theory]
    // Reference σ for Δ = 1 by an independent bisection on Balle and Wang's condition with Python's math.erfc.
    [InlineData(1.0, 1e-5, 3.7306316348159454)]
    [InlineData(0.5, 1e-6, 8.057618480725015)]
    [InlineData(4.0, 1e-5, 1.0811618495202384)]
    [InlineData(0.1, 1e-5, 30.7495661319778)]
    public void AnalyticGaussianSigma_KnownCases_MatchTheReferenceAndMeetDelta(double epsilon, double delta, double expected)
    {
        var sigma = NoiseCalibration.AnalyticGaussianSigma(1, epsilon, delta);

        Assert.Equal(expected, sigma, expected * 1e-8);
        Assert.True(NoiseCalibration.AnalyticGaussianDelta(sigma, 1, epsilon) <= delta, "the σ returned must meet δ");
        Assert.True(NoiseCalibration.AnalyticGaussianDelta(sigma * 0.999, 1, epsilon) > delta, "a smaller σ must not");
        Assert.Equal(3 * sigma, NoiseCalibration.AnalyticGaussianSigma(3, epsilon, delta), sigma * 1e-9);
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public void AnalyticGaussianSigma_EpsilonBelowOne_IsNeverAboveTheClassic(double epsilon) =>
        Assert.True(NoiseCalibration.AnalyticGaussianSigma(1, epsilon, 1e-5) < NoiseCalibration.ClassicGaussianSigma(1, epsilon, 1e-5));

    [Theory]
    [InlineData(0.0, 1e-5)]
    [InlineData(-1.0, 1e-5)]
    [InlineData(1.0, 0.0)]
    [InlineData(1.0, 1.0)]
    public void AnalyticGaussianSigma_ParametersOutOfDomain_Throw(double epsilon, double delta) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => NoiseCalibration.AnalyticGaussianSigma(1, epsilon, delta));

    [Fact]
    public void LaplaceNoise_ManySeededSamples_HaveTheCalibratedStandardDeviation()
    {
        // Sum of values in [−5, 10] (Δ₁ = 10) at ε = 0.5: b = 20, standard deviation √2·b = 28.28.
        var b = NoiseCalibration.LaplaceScale(10, 0.5);
        var source = new SeededGaussianSource(20250101);
        var samples = Enumerable.Range(0, 200_000).Select(_ => b * source.NextStandardLaplace()).ToArray();

        var mean = samples.Average();
        var std = Math.Sqrt(samples.Sum(x => (x - mean) * (x - mean)) / (samples.Length - 1));
        Assert.InRange(std, 0.97 * Math.Sqrt(2) * b, 1.03 * Math.Sqrt(2) * b);
        Assert.InRange(mean, -0.5, 0.5);
        // The Laplace shape, not only its variance: mean |x| is b (a Gaussian of the same variance has 0.8·√2·b = 1.13·b).
        Assert.InRange(samples.Average(Math.Abs), 0.98 * b, 1.02 * b);
    }

    [Fact]
    public void GaussianNoise_ManySeededSamples_HaveTheCalibratedStandardDeviation()
    {
        var sigma = NoiseCalibration.AnalyticGaussianSigma(4, 0.5, 1e-6);
        var source = new SeededGaussianSource(77);
        var samples = Enumerable.Range(0, 200_000).Select(_ => sigma * source.NextStandardNormal()).ToArray();

        var mean = samples.Average();
        var std = Math.Sqrt(samples.Sum(x => (x - mean) * (x - mean)) / (samples.Length - 1));
        Assert.InRange(std, 0.97 * sigma, 1.03 * sigma);
        Assert.InRange(sigma, 4 * 8.0576 * 0.9999, 4 * 8.0577);
    }

    [Fact]
    public void CryptoSource_Laplace_IsFiniteAndVaries()
    {
        var source = new CryptoGaussianSource();
        var samples = Enumerable.Range(0, 10_000).Select(_ => source.NextStandardLaplace()).ToArray();

        Assert.All(samples, s => Assert.True(double.IsFinite(s)));
        Assert.True(samples.Distinct().Count() > 9_990);
        Assert.InRange(samples.Average(Math.Abs), 0.9, 1.1);
    }
}
