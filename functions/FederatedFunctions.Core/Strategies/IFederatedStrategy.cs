using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>
/// A federated-learning algorithm, in the manner of Flower's <c>Strategy</c>: how each silo fits, how the updates become
/// the next global model, and what the server remembers between rounds. One algorithm is one file in this folder,
/// registered in <see cref="StrategyCatalog"/>; see <c>docs/strategies.md</c>.
/// </summary>
/// <remarks>
/// <para>Implementations are pure and deterministic: the orchestrator calls <see cref="ConfigureFit"/>,
/// <see cref="ConfigureSiloFit"/> and <see cref="ConfigureEvaluate"/> during replay, so they depend only on their
/// arguments and the strategy's parameters (<see cref="Specs.StrategySpec"/>).</para>
/// <para>A <see cref="AggregationMode.Streaming"/> strategy gives each update a weight (<see cref="AggregationWeights"/>)
/// and the aggregation activity streams the weighted mean through the tensor engine, one update at a time, in memory
/// flat in the number of silos; it is the only kind secure aggregation can serve, since that releases only a sum. A
/// <see cref="AggregationMode.Buffered"/> strategy needs every update at once (<see cref="Combine"/>).</para>
/// <para>A strategy with server state (<see cref="ServerOptimizer"/>) moves the global model from the round's aggregate
/// itself; its state is a blob beside the round's model, referenced from the orchestration state and the manifest.</para>
/// <para>Differential privacy and the norm screen wrap a strategy (<see cref="DifferentiallyPrivate"/>,
/// <see cref="NormScreened"/>) through the hooks <see cref="NeedsDistances"/>, <see cref="Screen"/>,
/// <see cref="ClipScale"/> and <see cref="Release"/>, whose defaults do nothing.</para>
/// </remarks>
public interface IFederatedStrategy
{
    /// <summary>Strategy name as written in a run spec.</summary>
    string Name { get; }

    /// <summary>The <see cref="Specs.StrategySpec"/> fields (JSON names) the strategy reads; the validator refuses any other that is set.</summary>
    IReadOnlyList<string> Parameters => [];

    /// <summary>Reports every problem with the strategy's parameters, by JSON path and rule.</summary>
    /// <param name="sampledPerRound">Silos the participation policy samples each round.</param>
    /// <param name="add">Reports a problem: JSON path, rule, message.</param>
    void Validate(int sampledPerRound, Action<string, string, string> add)
    {
    }

    /// <summary>How the accepted updates are combined.</summary>
    AggregationMode Mode => AggregationMode.Streaming;

    /// <summary>Whether the strategy can run under secure aggregation, which releases only the weighted sum of the updates.</summary>
    bool CombinesWithSecureAggregation => Mode == AggregationMode.Streaming;

    /// <summary>Whether the strategy can run under DP-FedAvg's clipping and noise, whose guarantee is for a mean of clipped updates.</summary>
    bool CombinesWithDifferentialPrivacy => Mode == AggregationMode.Streaming;

    /// <summary>The server optimizer that moves the global model from the round's aggregate, or null when the aggregate is the next model.</summary>
    IServerOptimizer? ServerOptimizer => null;

    /// <summary>The silos that may train in <paramref name="round"/>, in a stable order (the participation policy samples from them).</summary>
    IReadOnlyList<string> ConfigureFit(int round, IReadOnlyList<string> silos) => silos;

    /// <summary>What <paramref name="siloId"/> is told for its fit in <paramref name="round"/>.</summary>
    FitConfig ConfigureSiloFit(int round, string siloId) => FitConfig.Plain;

    /// <summary>The silos that evaluate the global model after <paramref name="round"/>.</summary>
    IReadOnlyList<string> ConfigureEvaluate(int round, IReadOnlyList<string> silos) => silos;

    /// <summary>Streaming: normalised weights, one per accepted update in the same order, summing to 1 (by default n_k / Σ n).</summary>
    /// <exception cref="ArgumentException">No updates, or a non-positive example count.</exception>
    IReadOnlyList<double> AggregationWeights(IReadOnlyList<FitOutcome> accepted) =>
        WeightedMath.NormalisedWeights(accepted.Select(a => a.Examples).ToArray());

    /// <summary>Buffered: the round's aggregate from every accepted update at once, in silo-id order.</summary>
    /// <param name="updates">Each update's tensors, all of the same names, shapes and dtypes (checked before).</param>
    /// <param name="fits">What each silo reported, in the same order.</param>
    /// <exception cref="NotSupportedException">A streaming strategy.</exception>
    BufferedAggregate Combine(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<FitOutcome> fits) =>
        throw new NotSupportedException($"Strategy '{Name}' streams its updates; it has no buffered combine.");

    /// <summary>Wrapper hook: whether each update's L2 distance from the global model must be measured before aggregation.</summary>
    bool NeedsDistances => false;

    /// <summary>Wrapper hook: for each measured update, a refusal detail, or null to keep it.</summary>
    IReadOnlyList<string?> Screen(IReadOnlyList<double> distances) => new string?[distances.Count];

    /// <summary>Wrapper hook: the factor an update's change from the global model is scaled by before it counts (1: unchanged).</summary>
    double ClipScale(double distance) => 1;

    /// <summary>Wrapper hook: the aggregate as released, from the mean of <paramref name="contributors"/> updates over <paramref name="sampled"/> sampled silos.</summary>
    IReadOnlyList<NamedTensor> Release(IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> global, int contributors, int sampled) => aggregate;

    /// <summary>Combines the silos' training metrics into the round's: example total and example-weighted loss.</summary>
    FitSummary AggregateFit(IReadOnlyList<FitOutcome> accepted) =>
        new(accepted.Sum(a => a.Examples), WeightedMath.WeightedMean(accepted.Select(a => (a.Loss, a.Examples)).ToArray()));

    /// <summary>Combines the silos' evaluation metrics into the round's.</summary>
    /// <exception cref="ArgumentException">No example was scored.</exception>
    EvaluateSummary AggregateEvaluate(IReadOnlyList<EvaluateOutcome> results)
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

/// <summary>How a strategy combines a round's updates.</summary>
public enum AggregationMode
{
    /// <summary>A weighted mean, one update at a time: memory flat in the number of silos.</summary>
    Streaming,

    /// <summary>Every update held at once (median, trimmed mean, Krum): memory grows with the number of silos.</summary>
    Buffered,
}

/// <summary>A buffered strategy's aggregate.</summary>
/// <param name="Model">The aggregate, with the updates' tensor names, shapes and dtypes.</param>
/// <param name="Weights">Each update's share of the aggregate when it is a mean of some of them (Krum: 1 for the one chosen), or null when no update has a share (a coordinate-wise median).</param>
public sealed record BufferedAggregate(IReadOnlyList<NamedTensor> Model, IReadOnlyList<double>? Weights);

/// <summary>What one silo is told for its fit, beyond the run's training settings.</summary>
/// <param name="ProximalMu">FedProx's μ: the silo adds μ/2·‖w − w_global‖² to its loss; 0 turns the term off.</param>
public sealed record FitConfig(double ProximalMu = 0)
{
    /// <summary>Plain local training.</summary>
    public static FitConfig Plain { get; } = new();
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
