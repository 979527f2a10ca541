namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// Reproducible normal and Laplace samples from a 64-bit seed, for tests and simulations.
/// <strong>Never use it for real privacy</strong>: whoever knows the seed can remove the noise.
/// </summary>
/// <remarks>
/// <para>
/// Why: tests and simulated runs need noise that is the same on every machine and every .NET
/// version, which <see cref="Random"/> does not promise for all its members and does not offer for
/// a 64-bit seed. The generator is xoshiro256** (Blackman and Vigna 2018), its state expanded from
/// the seed with SplitMix64 as its authors recommend; normals come from Marsaglia's polar method.
/// </para>
/// <para>
/// Guaranteed: the same seed gives the same sequence, bit for bit, on every platform.
/// Not guaranteed: unpredictability. Not thread-safe.
/// </para>
/// </remarks>
public sealed class SeededGaussianSource : INoiseSource
{
    private readonly PolarNormalSampler _sampler;
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A source whose whole sequence is determined by <paramref name="seed"/>.</summary>
    public SeededGaussianSource(long seed)
    {
        var x = unchecked((ulong)seed);
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
        _sampler = new PolarNormalSampler(Next64);
    }

    /// <inheritdoc/>
    public double NextStandardNormal() => _sampler.NextStandardNormal();

    /// <inheritdoc/>
    public double NextStandardLaplace() => _sampler.NextStandardLaplace();

    /// <inheritdoc/>
    public void Fill(Span<float> destination, double standardDeviation) => _sampler.Fill(destination, standardDeviation);

    private static ulong SplitMix64(ref ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            var z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    private ulong Next64()
    {
        unchecked
        {
            var result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            var t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }
    }
}
