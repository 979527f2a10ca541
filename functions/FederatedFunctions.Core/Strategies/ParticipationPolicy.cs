using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Pure functions of the participation policy.</summary>
public static class ParticipationPolicy
{
    /// <summary>How many of <paramref name="available"/> silos a round samples.</summary>
    public static int SampleSize(ParticipationSpec policy, int available)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var k = policy.SampleCount ?? (policy.SampleFraction is { } f ? (int)Math.Ceiling(f * available) : available);
        return Math.Clamp(k, Math.Min(1, available), available);
    }

    /// <summary>The silos that train in <paramref name="round"/>, in their original order.</summary>
    /// <remarks>
    /// Each silo gets a key <see cref="Hashing.DeriveSeed"/>(seed, "sample", round, silo) and the smallest keys win:
    /// deterministic across replays, processes and platforms, independent of list order, and a fresh draw each round.
    /// </remarks>
    public static IReadOnlyList<string> Sample(IReadOnlyList<string> silos, ParticipationSpec policy, long seed, int round)
    {
        ArgumentNullException.ThrowIfNull(silos);
        var k = SampleSize(policy, silos.Count);
        if (k >= silos.Count)
        {
            return silos;
        }

        var roundLabel = round.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var chosen = silos
            .Select(s => (Silo: s, Key: Hashing.DeriveSeed(seed, "sample", roundLabel, s)))
            .OrderBy(x => x.Key)
            .ThenBy(x => x.Silo, StringComparer.Ordinal)
            .Take(k)
            .Select(x => x.Silo)
            .ToHashSet(StringComparer.Ordinal);
        return silos.Where(chosen.Contains).ToArray();
    }

    /// <summary>Fewest accepted updates a round needs: <see cref="ParticipationSpec.MinSilos"/>, or every sampled silo under <c>strict</c>.</summary>
    public static int MinimumAccepted(ParticipationSpec policy, int sampled)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return policy.FailurePolicy == FailurePolicies.Strict ? sampled : Math.Min(policy.MinSilos, sampled);
    }
}
