namespace FederatedFunctions.Core.Strategies;

/// <summary>The norm screen: refuses updates that moved much further from the global model than the round's median update.</summary>
/// <remarks>
/// <para>
/// Each update's distance is the L2 norm of the update minus the round's global model
/// (<see cref="Tensors.TensorMath.L2Distance"/>). An update whose distance is more than <c>maxRatio</c> times the median
/// distance of the round is an outlier. The median is robust: fewer than half the silos cannot move it arbitrarily,
/// so one silo sending a scaled or corrupted model cannot hide by raising the bar.
/// </para>
/// <para>
/// Rounds with fewer than <see cref="MinUpdates"/> updates are not screened (with two, the median is their mean and
/// says nothing about which one is off), nor are rounds whose median distance is zero (most silos sent the model back
/// unchanged, and every moving update would look infinitely far).
/// </para>
/// </remarks>
public static class NormScreen
{
    /// <summary>Fewest updates a round needs before it is screened.</summary>
    public const int MinUpdates = 3;

    /// <summary>The median of <paramref name="values"/> (mean of the two middle values for an even count).</summary>
    /// <exception cref="ArgumentException">The list is empty or holds a non-finite value.</exception>
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0 || values.Any(v => !double.IsFinite(v)))
        {
            throw new ArgumentException("The median needs at least one value, all finite.", nameof(values));
        }

        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>For each distance, whether it is an outlier; all false when the round is not screened.</summary>
    /// <param name="distances">Each update's distance from the global model, finite and non-negative.</param>
    /// <param name="maxRatio">The largest accepted multiple of the median, at least 1.</param>
    /// <param name="median">The round's median distance, or NaN when the round is not screened.</param>
    public static bool[] Outliers(IReadOnlyList<double> distances, double maxRatio, out double median)
    {
        ArgumentNullException.ThrowIfNull(distances);
        if (!double.IsFinite(maxRatio) || maxRatio < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxRatio), maxRatio, "The ratio must be finite and at least 1.");
        }

        median = double.NaN;
        var outliers = new bool[distances.Count];
        if (distances.Count < MinUpdates)
        {
            return outliers;
        }

        var m = Median(distances);
        if (m <= 0)
        {
            return outliers;
        }

        median = m;
        for (var i = 0; i < distances.Count; i++)
        {
            outliers[i] = distances[i] > maxRatio * m;
        }

        return outliers;
    }
}
