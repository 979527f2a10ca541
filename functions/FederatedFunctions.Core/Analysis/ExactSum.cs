using System.Numerics;

namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// The exact sum of doubles, and of products of two doubles, as an integer multiple of 2^<see cref="ScaleExponent"/>:
/// a fixed-point superaccumulator wide enough for every finite double and every product of two, with no rounding at all.
/// </summary>
/// <remarks>
/// <para>Every finite double is m·2^e with an integer m below 2^53 and e ≥ −1074, so a product of two is an integer
/// below 2^106 times 2^e with e ≥ −2148: both are integers at the scale 2^−2176. The accumulator adds them as 32-bit
/// digits held in 64-bit words, normalizing the carries before any word could overflow.</para>
/// <para>What it is for: secure aggregation of an analysis adds the silos' sums as integers modulo a power of two, so
/// each silo must give its sums as exact integers. With exact Σx and Σx², the sum of squared deviations
/// Σx² − (Σx)²/n is computed in exact rational arithmetic and rounded once: the cancellation that makes sums of squares
/// unstable in floating point does not happen.</para>
/// </remarks>
public sealed class ExactSum
{
    /// <summary>The scale: the sum is <see cref="ToInteger"/> · 2^ScaleExponent.</summary>
    public const int ScaleExponent = -2176;

    /// <summary>Bits of the largest magnitude the integer can have: products below 2^2048, summed at most 2^63 times, at the scale.</summary>
    public const int MagnitudeBits = 2048 + 63 - ScaleExponent;

    private const int Digits = (MagnitudeBits / 32) + 3;
    private const int NormalizeEvery = 1 << 28;
    private readonly long[] digits = new long[Digits];
    private int pending;

    /// <summary>Adds <paramref name="x"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not finite.</exception>
    public void Add(double x) => AddProduct(x, 1.0);

    /// <summary>Adds the exact product <paramref name="x"/> · <paramref name="y"/> (no rounding, no overflow).</summary>
    /// <exception cref="ArgumentException">A factor is not finite.</exception>
    public void AddProduct(double x, double y)
    {
        if (!double.IsFinite(x) || !double.IsFinite(y))
        {
            throw new ArgumentException($"Values must be finite; got {x} and {y}.");
        }

        if (x == 0 || y == 0)
        {
            return;
        }

        var (mx, ex) = Decompose(x);
        var (my, ey) = Decompose(y);
        var product = (UInt128)mx * my;
        var position = ex + ey - ScaleExponent;
        var (word, shift) = (position >> 5, position & 31);
        var negative = (x < 0) ^ (y < 0);
        for (var i = 0; i < 4; i++)
        {
            var limb = (ulong)(product >> (32 * i)) & 0xFFFF_FFFFUL;
            if (limb == 0)
            {
                continue;
            }

            var shifted = limb << shift;
            var (low, high) = ((long)(shifted & 0xFFFF_FFFFUL), (long)(shifted >> 32));
            if (negative)
            {
                digits[word + i] -= low;
                digits[word + i + 1] -= high;
            }
            else
            {
                digits[word + i] += low;
                digits[word + i + 1] += high;
            }
        }

        if (++pending == NormalizeEvery)
        {
            Normalize();
        }
    }

    /// <summary>The exact sum, as an integer N with sum = N · 2^<see cref="ScaleExponent"/>.</summary>
    public BigInteger ToInteger()
    {
        Normalize();
        BigInteger result = digits[^1];
        for (var i = Digits - 2; i >= 0; i--)
        {
            result = (result << 32) + digits[i];
        }

        return result;
    }

    /// <summary>
    /// <paramref name="numerator"/> / <paramref name="denominator"/> · 2^<paramref name="exponent"/>, rounded once to the
    /// nearest double (a subnormal result may be rounded twice).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The denominator is not positive.</exception>
    public static double ToDouble(BigInteger numerator, BigInteger denominator, int exponent)
    {
        if (denominator.Sign <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(denominator), "The denominator must be positive.");
        }

        if (numerator.IsZero)
        {
            return 0;
        }

        var a = BigInteger.Abs(numerator);
        // A quotient of 62 or 63 bits; the remainder and any bits shifted out set the lowest bit (sticky), which a conversion
        // to 53 bits then rounds correctly.
        var shift = 62 - (int)(a.GetBitLength() - denominator.GetBitLength());
        var quotient = shift >= 0
            ? BigInteger.DivRem(a << shift, denominator, out var remainder)
            : BigInteger.DivRem(a, denominator << -shift, out remainder);
        var sticky = !remainder.IsZero;
        while (quotient.GetBitLength() > 63)
        {
            sticky |= !quotient.IsEven;
            quotient >>= 1;
            shift--;
        }

        var bits = (long)quotient | (sticky ? 1L : 0L);
        var magnitude = Math.ScaleB(bits, exponent - shift);
        return numerator.Sign < 0 ? -magnitude : magnitude;
    }

    /// <summary>The exact integer <paramref name="value"/> · 2^<see cref="ScaleExponent"/>, rounded to the nearest double.</summary>
    public static double ToDouble(BigInteger value) => ToDouble(value, BigInteger.One, ScaleExponent);

    /// <summary>The exact integer N with <paramref name="x"/> = N · 2^<see cref="ScaleExponent"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not finite.</exception>
    public static BigInteger Scaled(double x)
    {
        var sum = new ExactSum();
        sum.Add(x);
        return sum.ToInteger();
    }

    private static (ulong Mantissa, int Exponent) Decompose(double x)
    {
        var bits = BitConverter.DoubleToInt64Bits(Math.Abs(x));
        var exponent = (int)((bits >> 52) & 0x7FF);
        var fraction = (ulong)bits & ((1UL << 52) - 1);
        return exponent == 0 ? (fraction, -1074) : (fraction | (1UL << 52), exponent - 1075);
    }

    // Carries move up until every digit but the top one is in [0, 2^32); the top one holds the sign.
    private void Normalize()
    {
        for (var i = 0; i < Digits - 1; i++)
        {
            var carry = digits[i] >> 32;
            digits[i] -= carry << 32;
            digits[i + 1] += carry;
        }

        pending = 0;
    }
}
