namespace FederatedFunctions.Core.Privacy;

/// <summary>A source of independent normal samples for the Gaussian mechanism.</summary>
/// <remarks>
/// Production code uses <see cref="CryptoGaussianSource"/>: the privacy guarantee assumes the
/// noise is unknown to everyone who sees the noisy sum, and anyone who knows a seed can subtract
/// the noise again. <see cref="SeededGaussianSource"/> is for tests and simulations only.
/// Implementations need not be thread-safe; use one instance per caller.
/// </remarks>
public interface IGaussianSource
{
    /// <summary>One sample from N(0, 1).</summary>
    double NextStandardNormal();

    /// <summary>Overwrites every element of <paramref name="destination"/> with an independent sample from N(0, <paramref name="standardDeviation"/>²).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="standardDeviation"/> is negative, NaN or infinite.</exception>
    void Fill(Span<float> destination, double standardDeviation);
}
