using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Forwards every member to the wrapped strategy; a wrapper overrides only the hooks it changes.</summary>
public abstract class StrategyDecorator(IFederatedStrategy inner) : IFederatedStrategy
{
    /// <summary>The wrapped strategy.</summary>
    public IFederatedStrategy Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public IReadOnlyList<string> Parameters => Inner.Parameters;

    /// <inheritdoc />
    public AggregationMode Mode => Inner.Mode;

    /// <inheritdoc />
    public bool CombinesWithSecureAggregation => Inner.CombinesWithSecureAggregation;

    /// <inheritdoc />
    public bool CombinesWithDifferentialPrivacy => Inner.CombinesWithDifferentialPrivacy;

    /// <inheritdoc />
    public IServerOptimizer? ServerOptimizer => Inner.ServerOptimizer;

    /// <inheritdoc />
    public virtual bool NeedsDistances => Inner.NeedsDistances;

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add) => Inner.Validate(sampledPerRound, add);

    /// <inheritdoc />
    public IReadOnlyList<string> ConfigureFit(int round, IReadOnlyList<string> silos) => Inner.ConfigureFit(round, silos);

    /// <inheritdoc />
    public FitConfig ConfigureSiloFit(int round, string siloId) => Inner.ConfigureSiloFit(round, siloId);

    /// <inheritdoc />
    public IReadOnlyList<string> ConfigureEvaluate(int round, IReadOnlyList<string> silos) => Inner.ConfigureEvaluate(round, silos);

    /// <inheritdoc />
    public virtual IReadOnlyList<double> AggregationWeights(IReadOnlyList<FitOutcome> accepted) => Inner.AggregationWeights(accepted);

    /// <inheritdoc />
    public BufferedAggregate Combine(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<FitOutcome> fits) => Inner.Combine(updates, fits);

    /// <inheritdoc />
    public virtual IReadOnlyList<string?> Screen(IReadOnlyList<double> distances) => Inner.Screen(distances);

    /// <inheritdoc />
    public virtual double ClipScale(double distance) => Inner.ClipScale(distance);

    /// <inheritdoc />
    public virtual IReadOnlyList<NamedTensor> Release(IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> global, int contributors, int sampled) =>
        Inner.Release(aggregate, global, contributors, sampled);

    /// <inheritdoc />
    public FitSummary AggregateFit(IReadOnlyList<FitOutcome> accepted) => Inner.AggregateFit(accepted);

    /// <inheritdoc />
    public EvaluateSummary AggregateEvaluate(IReadOnlyList<EvaluateOutcome> results) => Inner.AggregateEvaluate(results);
}
