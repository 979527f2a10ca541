namespace FederatedFunctions.Core.Strategies;

/// <summary>
/// Configures rounds and combines their results, in the manner of Flower's <c>Strategy</c>.
/// </summary>
/// <remarks>
/// Implementations are pure and deterministic: the orchestrator calls <see cref="ConfigureFit"/> and
/// <see cref="ConfigureEvaluate"/> during replay, so they may depend only on their arguments.
/// The tensor arithmetic of aggregation is done by the aggregation activity with the weights that
/// <see cref="AggregationWeights"/> returns; the strategy owns the arithmetic of the weights and metrics.
/// </remarks>
public interface IFederatedStrategy
{
    /// <summary>Strategy name as written in a run spec.</summary>
    string Name { get; }

    /// <summary>The silos that train in <paramref name="round"/>, in a stable order.</summary>
    IReadOnlyList<string> ConfigureFit(int round, IReadOnlyList<string> silos);

    /// <summary>The silos that evaluate the global model after <paramref name="round"/>.</summary>
    IReadOnlyList<string> ConfigureEvaluate(int round, IReadOnlyList<string> silos);

    /// <summary>Normalised aggregation weights, one per accepted update, in the same order; they sum to 1.</summary>
    /// <exception cref="ArgumentException">No updates, or a non-positive example count.</exception>
    IReadOnlyList<double> AggregationWeights(IReadOnlyList<FitOutcome> accepted);

    /// <summary>Combines the silos' training metrics into the round's.</summary>
    FitSummary AggregateFit(IReadOnlyList<FitOutcome> accepted);

    /// <summary>Combines the silos' evaluation metrics into the round's.</summary>
    EvaluateSummary AggregateEvaluate(IReadOnlyList<EvaluateOutcome> results);
}

/// <summary>What one silo reported from training, without the weights themselves.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Examples">Training examples seen per epoch.</param>
/// <param name="Loss">Mean train loss of its last local epoch.</param>
public sealed record FitOutcome(string SiloId, long Examples, double Loss);

/// <summary>What one silo reported from evaluating the global model on its test split.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Examples">Test examples scored.</param>
/// <param name="Loss">Mean cross-entropy loss.</param>
/// <param name="Correct">Correctly classified examples.</param>
public sealed record EvaluateOutcome(string SiloId, long Examples, double Loss, long Correct);

/// <summary>A round's training metrics.</summary>
/// <param name="Examples">Total examples.</param>
/// <param name="Loss">Example-weighted mean loss.</param>
public sealed record FitSummary(long Examples, double Loss);

/// <summary>A round's evaluation metrics.</summary>
/// <param name="Examples">Total examples scored.</param>
/// <param name="Loss">Example-weighted mean loss.</param>
/// <param name="Accuracy">Total correct over total examples.</param>
public sealed record EvaluateSummary(long Examples, double Loss, double Accuracy);
