using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Coordinate-wise median of the updates, unweighted.</summary>
/// <remarks>
/// Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates" (2018): each coordinate of the
/// next model is the median of that coordinate over the accepted updates (the mean of the two middle values for an
/// even count). Fewer than half the silos cannot move it arbitrarily. Buffered: every update is held at once.
/// </remarks>
public sealed class FedMedian : IFederatedStrategy
{
    /// <inheritdoc />
    public string Name => Specs.StrategyNames.FedMedian;

    /// <inheritdoc />
    public AggregationMode Mode => AggregationMode.Buffered;

    /// <inheritdoc />
    public BufferedAggregate Combine(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<FitOutcome> fits) =>
        new(StrategyTensors.PerCoordinate(updates, Median), null);

    /// <summary>The median of <paramref name="column"/>, which it sorts in place.</summary>
    public static double Median(double[] column)
    {
        ArgumentNullException.ThrowIfNull(column);
        Array.Sort(column);
        var mid = column.Length / 2;
        return column.Length % 2 == 1 ? column[mid] : (column[mid - 1] + column[mid]) / 2;
    }
}
