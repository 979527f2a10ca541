namespace FederatedFunctions.Core.Strategies;

/// <summary>Federated averaging: every silo trains every round, and updates are averaged weighted by example count.</summary>
/// <remarks>
/// McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data" (2017):
/// <c>w = Σ n_k w_k / Σ n_k</c> over the accepted updates.
/// </remarks>
public sealed class FedAvg : IFederatedStrategy
{
    /// <inheritdoc />
    public string Name => Specs.StrategyNames.FedAvg;

    /// <inheritdoc />
    public IReadOnlyList<string> ConfigureFit(int round, IReadOnlyList<string> silos) => silos;

    /// <inheritdoc />
    public IReadOnlyList<string> ConfigureEvaluate(int round, IReadOnlyList<string> silos) => silos;

    /// <inheritdoc />
    public IReadOnlyList<double> AggregationWeights(IReadOnlyList<FitOutcome> accepted) =>
        WeightedMath.NormalisedWeights(accepted.Select(a => a.Examples).ToArray());

    /// <inheritdoc />
    public FitSummary AggregateFit(IReadOnlyList<FitOutcome> accepted)
    {
        var examples = accepted.Sum(a => a.Examples);
        return new FitSummary(examples, WeightedMath.WeightedMean(accepted.Select(a => (a.Loss, a.Examples)).ToArray()));
    }

    /// <inheritdoc />
    public EvaluateSummary AggregateEvaluate(IReadOnlyList<EvaluateOutcome> results)
    {
        var examples = results.Sum(r => r.Examples);
        if (examples <= 0)
        {
            throw new ArgumentException("Federated evaluation needs at least one scored example.", nameof(results));
        }

        var loss = WeightedMath.WeightedMean(results.Select(r => (r.Loss, r.Examples)).ToArray());
        return new EvaluateSummary(examples, loss, (double)results.Sum(r => r.Correct) / examples);
    }
}
