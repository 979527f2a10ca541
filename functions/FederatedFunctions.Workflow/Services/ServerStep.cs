using System.Globalization;
using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Workflow.Services;

/// <summary>The last step of every aggregation, plain or secure: frozen layers kept, then the strategy's server optimizer, if it has one.</summary>
/// <remarks>
/// The optimizer's next state is written beside the round's model and the model is derived from the state the round
/// keeps. When the release cannot be reproduced (DP noise, secure aggregation) the state is first-writer-wins, so a
/// re-executed activity still yields the model that matches the stored state; otherwise it is overwritten, so a round
/// redone over other updates (a resumed run whose last round was aggregated but not committed) keeps its own. A resumed
/// run reads the state from the latest manifest and continues bit for bit.
/// </remarks>
public static class ServerStep
{
    /// <summary>The next global model and the state the round keeps (null without a server optimizer).</summary>
    /// <param name="checkpoints">The orchestrator's checkpoint store.</param>
    /// <param name="strategy">The run's strategy.</param>
    /// <param name="container">Checkpoint container.</param>
    /// <param name="runId">Run id.</param>
    /// <param name="round">The round.</param>
    /// <param name="global">The round's global model.</param>
    /// <param name="aggregate">The round's released aggregate.</param>
    /// <param name="frozen">Layers that do not train: they keep the global model's values, before and after the optimizer.</param>
    /// <param name="previous">The state after the previous round; null on the optimizer's first step.</param>
    /// <param name="firstWriterWins">Whether a state already written for the round is kept (a release that cannot be reproduced).</param>
    /// <param name="release">Labels of the release the aggregate came from (a secure-aggregation attempt's key exchange), written into the state; a state already kept must carry the same.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="NoAcceptedUpdatesException">The round already keeps a state derived from another release.</exception>
    public static async Task<(IReadOnlyList<NamedTensor> Model, BlobRef? State)> ApplyAsync(
        ICheckpointStore checkpoints,
        IFederatedStrategy strategy,
        string container,
        string runId,
        int round,
        IReadOnlyList<NamedTensor> global,
        IReadOnlyList<NamedTensor> aggregate,
        IReadOnlyList<string>? frozen,
        BlobRef? previous,
        bool firstWriterWins,
        IReadOnlyDictionary<string, string>? release,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        ArgumentNullException.ThrowIfNull(strategy);
        aggregate = FrozenLayers.Restore(aggregate, global, frozen);
        if (strategy.ServerOptimizer is not { } optimizer)
        {
            return (aggregate, null);
        }

        var before = previous is null ? null : Safetensors.Parse(await checkpoints.ReadModelAsync(previous, cancellationToken).ConfigureAwait(false)).Tensors;
        var next = optimizer.NextState(global, aggregate, before);
        var metadata = new Dictionary<string, string>(release ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["run_id"] = runId,
            ["round"] = round.ToString(CultureInfo.InvariantCulture),
            ["strategy"] = strategy.Name,
        };
        var bytes = Safetensors.Serialize(next, metadata);
        var kept = await checkpoints.PutStrategyStateAsync(container, runId, round, bytes, firstWriterWins, cancellationToken).ConfigureAwait(false);
        var file = Safetensors.Parse(kept.Sha256 == Core.Hashing.Sha256Hex(bytes) ? bytes : await checkpoints.ReadModelAsync(kept, cancellationToken).ConfigureAwait(false));
        if (release is not null && release.Any(l => !file.Metadata.TryGetValue(l.Key, out var value) || value != l.Value))
        {
            throw new NoAcceptedUpdatesException(
                $"Round {round} of run '{runId}' already keeps server state from another secure-aggregation attempt, over other silos. " +
                "Retry when the silos of that attempt are reachable, or start a new run with resumeFrom this run's latest committed round.");
        }

        var state = file.Tensors;
        return (FrozenLayers.Restore(optimizer.Apply(global, aggregate, state), global, frozen), kept);
    }
}
