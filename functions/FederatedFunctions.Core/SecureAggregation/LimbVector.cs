using System.Numerics;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>
/// Exact integers as vectors of 16-bit limbs, one per 32-bit ring element, for a secure sum: the sum of up to
/// <see cref="MaxSilos"/> silos' limbs never wraps, so the limbs of the unmasked sum recombine to the exact total.
/// </summary>
/// <remarks>
/// <para>A count takes <see cref="CountLimbs"/> limbs (at most 2^48 − 1 per silo). An exact sum (an integer from
/// <c>ExactSum</c>, possibly negative) takes <see cref="SumLimbs"/> limbs, in two's complement modulo 2^(16·SumLimbs),
/// so that negative terms add as the ring does. No value is rounded: what a silo encodes, the sum decodes exactly.</para>
/// <para>Every use of the secure sum (an analysis's partials, a round's evaluation) lays its values out with
/// <see cref="LimbWriter"/> and reads the sum back with <see cref="LimbReader"/>, whose bound check also catches a sum
/// whose masks did not cancel.</para>
/// </remarks>
public static class LimbVector
{
    /// <summary>Bits per limb.</summary>
    public const int LimbBits = 16;

    /// <summary>Limbs of a count: at most 2^48 − 1 per silo.</summary>
    public const int CountLimbs = 3;

    /// <summary>Limbs of an exact sum: enough for <see cref="Analysis.ExactSum.MagnitudeBits"/> and a sign.</summary>
    public const int SumLimbs = (Analysis.ExactSum.MagnitudeBits / LimbBits) + 2;

    /// <summary>Most silos whose limbs add up without wrapping in a 32-bit ring element.</summary>
    public const int MaxSilos = 65536;

    /// <summary>The largest count one silo can encode.</summary>
    public const long MaxCount = (1L << (LimbBits * CountLimbs)) - 1;

    /// <summary>The modulus of an exact sum's two's complement.</summary>
    public static readonly BigInteger SumModulus = BigInteger.One << (LimbBits * SumLimbs);
}

/// <summary>Lays out one silo's values as limbs (<see cref="LimbVector"/>).</summary>
public sealed class LimbWriter
{
    private readonly List<uint> limbs = [];

    /// <summary>Elements written so far.</summary>
    public int Length => limbs.Count;

    /// <summary>Appends a count.</summary>
    /// <exception cref="ArgumentException">A count outside [0, <see cref="LimbVector.MaxCount"/>].</exception>
    public LimbWriter Count(long value)
    {
        if (value is < 0 or > LimbVector.MaxCount)
        {
            throw new ArgumentException($"A count of {value} is outside [0, {LimbVector.MaxCount}].", nameof(value));
        }

        for (var i = 0; i < LimbVector.CountLimbs; i++)
        {
            limbs.Add((uint)((value >> (LimbVector.LimbBits * i)) & 0xFFFF));
        }

        return this;
    }

    /// <summary>Appends an exact sum (an <c>ExactSum</c> integer), in two's complement.</summary>
    public LimbWriter Sum(BigInteger value)
    {
        var v = value.Sign < 0 ? value + LimbVector.SumModulus : value;
        for (var i = 0; i < LimbVector.SumLimbs; i++)
        {
            limbs.Add((uint)(v >> (LimbVector.LimbBits * i) & 0xFFFF));
        }

        return this;
    }

    /// <summary>The vector.</summary>
    public uint[] ToArray() => [.. limbs];
}

/// <summary>Reads the unmasked sum of silos' limb vectors back as exact totals, in the order they were written.</summary>
public sealed class LimbReader
{
    private readonly uint[] sum;
    private int at;

    /// <summary>Checks that no element exceeds what <paramref name="silos"/> silos' limbs add up to.</summary>
    /// <param name="sum">The unmasked sum.</param>
    /// <param name="silos">How many silos' vectors were summed.</param>
    /// <exception cref="ArgumentException">An element larger than <paramref name="silos"/> limbs can add up to: the masks did not cancel (a vector missing, altered, or masked for another attempt).</exception>
    public LimbReader(ReadOnlySpan<uint> sum, int silos)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(silos);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(silos, LimbVector.MaxSilos);
        var limit = (ulong)silos * 0xFFFF;
        for (var i = 0; i < sum.Length; i++)
        {
            if (sum[i] > limit)
            {
                throw new ArgumentException($"Element {i} of the sum is {sum[i]}, more than {silos} silos' limbs add up to: the masks did not cancel.", nameof(sum));
            }
        }

        this.sum = sum.ToArray();
    }

    /// <summary>The next total count.</summary>
    /// <exception cref="ArgumentException">The sum is shorter than the layout, or the count is out of range.</exception>
    public long Count()
    {
        var value = Take(LimbVector.CountLimbs);
        return value <= long.MaxValue ? (long)value : throw new ArgumentException("A count of the sum is out of range.", nameof(value));
    }

    /// <summary>The next total exact sum.</summary>
    /// <exception cref="ArgumentException">The sum is shorter than the layout.</exception>
    public BigInteger Sum()
    {
        var value = Take(LimbVector.SumLimbs) % LimbVector.SumModulus;
        return value >= LimbVector.SumModulus >> 1 ? value - LimbVector.SumModulus : value;
    }

    /// <summary>Checks that the layout read the whole sum.</summary>
    /// <exception cref="ArgumentException">The sum is longer than the layout.</exception>
    public void End()
    {
        if (at != sum.Length)
        {
            throw new ArgumentException($"The sum has {sum.Length} elements; the layout has {at}.", "sum");
        }
    }

    private BigInteger Take(int limbs)
    {
        if (at + limbs > sum.Length)
        {
            throw new ArgumentException($"The sum has {sum.Length} elements, fewer than the layout.", "sum");
        }

        BigInteger value = 0;
        for (var i = limbs - 1; i >= 0; i--)
        {
            value = (value << LimbVector.LimbBits) + sum[at + i];
        }

        at += limbs;
        return value;
    }
}
