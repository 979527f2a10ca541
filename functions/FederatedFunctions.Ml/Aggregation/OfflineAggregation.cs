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

        // All in memory already: added together, with one pass over the sum (the same bytes as one at a time). The first
        // problem by index is reported, whether a count or a rejection.
        var counted = 0;
        while (counted < updates.Count && updates[counted].Examples > 0)
        {
            counted++;
        }

        using var aggregator = new StreamingAggregator(updates[0].Update);
        var checks = aggregator.TryAddAll(updates.Take(counted).Select(u => new WeightedUpdate(u.Update, u.Examples)).ToArray());
        for (var i = 0; i < checks.Count; i++)
        {
            if (!checks[i].Accepted)
            {
                throw new ArgumentException($"Update {i} was rejected ({checks[i].Reason}): {checks[i].Detail}.", nameof(updates));
            }
        }

        if (counted < updates.Count)
        {
            throw new ArgumentException($"Update {counted} has {updates[counted].Examples} examples; counts must be positive.", nameof(updates));
        }

        return aggregator.Result();
    }
}
