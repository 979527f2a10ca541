using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>FedProx: each silo adds a proximal term to its loss; the server averages as FedAvg does.</summary>
/// <remarks>
/// Li et al., "Federated Optimization in Heterogeneous Networks" (2020): silo k minimises
/// <c>F_k(w) + μ/2·‖w − w_t‖²</c> from the global model <c>w_t</c>, which keeps local models close to it when silos'
/// data differ. The server step is FedAvg's. μ (<c>proximalMu</c>, default 0.01) goes to every silo with its fit.
/// </remarks>
public sealed class FedProx(StrategySpec spec) : IFederatedStrategy
{
    /// <summary>μ when the spec leaves it out.</summary>
    public const double DefaultMu = 0.01;

    /// <summary>The proximal weight μ.</summary>
    public double Mu { get; } = spec.ProximalMu ?? DefaultMu;

    /// <inheritdoc />
    public string Name => StrategyNames.FedProx;

    /// <inheritdoc />
    public IReadOnlyList<string> Parameters => ["proximalMu"];

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add) =>
        StrategyParameters.Number(add, "proximalMu", spec.ProximalMu, 0, 1000);

    /// <inheritdoc />
    public FitConfig ConfigureSiloFit(int round, string siloId) => new(Mu);
}
