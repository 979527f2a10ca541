using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>FedAdam: <c>v_t = β₂·v_{t−1} + (1 − β₂)·Δ_t²</c> (<see cref="FedOpt"/>). Defaults as Flower's: η = 0.1, β₁ = 0.9, β₂ = 0.99, τ = 1e-9.</summary>
public sealed class FedAdam(StrategySpec spec) : FedOpt(spec, learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9)
{
    /// <inheritdoc />
    public override string Name => StrategyNames.FedAdam;

    /// <inheritdoc />
    protected override double SecondMoment(double previous, double deltaSquared) => (Beta2 * previous) + ((1 - Beta2) * deltaSquared);
}
