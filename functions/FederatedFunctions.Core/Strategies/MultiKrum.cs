using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Multi-Krum: the plain mean of the <c>m</c> updates with the best Krum scores.</summary>
/// <remarks>
/// Blanchard et al. (2017), section 5: scores as <see cref="Krum"/>; the <c>m</c> best (<c>keep</c>, default
/// <c>n − f</c>, at most the updates there are) are averaged, unweighted, as the paper's rule (Flower weights them by
/// example count). <c>m = 1</c> is Krum. Buffered: every update is held at once.
/// </remarks>
public sealed class MultiKrum(StrategySpec spec) : IFederatedStrategy
{
    /// <summary>The tolerated Byzantine silos f.</summary>
    public int Byzantine { get; } = spec.Byzantine ?? 0;

    /// <inheritdoc />
    public string Name => StrategyNames.MultiKrum;

    /// <inheritdoc />
    public AggregationMode Mode => AggregationMode.Buffered;

    /// <inheritdoc />
    public IReadOnlyList<string> Parameters => ["byzantine", "keep"];

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add)
    {
        Krum.ValidateByzantine(spec, sampledPerRound, add);
        if (spec.Keep is { } m && (m < 1 || m > sampledPerRound))
        {
            add("$.strategy.keep", "range", $"strategy.keep must be from 1 to the silos sampled per round ({sampledPerRound}); got {m}.");
        }
    }

    /// <inheritdoc />
    public BufferedAggregate Combine(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<FitOutcome> fits)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var keep = Math.Clamp(spec.Keep ?? (updates.Count - Byzantine), 1, updates.Count);
        var chosen = Krum.Ranked(updates, Byzantine).Take(keep).ToHashSet();
        var weights = Enumerable.Range(0, updates.Count).Select(i => chosen.Contains(i) ? 1.0 / keep : 0).ToArray();
        var kept = Enumerable.Range(0, updates.Count).Where(chosen.Contains).ToArray();
        return new(StrategyTensors.WeightedMean(kept.Select(i => updates[i]).ToArray(), kept.Select(_ => 1.0).ToArray()), weights);
    }
}
