using System.Numerics;
using FederatedFunctions.Core.Analysis;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>The exact accumulator: sums and products of doubles with no rounding, and one rounding back to a double.</summary>
public sealed class ExactSumTests
{
    // An independent reference: a double as a BigInteger at the accumulator's scale, from its decimal-free parts.
    internal static BigInteger Reference(double x)
    {
        if (x == 0)
        {
            return BigInteger.Zero;
        }

        var bits = BitConverter.DoubleToInt64Bits(x);
        var exponent = (int)((bits >> 52) & 0x7FF);
        var mantissa = new BigInteger(exponent == 0 ? bits & 0xF_FFFF_FFFF_FFFFL : (bits & 0xF_FFFF_FFFF_FFFFL) | (1L << 52));
        var shift = (exponent == 0 ? -1074 : exponent - 1075) - ExactSum.ScaleExponent;
        return (x < 0 ? -mantissa : mantissa) << shift;
    }

    private static double Draw(Random random) => random.Next(6) switch
    {
        0 => double.MaxValue * (random.NextDouble() - 0.5),
        1 => double.Epsilon * random.Next(-1000, 1000),
        2 => BitConverter.Int64BitsToDouble(random.NextInt64(0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF)) * (random.Next(2) == 0 ? -1 : 1),
        3 => Math.ScaleB(random.NextDouble() - 0.5, random.Next(-1074, 1000)),
        4 => 1e-300 * random.NextDouble(),
        _ => (random.NextDouble() - 0.5) * 1e6,
    };

    [Fact]
    public void SumsAndProducts_OfDoublesOfEveryMagnitude_AreExact()
    {
        var random = new Random(7);
        var (sum, products) = (new ExactSum(), new ExactSum());
        var (expectedSum, expectedProducts) = (BigInteger.Zero, BigInteger.Zero);
        for (var i = 0; i < 20_000; i++)
        {
            var (x, y) = (Draw(random), Draw(random));
            sum.Add(x);
            products.AddProduct(x, y);
            expectedSum += Reference(x);
            // x·y at the scale 2^s is X·Y·2^s, with X and Y at the scale: divide once by 2^−s, exactly.
            expectedProducts += (Reference(x) * Reference(y)) >> -ExactSum.ScaleExponent;
        }

        Assert.Equal(expectedSum, sum.ToInteger());
        Assert.Equal(expectedProducts, products.ToInteger());
    }

    [Fact]
    public void Cancellation_LeavesExactlyWhatIsLeft()
    {
        var sum = new ExactSum();
        foreach (var x in new[] { 1e300, 1.0, -1e300, double.Epsilon, 3e-300, -3e-300 })
        {
            sum.Add(x);
        }

        Assert.Equal(1.0 + double.Epsilon, ExactSum.ToDouble(sum.ToInteger()));
        Assert.Equal(Reference(1.0) + Reference(double.Epsilon), sum.ToInteger());
        var squares = new ExactSum();
        squares.AddProduct(double.MaxValue, double.MaxValue);
        squares.AddProduct(-double.MaxValue, double.MaxValue);
        squares.AddProduct(1e-200, 1e-200);
        Assert.Equal(ExactSum.ToDouble((Reference(1e-200) * Reference(1e-200)) >> -ExactSum.ScaleExponent), ExactSum.ToDouble(squares.ToInteger()));
    }

    [Fact]
    public void ToDouble_RoundsAQuotientOnceToTheNearestDouble()
    {
        var random = new Random(3);
        for (var i = 0; i < 10_000; i++)
        {
            // Integers below 2^53 are exact doubles, and IEEE division rounds their quotient correctly: the reference.
            var a = random.NextInt64(-(1L << 53), 1L << 53);
            var b = random.NextInt64(1, 1L << 53);
            Assert.Equal(a / (double)b, ExactSum.ToDouble(a, b, 0));
            Assert.Equal(Math.ScaleB(a / (double)b, -40), ExactSum.ToDouble(a, b, -40));
        }

        Assert.Equal(0.1, ExactSum.ToDouble(1, 10, 0));
        Assert.Equal(double.MaxValue, ExactSum.ToDouble(Reference(double.MaxValue), 1, ExactSum.ScaleExponent));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactSum.ToDouble(1, 0, 0));
        Assert.Throws<ArgumentException>(() => new ExactSum().Add(double.NaN));
    }
}
