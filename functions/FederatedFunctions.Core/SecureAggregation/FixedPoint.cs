using System.Globalization;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>
/// Fixed-point encoding of clipped float updates into the ring of integers mod 2^32, and decoding of their sum.
/// </summary>
/// <remarks>
/// <para>
/// Pairwise masks cancel only in exact arithmetic, so updates are masked as ring elements, not floats.
/// A value <c>v</c> (the silo's float times its aggregation weight) becomes
/// <c>q = round(v · Scale) mod 2^32</c>: round half to even, and a negative result wraps as two's complement.
/// The sum of the silos' <c>q</c>, read back as an <see cref="int"/> and divided by <see cref="Scale"/>, is the
/// (weighted) float sum.
/// </para>
/// <para>
/// <b>Headroom.</b> The decoded sum is correct only if the true integer sum fits in an <see cref="int"/>.
/// Every weighted value lies in [−<see cref="Range"/>, <see cref="Range"/>], so every <c>|q|</c> is at most
/// <c>M = round(Range · Scale)</c>, and the guarantee holds when <c>Silos · M ≤ 2^31 − 1</c>
/// (that is, <c>Silos · Range · Scale &lt; 2^31</c>, rounding included). The constructor refuses an encoding
/// without that headroom. Only the final sum has to fit, because intermediate sums wrap and unwrap mod 2^32;
/// the bound is conservative whatever the weights are. An encoding chosen for the sampled silos stays valid
/// when fewer of them contribute (a redo after a dropout).
/// </para>
/// <para>
/// <b>Weighting happens before quantization.</b> The caller passes the silo's weight to
/// <see cref="Quantize(ReadOnlySpan{float}, double)"/>, which multiplies in double precision and then rounds;
/// <see cref="Range"/> must bound the weighted values (with normalised weights ≤ 1, the clip range does).
/// Weighting the decoded sum instead would need per-silo values, which is what masking hides.
/// </para>
/// <para>
/// <b>Error.</b> Each silo's rounding moves a coordinate by at most <c>0.5 / Scale</c>, so a decoded sum of
/// <c>n</c> contributions is within <c>n · 0.5 / Scale</c> of the exact weighted sum of the inputs
/// (<see cref="MaxSumError"/>). <see cref="ChooseScale"/> returns powers of two, so scaling and unscaling add no
/// further rounding.
/// </para>
/// <para>Instances are immutable numbers only (no secrets) and may travel through orchestration history.</para>
/// </remarks>
public sealed class FixedPoint
{
    /// <summary>The most headroom bits an encoding may use: the positive range of <see cref="int"/>.</summary>
    public const int MaxBits = 31;

    /// <summary>Creates an encoding and checks its headroom.</summary>
    /// <param name="silos">The most silos whose contributions will be summed.</param>
    /// <param name="range">Bound on the absolute value of every weighted value.</param>
    /// <param name="scale">Quantization scale: one unit of the ring is <c>1 / scale</c>.</param>
    /// <exception cref="ArgumentException">Invalid arguments, or no headroom (see <see cref="ValidateHeadroom"/>).</exception>
    public FixedPoint(int silos, double range, double scale)
    {
        ValidateHeadroom(silos, range, scale);
        Silos = silos;
        Range = range;
        Scale = scale;
        MaxMagnitude = (long)Math.Round(range * scale);
    }

    /// <summary>The most silos whose contributions this encoding can sum.</summary>
    public int Silos { get; }

    /// <summary>Bound on the absolute value of every weighted value.</summary>
    public double Range { get; }

    /// <summary>Quantization scale.</summary>
    public double Scale { get; }

    /// <summary>The largest <c>|q|</c> one silo can contribute: <c>round(Range · Scale)</c>.</summary>
    public long MaxMagnitude { get; }

    /// <summary>Bound on the decoded error per coordinate for a sum of <see cref="Silos"/> contributions: <c>Silos · 0.5 / Scale</c>.</summary>
    public double MaxSumError => Silos * 0.5 / Scale;

