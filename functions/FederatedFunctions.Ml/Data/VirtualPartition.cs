using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Ml;

/// <summary>The rows of a host's train split that each virtual silo of a simulation holds (<see cref="SimulationSpec"/>).</summary>
/// <remarks>
/// <para>A pure function of the labels and the simulation's settings: every silo step of a run computes the same partition,
/// whichever virtual silos it trains. Every row belongs to exactly one virtual silo.</para>
/// <list type="bullet">
/// <item><c>iid</c>: the rows in a seeded random order, dealt out in consecutive parts whose sizes differ by at most one
/// (empty ones when there are more virtual silos than rows).</item>
/// <item><c>dirichlet</c>: the usual label-skew recipe of federated benchmarks. For each class, its rows in a seeded random
/// order are shared out in proportions drawn from Dirichlet(α·1) over the virtual silos (exact counts by largest remainder), so
/// each virtual silo sees some classes far more than others. A virtual silo may get no row at all when α is small and the
/// silos many; it then has no update to give (its step reports it).</item>
/// </list>
/// <para>Each part lists its rows in ascending order; local training shuffles them, seeded by the virtual silo's id.</para>
/// </remarks>
public static class VirtualPartition
{
    /// <summary>Each virtual silo's rows (index 0 is virtual silo 1), ascending.</summary>
    /// <param name="labels">The host's train labels, one per row, each in <c>[0, classes)</c>.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="simulation">The partition's settings.</param>
    /// <exception cref="ArgumentException">Settings the validator refuses, or a label outside the classes.</exception>
    public static int[][] Split(IReadOnlyList<long> labels, int classes, SimulationSpec simulation)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(simulation);
        ArgumentOutOfRangeException.ThrowIfLessThan(simulation.VirtualSilos, 1, nameof(simulation));
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1, nameof(classes));
        var parts = Enumerable.Range(0, simulation.VirtualSilos).Select(_ => new List<int>()).ToArray();
        if (simulation.Split == SimulationSplits.Iid)
        {
            var order = Enumerable.Range(0, labels.Count).ToArray();
            SyntheticData.Shuffle(order.AsSpan(), SyntheticData.NewRandom(simulation.Seed, "simulation", "iid"));
            for (int v = 0, start = 0; v < parts.Length; v++)
            {
                var size = (order.Length / parts.Length) + (v < order.Length % parts.Length ? 1 : 0);
                parts[v].AddRange(order.AsSpan(start, size).ToArray());
                start += size;
            }
        }
        else if (simulation.Split == SimulationSplits.Dirichlet && simulation.Alpha is { } alpha && double.IsFinite(alpha) && alpha > 0)
        {
            var byClass = Enumerable.Range(0, classes).Select(_ => new List<int>()).ToArray();
            for (var row = 0; row < labels.Count; row++)
            {
                var label = labels[row];
                if (label < 0 || label >= classes)
                {
                    throw new ArgumentException($"Row {row} has label {label}, outside [0, {classes}).", nameof(labels));
                }

                byClass[label].Add(row);
            }

            var invariant = System.Globalization.CultureInfo.InvariantCulture;
            for (var c = 0; c < classes; c++)
            {
                var rows = byClass[c].ToArray();
                SyntheticData.Shuffle(rows.AsSpan(), SyntheticData.NewRandom(simulation.Seed, "simulation", "class", c.ToString(invariant)));
                var proportions = SyntheticData.SampleDirichlet(SyntheticData.NewRandom(simulation.Seed, "simulation", "proportions", c.ToString(invariant)), alpha, parts.Length);
                var counts = SyntheticData.Apportion(proportions, rows.Length);
                for (int v = 0, start = 0; v < parts.Length; v++)
                {
                    parts[v].AddRange(rows.AsSpan(start, counts[v]).ToArray());
                    start += counts[v];
                }
            }
        }
        else
        {
            throw new ArgumentException($"Unknown split '{simulation.Split}' (or a dirichlet split without a positive alpha); expected one of: {string.Join(", ", SimulationSplits.All)}.", nameof(simulation));
        }

        return parts.Select(p =>
        {
            var rows = p.ToArray();
            Array.Sort(rows);
            return rows;
        }).ToArray();
    }
}
