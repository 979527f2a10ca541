using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Tests.Privacy;

public sealed class SpecialFunctionsTests
{
    // Reference values of erfc. x = 0.5 and 1: 1 − erf(x) from Abramowitz & Stegun, Handbook of
    // Mathematical Functions, Table 7.1 (erf to 15 decimals: 0.520499877813047, 0.842700792949715).
    // x = 2, 3, 5, 10, 20: the correctly rounded double values of erfc (as printed by C99/CPython
    // math.erfc and scipy.special.erfc; the issue brief pins 0.5, 1, 3 and 10). x < 0 from erfc(−x) = 2 − erfc(x).
    [Theory]
    [InlineData(0.5, 0.4795001221869535)]
    [InlineData(1.0, 0.15729920705028513)]
    [InlineData(2.0, 0.004677734981047266)]
    [InlineData(3.0, 2.209049699858544e-05)]
    [InlineData(5.0, 1.5374597944280349e-12)]
    [InlineData(10.0, 2.088487583762545e-45)]
    [InlineData(20.0, 5.395865611607901e-176)]
    [InlineData(-1.0, 1.8427007929497148)]
    [InlineData(0.0, 1.0)]
    public void Erfc_KnownValue_MatchesTo1e14Relative(double x, double expected)
    {
        var actual = SpecialFunctions.Erfc(x);

        Assert.True(Math.Abs(actual / expected - 1) < 1e-14, $"erfc({x}) = {actual:R}, expected {expected:R}");
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.4999)]
    [InlineData(0.5)]
    [InlineData(1.7)]
    [InlineData(3.0)]
    public void Erfc_PositiveAndNegativeArgument_SumToTwo(double x)
    {
        Assert.Equal(2.0, SpecialFunctions.Erfc(x) + SpecialFunctions.Erfc(-x), 1e-15);
    }

    [Fact]
    public void Erfc_Limits_AreTwoAndZero()
    {
        Assert.Equal(2.0, SpecialFunctions.Erfc(double.NegativeInfinity));
        Assert.Equal(0.0, SpecialFunctions.Erfc(double.PositiveInfinity));
        Assert.True(double.IsNaN(SpecialFunctions.Erfc(double.NaN)));
    }

    [Theory]
    [InlineData(0.5, 0.4795001221869535)]
    [InlineData(3.0, 2.209049699858544e-05)]
    [InlineData(10.0, 2.088487583762545e-45)]
    [InlineData(20.0, 5.395865611607901e-176)]
    [InlineData(-1.0, 1.8427007929497148)]
    public void LogErfc_WhereErfcIsRepresentable_IsLogOfReference(double x, double erfc)
    {
        Assert.Equal(Math.Log(erfc), SpecialFunctions.LogErfc(x), 1e-12);
    }

    // Beyond x ≈ 27 erfc underflows to 0, but the accountant still needs its logarithm.
    // Reference: the asymptotic (Laurent) series of log erfc at infinity published in TF Privacy's
    // tensorflow_privacy/privacy/analysis/rdp_accountant.py (_log_erfc fallback):
    // log erfc(x) ≈ −log(π)/2 − log x − x² − x⁻²/2 + 5x⁻⁴/8 − 37x⁻⁶/24 + 353x⁻⁸/64; its next term is O(x⁻¹⁰).
    [Theory]
    [InlineData(30.0)]
    [InlineData(100.0)]
    [InlineData(1e4)]
    public void LogErfc_LargeArgument_MatchesAsymptoticSeries(double x)
    {
        var expected = -Math.Log(Math.PI) / 2 - Math.Log(x) - x * x - 0.5 / (x * x) + 0.625 / Math.Pow(x, 4)
            - 37.0 / 24.0 / Math.Pow(x, 6) + 353.0 / 64.0 / Math.Pow(x, 8);

        var actual = SpecialFunctions.LogErfc(x);

        Assert.True(double.IsFinite(actual));
        Assert.True(Math.Abs(actual / expected - 1) < 1e-13, $"log erfc({x}) = {actual:R}, expected {expected:R}");
    }

    [Fact]
    public void LogErfc_AcrossTheSeriesSwitch_IsContinuous()
    {
        var below = SpecialFunctions.LogErfc(Math.BitDecrement(0.5));
        var at = SpecialFunctions.LogErfc(0.5);

        Assert.Equal(Math.Log(0.4795001221869535), at, 1e-15);
        Assert.Equal(at, below, 1e-15);
    }

    // log1p and expm1 at tiny arguments: the first terms of their Taylor series, x ∓ x²/2, are exact to double precision.
    [Theory]
    [InlineData(1e-10)]
    [InlineData(-3e-9)]
    [InlineData(1e-300)]
    public void Log1PAndExpM1_TinyArgument_KeepFullPrecision(double x)
    {
        Assert.True(Math.Abs(SpecialFunctions.Log1P(x) / (x - x * x / 2) - 1) < 1e-15);
        Assert.True(Math.Abs(SpecialFunctions.ExpM1(x) / (x + x * x / 2) - 1) < 1e-15);
    }

    [Fact]
    public void LogAdd_TwoProbabilities_IsLogOfTheirSum()
    {
        Assert.Equal(Math.Log(0.3 + 0.2), SpecialFunctions.LogAdd(Math.Log(0.3), Math.Log(0.2)), 1e-15);
        Assert.Equal(Math.Log(0.3), SpecialFunctions.LogAdd(double.NegativeInfinity, Math.Log(0.3)), 1e-15);
        // e^-1000 + e^-1000 underflows in linear space but not in log space.
        Assert.Equal(-1000 + Math.Log(2), SpecialFunctions.LogAdd(-1000, -1000), 1e-12);
    }

    [Fact]
    public void LogSub_TwoProbabilities_IsLogOfTheirDifference()
    {
        Assert.Equal(Math.Log(0.3 - 0.2), SpecialFunctions.LogSub(Math.Log(0.3), Math.Log(0.2)), 1e-15);
        Assert.Equal(double.NegativeInfinity, SpecialFunctions.LogSub(-5, -5));
        Assert.Equal(-5.0, SpecialFunctions.LogSub(-5, double.NegativeInfinity));
        Assert.Equal(800.0, SpecialFunctions.LogSub(800, -100)); // e^900 overflows; the smaller term is negligible.
    }

    [Fact]
    public void LogSub_NegativeDifference_Throws()
    {
        Assert.Throws<ArgumentException>(() => SpecialFunctions.LogSub(Math.Log(0.2), Math.Log(0.3)));
    }
}