    /// <summary>An encoding for <paramref name="silos"/> silos with the largest scale <see cref="ChooseScale"/> allows.</summary>
    /// <exception cref="ArgumentException">Invalid arguments or no headroom.</exception>
    public static FixedPoint ForSilos(int silos, double range, int bits = MaxBits) =>
        new(silos, range, ChooseScale(silos, range, bits));

    /// <summary>
    /// The largest power of two <c>s</c> with <c>silos · round(range · s) ≤ 2^bits − 1</c>.
    /// </summary>
    /// <remarks>
    /// <paramref name="bits"/> below 31 leaves spare headroom; the spare bits also make a corrupted sum
    /// (wrong keys, a missing mask) fall outside <see cref="IsWithinHeadroom"/> with higher probability per coordinate.
    /// </remarks>
    /// <exception cref="ArgumentException">
    /// <paramref name="silos"/> not positive, <paramref name="range"/> not positive and finite, <paramref name="bits"/>
    /// outside [1, 31], or no headroom: even one unit per silo would overflow <c>2^bits − 1</c>.
    /// </exception>
    public static double ChooseScale(int silos, double range, int bits = MaxBits)
    {
        ValidateShape(silos, range, bits);
        var limit = (1L << bits) - 1;
        if (silos > limit)
        {
            throw new ArgumentException(
                $"No fixed-point headroom: {silos} silos cannot be summed in {bits} bits (at most {limit} silos of one unit each).",
                nameof(silos));
        }

        // Clamped so that an extreme range cannot produce an infinite or zero starting scale.
        var exponent = (int)Math.Clamp(Math.Floor(Math.Log2((double)limit / silos / range)), -1000, 1000);
        var scale = Math.ScaleB(1.0, exponent);
        while (!Fits(silos, range, scale, limit))
        {
            scale /= 2;
        }

        while (Fits(silos, range, scale * 2, limit))
        {
            scale *= 2;
        }

        if (Math.Round(range * scale) < 1)
        {
            throw new ArgumentException(
                $"No fixed-point headroom: range {Format(range)} cannot be resolved for {silos} silos in {bits} bits.",
                nameof(range));
        }

        return scale;
    }

    /// <summary>Throws unless <c>silos · round(range · scale) ≤ 2^bits − 1</c>.</summary>
    /// <exception cref="ArgumentException">
    /// Invalid arguments, a scale so small that the whole range rounds to zero, or no headroom: the sum of
    /// <paramref name="silos"/> contributions could overflow and decode to a wrong value.
    /// </exception>
    public static void ValidateHeadroom(int silos, double range, double scale, int bits = MaxBits)
    {
        ValidateShape(silos, range, bits);
        if (!double.IsFinite(scale) || scale <= 0)
        {
            throw new ArgumentException($"The scale must be positive and finite; got {Format(scale)}.", nameof(scale));
        }

        var magnitude = Math.Round(range * scale);
        if (magnitude < 1)
        {
            throw new ArgumentException(
                $"Scale {Format(scale)} is too small: every value in [-{Format(range)}, {Format(range)}] rounds to zero.",
                nameof(scale));
        }

        var limit = (1L << bits) - 1;
        if (!Fits(silos, range, scale, limit))
        {
            throw new ArgumentException(
                $"No fixed-point headroom: {silos} silos × round(range {Format(range)} × scale {Format(scale)}) = " +
                $"{Format(silos * magnitude)} exceeds 2^{bits} − 1 = {limit}, so the sum could wrap and decode wrongly. " +
                $"Use a scale of at most {Format(ChooseScaleOrZero(silos, range, bits))} (FixedPoint.ChooseScale), a smaller range, or fewer silos.",
                nameof(scale));
        }
    }

    /// <summary>Quantizes <c>weight · values</c> into a new array.</summary>
    /// <exception cref="ArgumentException">A weight that is not finite, or a weighted value that is not finite or lies outside [−Range, Range].</exception>
    public uint[] Quantize(ReadOnlySpan<float> values, double weight = 1.0)
    {
        var result = new uint[values.Length];
        Quantize(values, weight, result);
        return result;
    }

