namespace FederatedFunctions.Core.Privacy;

/// <summary>A source of the two noises of differentially private statistics: standard normal and standard Laplace samples.</summary>
/// <remarks>
/// Production code uses <see cref="CryptoGaussianSource"/>, whose samples nobody can reproduce; <see cref="SeededGaussianSource"/>
/// is for tests and simulations only, as for <see cref="IGaussianSource"/>. Both kinds of sample come from one stream of
/// uniforms, so a seeded source gives the same interleaving of normal and Laplace samples on every platform.
/// Implementations need not be thread-safe.
/// </remarks>
public interface INoiseSource : IGaussianSource
{
    /// <summary>One sample from the standard Laplace distribution, density <c>½·e^(−|x|)</c> (variance 2).</summary>
    double NextStandardLaplace();
}
