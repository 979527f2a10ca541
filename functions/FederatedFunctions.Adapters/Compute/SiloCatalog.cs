using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>The silo registry as the workflow and the API see it: which silos exist, where their steps run, and what trains there.</summary>
public sealed class SiloCatalog(ISiloRegistry registry, IEnumerable<ISiloComputeKind> kinds) : ISiloCatalog
{
    private readonly Dictionary<string, ISiloComputeKind> byKind = kinds.ToDictionary(k => k.Kind, StringComparer.Ordinal);

    /// <inheritdoc />
    public bool Contains(string siloId) => siloId is not null && registry.SiloIds.Contains(siloId);

    /// <inheritdoc />
    public TrainerIdentity Trainer(string siloId)
    {
        var (entry, kind) = Resolve(siloId);
        return kind.Trainer(siloId, entry);
    }

    /// <inheritdoc />
    public SiloPlacement Placement(string siloId)
    {
        var (entry, kind) = Resolve(siloId);
        var poll = entry.Compute.PollSeconds ?? kind.DefaultPollSeconds;
        if (poll is < 1 or > 86_400)
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:PollSeconds' must be from 1 to 86400; got {poll}.");
        }

        if (entry.MinCount is < 1 or > 1_000_000)
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'MinCount' must be from 1 to 1000000; got {entry.MinCount}.");
        }

        return new SiloPlacement(siloId, kind.Kind, kind.Inline, poll, entry.MinCount);
    }

    /// <inheritdoc />
    public ISiloCompute Compute(string siloId) => Resolve(siloId).Kind;

    private (SiloEndpoint Entry, ISiloComputeKind Kind) Resolve(string siloId)
    {
        var entry = registry.Entry(siloId);
        if (!byKind.TryGetValue(entry.Compute.Kind, out var kind))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:Kind' is '{entry.Compute.Kind}'; this host has {string.Join(", ", byKind.Keys.Order(StringComparer.Ordinal))}.");
        }

        kind.Validate(siloId, entry);
        return (entry, kind);
    }
}
