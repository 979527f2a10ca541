using FederatedFunctions.Core.SecureAggregation;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class FixedPointTests
{
    [Fact]
    public void ChooseScale_FiveSilosRangeOne_IsLargestPowerOfTwoWithHeadroom()
    {
        var scale = FixedPoint.ChooseScale(5, 1.0);

        // 5 · 2^28 = 1 342 177 280 ≤ 2^31 − 1 < 5 · 2^29.
        Assert.Equal(Math.ScaleB(1, 28), scale);
        Assert.True(5 * Math.Round(2 * scale) > int.MaxValue);
    }

    [Fact]
    public void ChooseScale_FewerBits_LeavesSpareHeadroom()
    {
        // 5 · 2^21 ≤ 2^24 − 1 < 5 · 2^22.
        Assert.Equal(Math.ScaleB(1, 21), FixedPoint.ChooseScale(5, 1.0, bits: 24));
    }

    [Fact]
    public void ChooseScale_RangeNotPowerOfTwo_StillFits()
    {
        var scale = FixedPoint.ChooseScale(7, 3.3);

        FixedPoint.ValidateHeadroom(7, 3.3, scale);
        Assert.Throws<ArgumentException>(() => FixedPoint.ValidateHeadroom(7, 3.3, scale * 2));
    }

    [Fact]
    public void ChooseScale_MoreSilosThanUnitsInBits_ThrowsNoHeadroom()
    {
        var e = Assert.Throws<ArgumentException>(() => FixedPoint.ChooseScale(5, 1.0, bits: 2));

        Assert.Contains("headroom", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(0, 1.0, 31)]
    [InlineData(3, 0.0, 31)]
    [InlineData(3, double.NaN, 31)]
    [InlineData(3, double.PositiveInfinity, 31)]
    [InlineData(3, 1.0, 0)]
    [InlineData(3, 1.0, 32)]
    public void ChooseScale_InvalidArguments_Throws(int silos, double range, int bits)
    {
        Assert.Throws<ArgumentException>(() => FixedPoint.ChooseScale(silos, range, bits));
    }

    [Fact]
    public void Constructor_ScaleBeyondHeadroom_ThrowsClearMessage()
    {
        var e = Assert.Throws<ArgumentException>(() => new FixedPoint(5, 1.0, Math.ScaleB(1, 29)));

        Assert.Equal("scale", e.ParamName);
        Assert.Contains("No fixed-point headroom", e.Message, StringComparison.Ordinal);
        Assert.Contains("268435456", e.Message, StringComparison.Ordinal); // the scale that would fit
    }

    [Fact]
    public void ValidateHeadroom_ExactlyAtLimit_AcceptsAndOneUnitMoreThrows()
    {
        FixedPoint.ValidateHeadroom(1, 1.0, int.MaxValue);

        Assert.Throws<ArgumentException>(() => FixedPoint.ValidateHeadroom(1, 1.0, int.MaxValue + 1.0));
        Assert.Throws<ArgumentException>(() => FixedPoint.ValidateHeadroom(2, 1.0, int.MaxValue / 2 + 1.0));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(0.1)] // range 1 × scale 0.1 rounds to zero: nothing is representable
    public void ValidateHeadroom_UnusableScale_Throws(double scale)
    {
        Assert.Throws<ArgumentException>(() => FixedPoint.ValidateHeadroom(3, 1.0, scale));
    }

    [Fact]
    public void Quantize_NegativeValue_WrapsAsTwosComplement()
    {
        var fp = new FixedPoint(2, 1.0, 4);

        Assert.Equal([0xFFFF_FFFEu, 2u, 0u], fp.Quantize([-0.5f, 0.5f, 0f]));
    }

    [Fact]
    public void Quantize_Midpoints_RoundHalfToEven()
    {
        var fp = new FixedPoint(1, 4.0, 1);

        Assert.Equal([0u, 2u, 2u, unchecked((uint)-2)], fp.Quantize([0.5f, 1.5f, 2.5f, -2.5f]));
    }

    [Fact]
    public void Quantize_Weight_IsAppliedBeforeRounding()
    {
        var fp = new FixedPoint(2, 1.0, 16);

        // round(0.5 · 0.3 · 16) = round(2.4) = 2; weighting after rounding would give 0.5 · round(4.8) = 2.5.
        Assert.Equal([2u], fp.Quantize([0.3f], weight: 0.5));
    }

    [Fact]
    public void Quantize_ValueOutsideRange_ThrowsNamingIndexNotValue()
    {
        var fp = new FixedPoint(2, 1.0, 16);

        var e = Assert.Throws<ArgumentException>(() => fp.Quantize([0.25f, 1.75f]));

        Assert.Contains("index 1", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("1.75", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quantize_WeightPushesValueOutsideRange_Throws()
    {
        var fp = new FixedPoint(2, 1.0, 16);

        Assert.Throws<ArgumentException>(() => fp.Quantize([0.75f], weight: 2));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Quantize_NonFinite_Throws(float value)
    {
        var fp = new FixedPoint(2, 1.0, 16);

        Assert.Throws<ArgumentException>(() => fp.Quantize([value]));
    }

    [Fact]
    public void Dequantize_SumOfWrappedNegatives_ReturnsSignedValue()
    {
        var fp = new FixedPoint(2, 1.0, 1024);
        var a = fp.Quantize([-0.75f, -1f]);
        var b = fp.Quantize([0.25f, -1f]);

        var sum = new[] { unchecked(a[0] + b[0]), unchecked(a[1] + b[1]) };

        Assert.Equal([-0.5, -2.0], fp.Dequantize(sum));
    }

    [Fact]
    public void Dequantize_SumAtHeadroomLimit_IsExact()
    {
        var fp = FixedPoint.ForSilos(5, 1.0);
        var plus = fp.Quantize([1f, -1f]);
        var sum = new uint[2];
        for (var silo = 0; silo < 5; silo++)
        {
            sum[0] = unchecked(sum[0] + plus[0]);
            sum[1] = unchecked(sum[1] + plus[1]);
        }

        Assert.Equal([5.0, -5.0], fp.Dequantize(sum));
        Assert.True(fp.IsWithinHeadroom(sum));
    }

    [Fact]
    public void IsWithinHeadroom_ElementBeyondSilosTimesMagnitude_IsFalse()
    {
        var fp = FixedPoint.ForSilos(5, 1.0);

        Assert.Equal(5.0 * 0.5 / Math.ScaleB(1, 28), fp.MaxSumError);
        Assert.False(fp.IsWithinHeadroom([0u, int.MaxValue]));
        Assert.False(fp.IsWithinHeadroom([0u, unchecked((uint)int.MinValue)]));
        Assert.True(fp.IsWithinHeadroom([0u, (uint)(5 * fp.MaxMagnitude)]));
    }
}