    /// <summary>Quantizes <c>weight · values</c> into <paramref name="destination"/>.</summary>
    /// <remarks>Error messages name the index, never the value: the values are a silo's private update.</remarks>
    /// <exception cref="ArgumentException">
    /// Lengths differ, a weight that is not finite, or a weighted value that is not finite or lies outside [−Range, Range]
    /// (the caller clips before quantizing; an unclipped value would break the headroom guarantee silently).
    /// </exception>
    public void Quantize(ReadOnlySpan<float> values, double weight, Span<uint> destination)
    {
        if (destination.Length != values.Length)
        {
            throw new ArgumentException($"Destination has {destination.Length} elements; {values.Length} values were given.", nameof(destination));
        }

        if (!double.IsFinite(weight))
        {
            throw new ArgumentException("The weight must be finite.", nameof(weight));
        }

        for (var i = 0; i < values.Length; i++)
        {
            var v = weight * values[i];
            if (!double.IsFinite(v) || Math.Abs(v) > Range)
            {
                throw new ArgumentException(
                    $"Weighted value at index {i} is not finite or lies outside [-{Format(Range)}, {Format(Range)}]; clip before quantizing.",
                    nameof(values));
            }

            // |v| ≤ Range implies |round(v · Scale)| ≤ MaxMagnitude < 2^31, so the cast cannot overflow.
            destination[i] = unchecked((uint)(int)Math.Round(v * Scale, MidpointRounding.ToEven));
        }
    }

    /// <summary>Decodes a sum of quantized (and unmasked) vectors: each element read as <see cref="int"/>, divided by <see cref="Scale"/>.</summary>
    /// <remarks>Correct only within the headroom; see the type remarks. Results are doubles so the decoding adds no float32 rounding.</remarks>
    public double[] Dequantize(ReadOnlySpan<uint> sum)
    {
        var result = new double[sum.Length];
        for (var i = 0; i < sum.Length; i++)
        {
            result[i] = unchecked((int)sum[i]) / Scale;
        }

        return result;
    }

    /// <summary>Whether every element of a decoded-to-be sum lies within <c>±Silos · MaxMagnitude</c>.</summary>
    /// <remarks>
    /// A true sum always does. A sum corrupted by masks that do not cancel (a substituted public key, a missing
    /// or stale contribution) is uniform on the ring, so each coordinate lands inside with probability about
    /// <c>2 · Silos · MaxMagnitude / 2^32</c> (at most 1/2): a vector of a few dozen coordinates or more is caught with
    /// overwhelming probability. This is a consistency check, not authentication of the contributions.
    /// </remarks>
    public bool IsWithinHeadroom(ReadOnlySpan<uint> sum)
    {
        var bound = Silos * MaxMagnitude;
        foreach (var element in sum)
        {
            if (Math.Abs((long)unchecked((int)element)) > bound)
            {
                return false;
            }
        }

        return true;
    }

    private static bool Fits(int silos, double range, double scale, long limit) =>
        silos * Math.Round(range * scale) <= limit;

    private static double ChooseScaleOrZero(int silos, double range, int bits)
    {
        try
        {
            return ChooseScale(silos, range, bits);
        }
        catch (ArgumentException)
        {
            return 0;
        }
    }

    private static void ValidateShape(int silos, double range, int bits)
    {
        if (silos < 1)
        {
            throw new ArgumentException($"At least one silo is needed; got {silos}.", nameof(silos));
        }

        if (!double.IsFinite(range) || range <= 0)
        {
            throw new ArgumentException($"The range must be positive and finite; got {Format(range)}.", nameof(range));
        }

        if (bits is < 1 or > MaxBits)
        {
            throw new ArgumentException($"Headroom bits must be in [1, {MaxBits}]; got {bits}.", nameof(bits));
        }
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
