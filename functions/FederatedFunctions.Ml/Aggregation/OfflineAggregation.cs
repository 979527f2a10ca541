using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Ml;

/// <summary>FedAvg over updates already in memory, for the <c>fl aggregate</c> command.</summary>
/// <remarks>
/// The first update is the template: every other must have its names, shapes and dtypes, and all values must be
/// finite. Weights are the example counts, so the result is <c>Σ nₖ·wₖ / Σ nₖ</c>, added in the given order.
/// </remarks>
public static class OfflineAggregation
{
    /// <summary>The example-weighted average of <paramref name="updates"/>, sorted by name.</summary>
    /// <exception cref="ArgumentException">No updates, a count that is not positive, or an update that fails validation (the message says which one, by index, and why).</exception>
    public static IReadOnlyList<NamedTensor> WeightedAverage(IReadOnlyList<(IReadOnlyList<NamedTensor> Update, long Examples)> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0)
        {
            throw new ArgumentException("At least one update is needed to aggregate.", nameof(updates));
        }

        using var aggregator = new StreamingAggregator(updates[0].Update);
        for (var i = 0; i < updates.Count; i++)
        {
            var (update, examples) = updates[i];
            if (examples <= 0)
            {
                throw new ArgumentException($"Update {i} has {examples} examples; counts must be positive.", nameof(updates));
            }

            var check = aggregator.TryAdd(update, examples);
            if (!check.Accepted)
            {
                throw new ArgumentException($"Update {i} was rejected ({check.Reason}): {check.Detail}.", nameof(updates));
            }
        }

        return aggregator.Result();
    }
}
