using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// Normal and Laplace samples from the operating system's cryptographic random number generator: the source
/// for real differential-privacy noise.
/// </summary>
/// <remarks>
/// <para>
/// Why: the Gaussian mechanism protects individuals only while nobody can reproduce its noise.
/// A seeded generator would let anyone who learns the seed (from a spec, a log, a checkpoint)
/// subtract the noise and recover the exact sum. This source has no seed and no state worth
/// stealing beyond the unused part of its small buffer.
/// </para>
/// <para>
/// What is guaranteed: uniforms with 53-bit resolution from <see cref="RandomNumberGenerator"/>,
/// turned into N(0, 1) by Marsaglia's polar method. What is not: the samples are IEEE doubles
/// (then floats), and floating-point samplers of continuous distributions leak a little through
/// the pattern of representable values (Mironov 2012, "On Significance of the Least Significant
/// Bits for Differential Privacy"; Jin et al. 2022, "Are We There Yet? Timing and Floating-Point
/// Attacks on Differential Privacy Systems"). Removing that needs a discrete Gaussian sampler
/// (Canonne, Kamath and Steinke 2020).
/// </para>
/// <para>Not thread-safe: use one instance per caller. Reproducible runs are deliberately impossible.</para>
/// </remarks>
public sealed class CryptoGaussianSource : INoiseSource
{
    private const int BufferWords = 64;

    private readonly ulong[] _buffer = new ulong[BufferWords];
    private readonly PolarNormalSampler _sampler;
    private int _next = BufferWords;

    /// <summary>A source backed by <see cref="RandomNumberGenerator"/>.</summary>
    public CryptoGaussianSource() => _sampler = new PolarNormalSampler(Next64);

    /// <inheritdoc/>
    public double NextStandardNormal() => _sampler.NextStandardNormal();

    /// <inheritdoc/>
    public double NextStandardLaplace() => _sampler.NextStandardLaplace();

    /// <inheritdoc/>
    public void Fill(Span<float> destination, double standardDeviation) => _sampler.Fill(destination, standardDeviation);

    private ulong Next64()
    {
        if (_next == BufferWords)
        {
            RandomNumberGenerator.Fill(MemoryMarshal.AsBytes(_buffer.AsSpan()));
            _next = 0;
        }

        var word = _buffer[_next];
        _buffer[_next++] = 0; // A used word is not left behind for a memory dump to find.
        return word;
    }
}
