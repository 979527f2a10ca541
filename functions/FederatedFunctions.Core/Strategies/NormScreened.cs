using System.Globalization;

namespace FederatedFunctions.Core.Strategies;

/// <summary>The norm screen around a strategy: updates that moved much further from the global model than the round's median update are refused.</summary>
/// <remarks>The rule is <see cref="NormScreen"/>'s (<c>robustness.maxNormRatio</c>); refused updates are reported with why, never dropped silently.</remarks>
public sealed class NormScreened(IFederatedStrategy inner, double maxRatio) : StrategyDecorator(inner)
{
    /// <summary>The largest accepted multiple of the round's median distance.</summary>
    public double MaxRatio { get; } = maxRatio;

    /// <inheritdoc />
    public override bool NeedsDistances => true;

    /// <inheritdoc />
    public override IReadOnlyList<string?> Screen(IReadOnlyList<double> distances)
    {
        ArgumentNullException.ThrowIfNull(distances);
        var outliers = NormScreen.Outliers(distances, MaxRatio, out var median);
        var inner = Inner.Screen(distances);
        return distances.Select((d, i) => outliers[i]
            ? string.Create(CultureInfo.InvariantCulture, $"update moved {d / median:0.##} times the round's median distance from the global model (limit {MaxRatio})")
            : inner[i]).ToArray();
    }
}
