using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Coordinate-wise trimmed mean of the updates, unweighted.</summary>
/// <remarks>
/// Yin et al. (2018): for each coordinate, the <c>k = ⌊β·n⌋</c> smallest and <c>k</c> largest values over the <c>n</c>
/// accepted updates are dropped and the rest averaged (as <c>scipy.stats.trim_mean</c> and Flower's FedTrimmedAvg, except
/// that β·n is computed in decimal, so that β = 0.29 of 100 updates cuts 29, not 28).
/// β is <c>trimFraction</c>, in [0, 0.5), default 0.2. Buffered: every update is held at once.
/// </remarks>
public sealed class FedTrimmedAvg(StrategySpec spec) : IFederatedStrategy
{
    /// <summary>β when the spec leaves it out.</summary>
    public const double DefaultTrimFraction = 0.2;

    /// <summary>The fraction β cut from each end.</summary>
    public double TrimFraction { get; } = spec.TrimFraction ?? DefaultTrimFraction;

    /// <inheritdoc />
    public string Name => StrategyNames.FedTrimmedAvg;

    /// <inheritdoc />
    public AggregationMode Mode => AggregationMode.Buffered;

    /// <inheritdoc />
    public IReadOnlyList<string> Parameters => ["trimFraction"];

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add) =>
        StrategyParameters.Number(add, "trimFraction", spec.TrimFraction, 0, 0.5, maxExclusive: true);

    /// <inheritdoc />
    public BufferedAggregate Combine(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<FitOutcome> fits)
    {
        ArgumentNullException.ThrowIfNull(updates);
        // In decimal: in binary floating point 0.29 · 100 is 28.999…, which would cut one value too few.
        var cut = (int)Math.Floor((decimal)TrimFraction * updates.Count);
        return new(StrategyTensors.PerCoordinate(updates, column =>
        {
            Array.Sort(column);
            double sum = 0;
            for (var k = cut; k < column.Length - cut; k++)
            {
                sum += column[k];
            }

            return sum / (column.Length - (2 * cut));
        }), null);
    }
}
