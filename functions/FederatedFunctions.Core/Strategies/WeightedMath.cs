namespace FederatedFunctions.Core.Strategies;

/// <summary>Pure arithmetic shared by strategies.</summary>
public static class WeightedMath
{
    /// <summary>Weights <c>n_k / Σ n</c>, one per count.</summary>
    /// <exception cref="ArgumentException">Empty input or a count that is not positive.</exception>
    public static double[] NormalisedWeights(IReadOnlyList<long> counts)
    {
        if (counts.Count == 0)
        {
            throw new ArgumentException("At least one update is needed to aggregate.", nameof(counts));
        }

        long total = 0;
        foreach (var c in counts)
        {
            if (c <= 0)
            {
                throw new ArgumentException($"Example counts must be positive; got {c}.", nameof(counts));
            }

            total = checked(total + c);
        }

        var weights = new double[counts.Count];
        for (var i = 0; i < counts.Count; i++)
        {
            weights[i] = (double)counts[i] / total;
        }

        return weights;
    }

    /// <summary>Mean of values weighted by counts.</summary>
    public static double WeightedMean(IReadOnlyList<(double Value, long Count)> items)
    {
        var weights = NormalisedWeights(items.Select(i => i.Count).ToArray());
        double sum = 0;
        for (var i = 0; i < items.Count; i++)
        {
            sum += weights[i] * items[i].Value;
        }

        return sum;
    }
}
