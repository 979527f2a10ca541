using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Where a differentially private analysis's noise comes from: a new source per release.</summary>
/// <remarks>
/// Production uses <see cref="Cryptographic"/>, which <c>AddFederatedWorkflow</c> registers: nobody, the operator
/// included, can reproduce its noise. A test host registers a seeded one (<see cref="SeededGaussianSource"/>) to check the
/// noise drawn; nothing in a spec or in configuration can seed it.
/// </remarks>
/// <param name="create">Makes a source for one release.</param>
public sealed class AnalysisNoise(Func<INoiseSource> create)
{
    /// <summary>Noise from the operating system's cryptographic generator.</summary>
    public static AnalysisNoise Cryptographic { get; } = new(() => new CryptoGaussianSource());

    /// <summary>A source for one release.</summary>
    public INoiseSource Create() => create();
}
