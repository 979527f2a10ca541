using System.Globalization;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Silos;

/// <summary>A group of a round's sampled virtual silos that one silo step trains, one after another.</summary>
/// <param name="Batch">The group's number within the round, from 1: part of the step's name, so that each group is its own job.</param>
/// <param name="Indices">The virtual silos, by index (from 1), in the round's sampled order.</param>
/// <param name="Simulation">The partition the indices refer to; the silo recomputes it from the host's data.</param>
public sealed record VirtualBatch(int Batch, IReadOnlyList<int> Indices, SimulationSpec Simulation);

/// <summary>Ids and grouping of a simulation's virtual silos (<see cref="SimulationSpec"/>).</summary>
/// <remarks>
/// A virtual silo's id is <c>{host}#{n}</c>. <c>#</c> is not allowed in a silo id, so a virtual id can never name a
/// registered silo, and the host it lives in is part of it.
/// </remarks>
public static class VirtualSilos
{
    /// <summary>The separator between the host's id and the virtual silo's number.</summary>
    public const char Separator = '#';

    /// <summary>
    /// The order in which a round's updates are added: by silo id, the virtual silos of one host by number
    /// (<c>h#2</c> before <c>h#10</c>), so that they come in the order their steps wrote them, next to one another in
    /// their group blobs. Any other ids compare as ordinal strings.
    /// </summary>
    /// <remarks>
    /// Each id compares by its key (its host and number, or itself and 0), and no two ids share a key (a silo id cannot
    /// hold <c>#</c>, a virtual number has no leading zero), so this is a total order. The order decides the model's
    /// bytes (float addition is not associative): every place that adds a round's updates uses it.
    /// </remarks>
    public static IComparer<string> IdOrder { get; } = Comparer<string>.Create(static (a, b) =>
    {
        var (hostA, indexA) = TryParse(a, out var h, out var i) ? (h, i) : (a, 0);
        var (hostB, indexB) = TryParse(b, out h, out i) ? (h, i) : (b, 0);
        var byHost = string.CompareOrdinal(hostA, hostB);
        return byHost != 0 ? byHost : indexA.CompareTo(indexB);
    });

    /// <summary>The id of virtual silo <paramref name="index"/> (from 1) of <paramref name="host"/>.</summary>
    public static string Id(string host, int index) => host + Separator + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether <paramref name="id"/> is a virtual silo's id, and if so its host and index.</summary>
    public static bool TryParse(string id, out string host, out int index)
    {
        ArgumentNullException.ThrowIfNull(id);
        var at = id.LastIndexOf(Separator);
        host = string.Empty;
        index = 0;
        if (at <= 0 || !int.TryParse(id.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out index) || index < 1
            || id.AsSpan(at + 1).StartsWith("0"))
        {
            index = 0;
            return false;
        }

        host = id[..at];
        return true;
    }

    /// <summary>
    /// Who a round samples from: the virtual silos of a simulation (<c>{host}#1</c> … <c>{host}#N</c>), else the run's silos.
    /// </summary>
    public static IReadOnlyList<string> Participants(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Simulation is not { } simulation)
        {
            return spec.Silos;
        }

        return new IdList(spec.Silos.Single(), simulation.VirtualSilos);
    }

    // The ids, made when read: the orchestrator asks for them on every replay, and samples only a few of up to 100,000.
    private sealed class IdList(string host, int count) : IReadOnlyList<string>
    {
        public int Count => count;

        public string this[int index] => (uint)index < (uint)count ? Id(host, index + 1) : throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<string> GetEnumerator()
        {
            for (var i = 0; i < count; i++)
            {
                yield return Id(host, i + 1);
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>How many take part in the run: its virtual silos, or its silos.</summary>
    public static int ParticipantCount(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.Simulation?.VirtualSilos ?? spec.Silos?.Count ?? 0;
    }

    /// <summary>
    /// The sampled virtual silos of a round, in order, cut into groups of at most <see cref="SimulationSpec.PerStep"/>:
    /// groups of equal size (differing by at most one), as few as the limit allows.
    /// </summary>
    /// <exception cref="ArgumentException">An id that is not a virtual silo of <paramref name="host"/>.</exception>
    public static IReadOnlyList<VirtualBatch> Batches(string host, IReadOnlyList<string> sampled, SimulationSpec simulation)
    {
        ArgumentNullException.ThrowIfNull(sampled);
        ArgumentNullException.ThrowIfNull(simulation);
        var indices = sampled.Select(id => TryParse(id, out var h, out var i) && h == host ? i : throw new ArgumentException($"'{id}' is not a virtual silo of '{host}'.", nameof(sampled))).ToArray();
        var groups = (indices.Length + simulation.PerStep - 1) / simulation.PerStep;
        var batches = new VirtualBatch[groups];
        for (int g = 0, start = 0; g < groups; g++)
        {
            var size = (indices.Length / groups) + (g < indices.Length % groups ? 1 : 0);
            batches[g] = new VirtualBatch(g + 1, indices[start..(start + size)], simulation);
            start += size;
        }

        return batches;
    }
}
