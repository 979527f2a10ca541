using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>FedYogi: <c>v_t = v_{t−1} − (1 − β₂)·Δ_t²·sign(v_{t−1} − Δ_t²)</c> (<see cref="FedOpt"/>). Defaults as Flower's: η = 0.01, β₁ = 0.9, β₂ = 0.99, τ = 1e-3.</summary>
public sealed class FedYogi(StrategySpec spec) : FedOpt(spec, learningRate: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3)
{
    /// <inheritdoc />
    public override string Name => StrategyNames.FedYogi;

    /// <inheritdoc />
    protected override double SecondMoment(double previous, double deltaSquared) =>
        previous - ((1 - Beta2) * deltaSquared * Math.Sign(previous - deltaSquared));
}
