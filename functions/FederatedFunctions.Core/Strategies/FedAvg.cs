namespace FederatedFunctions.Core.Strategies;

/// <summary>Federated averaging: updates are averaged weighted by example count.</summary>
/// <remarks>
/// McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data" (2017):
/// <c>w = Σ n_k w_k / Σ n_k</c> over the accepted updates. Every member keeps the interface's default.
/// </remarks>
public sealed class FedAvg : IFederatedStrategy
{
    /// <inheritdoc />
    public string Name => Specs.StrategyNames.FedAvg;
}
