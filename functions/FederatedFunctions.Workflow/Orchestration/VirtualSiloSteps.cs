using System.Globalization;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>A simulation's training fan-out: the round's sampled virtual silos in groups, one silo step per group on the host's compute.</summary>
/// <remarks>
/// The results come back per virtual silo, in the sampled order, as if each had been a silo step of its own: a failed or
/// late group fails each of its virtual silos with the group's reason, and a group's answer is accepted only for the
/// virtual silos it was asked for, each once, in the host's outbox, for this round. Pure: it runs inside the orchestrator.
/// </remarks>
internal static class VirtualSiloSteps
{
    /// <summary>Each sampled virtual silo's update, or why it has none.</summary>
    /// <param name="host">The simulation's host silo.</param>
    /// <param name="round">The round.</param>
    /// <param name="batches">The groups, as asked.</param>
    /// <param name="calls">Each group's step result, in the order of <paramref name="batches"/>.</param>
    public static IReadOnlyList<SiloCall<SiloUpdate>> Flatten(string host, int round, IReadOnlyList<VirtualBatch> batches, IReadOnlyList<SiloCall<IReadOnlyList<SiloUpdate>>> calls)
    {
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(calls);
        if (batches.Count != calls.Count)
        {
            throw new ArgumentException($"{calls.Count} results for {batches.Count} groups.", nameof(calls));
        }

        var flat = new List<SiloCall<SiloUpdate>>();
        for (var b = 0; b < batches.Count; b++)
        {
            var ids = batches[b].Indices.Select(i => VirtualSilos.Id(host, i)).ToArray();
            var call = calls[b];
            var refusal = call.Failure is { } failure ? (failure.Reason, failure.Detail) : call.Result is null ? ("train-failed", "the step answered without updates") : Check(host, round, ids, call.Result);
            if (refusal is { } r)
            {
                flat.AddRange(ids.Select(id => new SiloCall<SiloUpdate>(id, null, new RejectedUpdate(id, r.Reason, $"group {batches[b].Batch.ToString(CultureInfo.InvariantCulture)} of host '{host}': {r.Detail}"))));
                continue;
            }

            var byId = call.Result!.ToDictionary(u => u.SiloId, StringComparer.Ordinal);
            flat.AddRange(ids.Select(id => byId.TryGetValue(id, out var update)
                ? new SiloCall<SiloUpdate>(id, update, null)
                : new SiloCall<SiloUpdate>(id, null, new RejectedUpdate(id, "no-update", $"host '{host}' trained no update for it: its part of the train split is empty"))));
        }

        return flat;
    }

    // A group's answer names only virtual silos it was asked for, once each, in the host's outbox, for this round.
    private static (string Reason, string Detail)? Check(string host, int round, string[] asked, IReadOnlyList<SiloUpdate> updates)
    {
        var expected = asked.ToHashSet(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var u in updates)
        {
            if (u?.SiloId is null || u.Update is null)
            {
                return ("train-failed", "the step answered with an empty update");
            }

            if (!expected.Contains(u.SiloId) || !seen.Add(u.SiloId) || u.Host != host || u.Round != round)
            {
                return ("train-failed", $"the step answered for '{u.SiloId}' (host '{u.Host}', round {u.Round.ToString(CultureInfo.InvariantCulture)}), which it was not asked for or named twice");
            }
        }

        return null;
    }
}
