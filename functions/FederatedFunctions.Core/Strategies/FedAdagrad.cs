using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>FedAdagrad: <c>v_t = v_{t−1} + Δ_t²</c> (<see cref="FedOpt"/>). Defaults as Flower's: η = 0.1, β₁ = 0, τ = 1e-9.</summary>
public sealed class FedAdagrad(StrategySpec spec) : FedOpt(spec, learningRate: 0.1, beta1: 0, beta2: 0, tau: 1e-9)
{
    /// <inheritdoc />
    public override string Name => StrategyNames.FedAdagrad;

    /// <inheritdoc />
    public override IReadOnlyList<string> Parameters => ["serverLearningRate", "beta1", "tau"];

    /// <inheritdoc />
    protected override double SecondMoment(double previous, double deltaSquared) => previous + deltaSquared;
}
