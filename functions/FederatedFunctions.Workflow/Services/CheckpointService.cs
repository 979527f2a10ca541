using System.Globalization;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Writes the seeded round-0 model and commits rounds.</summary>
public sealed class CheckpointService(ICheckpointStore checkpoints)
{
    /// <summary>Writes the seeded initial model as round 0 and commits it.</summary>
    /// <remarks>The same seed yields the same bytes, so a retried call rewrites an identical blob.</remarks>
    /// <exception cref="IntegrityException">The checkpoint to resume from is missing or altered.</exception>
    /// <exception cref="IncompatibleCheckpointException">The checkpoint to resume from does not fit the spec's model.</exception>
    public async Task<InitializeModelResult> InitializeAsync(InitializeModelRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var state = ModelFactory.InitialState(request.Model, request.Inputs, request.Classes, request.Seed);
        var metadata = new Dictionary<string, string>
        {
            ["run_id"] = request.RunId,
            ["round"] = "0",
            ["seed"] = request.Seed.ToString(CultureInfo.InvariantCulture),
        };
        if (request.From is { } from)
        {
            // The earlier run's model replaces the seeded one, after checking it fits this spec's architecture.
            var bytes = await checkpoints.ReadModelAsync(from.Model, cancellationToken).ConfigureAwait(false);
            var resumed = Safetensors.Parse(bytes).Tensors;
            using (var template = new StreamingAggregator(state))
            {
                var check = template.Validate(resumed);
                if (!check.Accepted)
                {
                    throw new IncompatibleCheckpointException(
                        $"Round {from.Round} of run '{from.RunId}' does not fit this run's model ({check.Reason}: {check.Detail}).");
                }
            }

            state = resumed;
            metadata["resumed_from"] = $"{from.RunId}/round-{from.Round.ToString(CultureInfo.InvariantCulture)}";
        }

        var model = await checkpoints.PutModelAsync(request.Container, request.RunId, 0, Safetensors.Serialize(state, metadata), cancellationToken).ConfigureAwait(false);
        var manifest = new RoundManifest
        {
            RunId = request.RunId,
            Round = 0,
            Strategy = request.Strategy,
            Model = model,
            ResumedFrom = request.From,
            CreatedAt = request.CreatedAt,
        };
        var manifestRef = await checkpoints.CommitRoundAsync(request.Container, manifest, cancellationToken).ConfigureAwait(false);
        return new InitializeModelResult(model, manifestRef);
    }

    /// <summary>Writes a round's manifest and moves the latest pointer.</summary>
    public Task<BlobRef> CommitAsync(CommitRoundRequest request, CancellationToken cancellationToken) =>
        checkpoints.CommitRoundAsync(request.Container, request.Manifest, cancellationToken);
}
