namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// The two halves of the Gaussian mechanism on flat float vectors: clip each contribution to an
/// L2 norm, then add N(0, (z·C)²) noise to every coordinate of their sum.
/// </summary>
/// <remarks>
/// <para>
/// Why: clipping bounds the L2 sensitivity of the sum (add or remove one contribution) by the clip
/// norm C, and noise with standard deviation z·C then makes each step the Gaussian mechanism with
/// noise multiplier z, which is what <see cref="RdpAccountant"/> accounts for. Pure: no tensors,
/// no I/O; callers flatten their tensors.
/// </para>
/// <para>
/// Guaranteed: norms are accumulated in double; after <see cref="Clip"/> the exact L2 norm of the
/// stored floats is at most the clip norm, float rounding included; noise is drawn in double and
/// rounded once to float. Units: norms and the clip norm are in the units of the update values;
/// the noise multiplier is dimensionless.
/// </para>
/// </remarks>
public static class GaussianMechanism
{
    // Clipping multiplies by C/‖x‖·(1 − 2⁻²²). Rounding each product to float adds at most 2⁻²⁴ relative
    // per element, double arithmetic 2⁻⁵², and the blocked norm below is within ~2⁻³¹ of exact for any
    // span, so the stored norm stays ≤ C. The shrink (2.4e-7 relative) is far below any noise.
    private const double ClipShrink = 1.0 - 1.0 / (1 << 22);
    private const int NormBlock = 1024;
    private const int NoiseChunk = 256;

    /// <summary>The factor min(1, C/‖x‖) that clipping applies; 1 when the norm is 0.</summary>
    /// <param name="l2Norm">‖x‖₂, finite and ≥ 0.</param>
    /// <param name="clipNorm">C, finite and &gt; 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A norm outside its domain.</exception>
    public static double ClipScale(double l2Norm, double clipNorm)
    {
        ValidateClipNorm(clipNorm);
        if (!(l2Norm >= 0) || !double.IsFinite(l2Norm))
        {
            throw new ArgumentOutOfRangeException(nameof(l2Norm), l2Norm, "The L2 norm must be finite and non-negative.");
        }

        return l2Norm <= clipNorm ? 1.0 : clipNorm / l2Norm;
    }

    /// <summary>‖x‖₂, accumulated in double in blocks (so the rounding error does not grow with the length).</summary>
    public static double L2Norm(ReadOnlySpan<float> values)
    {
        var total = 0.0;
        for (var start = 0; start < values.Length; start += NormBlock)
        {
            var block = values.Slice(start, Math.Min(NormBlock, values.Length - start));
            var partial = 0.0;
            foreach (var v in block)
            {
                partial += (double)v * v;
            }

            total += partial;
        }

        return Math.Sqrt(total);
    }

    /// <summary>
    /// Scales <paramref name="update"/> in place so that its L2 norm is at most <paramref name="clipNorm"/>,
    /// keeping its direction; leaves it unchanged when it is already within the bound.
    /// </summary>
    /// <returns>The norm before clipping.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="clipNorm"/> is not finite and positive.</exception>
    /// <exception cref="ArgumentException">The update holds a NaN or an infinity.</exception>
    public static double Clip(Span<float> update, double clipNorm)
    {
        ValidateClipNorm(clipNorm);
        var norm = L2Norm(update);
        if (!double.IsFinite(norm))
        {
            throw new ArgumentException("The update holds a NaN or an infinity (or its norm overflows); it cannot be clipped.", nameof(update));
        }

        var scale = ClipScale(norm, clipNorm);
        if (scale < 1.0)
        {
            var shrunk = scale * ClipShrink;
            for (var i = 0; i < update.Length; i++)
            {
                update[i] = (float)(update[i] * shrunk);
            }
        }

        return norm;
    }

    /// <summary>
    /// Adds independent N(0, (<paramref name="noiseMultiplier"/> · <paramref name="clipNorm"/>)²) noise to every
    /// coordinate of <paramref name="sum"/>, the sum of updates each clipped to <paramref name="clipNorm"/>.
    /// </summary>
    /// <param name="sum">The clipped sum, changed in place.</param>
    /// <param name="noiseMultiplier">z, finite and ≥ 0; 0 adds nothing (and gives no privacy).</param>
    /// <param name="clipNorm">C, the clip norm the contributions were clipped to; finite and &gt; 0.</param>
    /// <param name="source">Where the noise comes from: <see cref="CryptoGaussianSource"/> for real privacy.</param>
    /// <exception cref="ArgumentOutOfRangeException">z or C outside its domain.</exception>
    public static void AddNoise(Span<float> sum, double noiseMultiplier, double clipNorm, IGaussianSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ValidateClipNorm(clipNorm);
        if (!(noiseMultiplier >= 0) || !double.IsFinite(noiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "The noise multiplier must be finite and non-negative.");
        }

        var standardDeviation = noiseMultiplier * clipNorm;
        if (standardDeviation == 0)
        {
            return;
        }

        Span<float> noise = stackalloc float[NoiseChunk];
        for (var start = 0; start < sum.Length; start += NoiseChunk)
        {
            var target = sum.Slice(start, Math.Min(NoiseChunk, sum.Length - start));
            var chunk = noise[..target.Length];
            source.Fill(chunk, standardDeviation);
            for (var i = 0; i < target.Length; i++)
            {
                target[i] += chunk[i];
            }
        }

        noise.Clear();
    }

    private static void ValidateClipNorm(double clipNorm)
    {
        if (!(clipNorm > 0) || !double.IsFinite(clipNorm))
        {
            throw new ArgumentOutOfRangeException(nameof(clipNorm), clipNorm, "The clip norm must be finite and positive.");
        }
    }
}
