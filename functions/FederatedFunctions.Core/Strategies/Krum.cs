using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Krum: the next model is the one update closest to its neighbours.</summary>
/// <remarks>
/// Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent" (2017): each update
/// <c>i</c> is scored by the sum of its squared L2 distances to its <c>n − f − 2</c> nearest other updates, and the update
/// with the lowest score (the first in silo-id order on a tie) becomes the model. <c>f</c> is <c>byzantine</c>
/// (default 0); the guarantee needs <c>n ≥ 2f + 3</c>, which the validator asks of the silos sampled per round. When
/// failures leave fewer, the score uses at least one neighbour. Buffered: every update is held at once.
/// </remarks>
public sealed class Krum(StrategySpec spec) : IFederatedStrategy
{
    /// <summary>The tolerated Byzantine silos f.</summary>
    public int Byzantine { get; } = spec.Byzantine ?? 0;

    /// <inheritdoc />
    public string Name => StrategyNames.Krum;

    /// <inheritdoc />
    public AggregationMode Mode => AggregationMode.Buffered;

    /// <inheritdoc />
    public IReadOnlyList<string> Parameters => ["byzantine"];

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add) => ValidateByzantine(spec, sampledPerRound, add);

    /// <inheritdoc />
    public BufferedAggregate Combine(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<FitOutcome> fits)
    {
        var best = Ranked(updates, Byzantine)[0];
        var weights = new double[updates.Count];
        weights[best] = 1;
        return new(updates[best], weights);
    }

    /// <summary>Each update's Krum score: the sum of its squared distances to its <c>max(1, n − f − 2)</c> nearest others.</summary>
    public static double[] Scores(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, int byzantine)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var n = updates.Count;
        if (n == 0)
        {
            throw new ArgumentException("At least one update is needed to aggregate.", nameof(updates));
        }

        var distances = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = i + 1; j < n; j++)
            {
                distances[i, j] = distances[j, i] = StrategyTensors.SquaredDistance(updates[i], updates[j]);
            }
        }

        var neighbours = Math.Min(n - 1, Math.Max(1, n - byzantine - 2));
        var scores = new double[n];
        for (var i = 0; i < n; i++)
        {
            scores[i] = Enumerable.Range(0, n).Where(j => j != i).Select(j => distances[i, j]).Order().Take(neighbours).Sum();
        }

        return scores;
    }

    /// <summary>The updates' indices from the best (lowest) Krum score, ties in input order.</summary>
    public static int[] Ranked(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, int byzantine)
    {
        var scores = Scores(updates, byzantine);
        return Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ThenBy(i => i).ToArray();
    }

    /// <summary>Checks <c>byzantine</c>: at least 0, and <c>2f + 3</c> silos sampled per round.</summary>
    internal static void ValidateByzantine(StrategySpec spec, int sampledPerRound, Action<string, string, string> add)
    {
        var f = spec.Byzantine ?? 0;
        if (f < 0)
        {
            add("$.strategy.byzantine", "range", $"strategy.byzantine must be at least 0; got {f}.");
        }
        else if (sampledPerRound < (2 * f) + 3)
        {
            add("$.strategy.byzantine", "conflict", $"strategy.byzantine {f} needs at least {(2 * f) + 3} silos per round (2f + 3); the participation policy samples {sampledPerRound}.");
        }
    }
}
