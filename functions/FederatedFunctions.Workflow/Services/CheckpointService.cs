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
    public async Task<InitializeModelResult> InitializeAsync(InitializeModelRequest request, CancellationToken cancellationToken)
    {
        var state = ModelFactory.InitialState(request.Model, request.Inputs, request.Classes, request.Seed);
        var metadata = new Dictionary<string, string>
        {
            ["run_id"] = request.RunId,
            ["round"] = "0",
            ["seed"] = request.Seed.ToString(CultureInfo.InvariantCulture),
        };
        var model = await checkpoints.PutModelAsync(request.Container, request.RunId, 0, Safetensors.Serialize(state, metadata), cancellationToken).ConfigureAwait(false);
        var manifest = new RoundManifest
        {
            RunId = request.RunId,
            Round = 0,
            Strategy = request.Strategy,
            Model = model,
            CreatedAt = request.CreatedAt,
        };
        var manifestRef = await checkpoints.CommitRoundAsync(request.Container, manifest, cancellationToken).ConfigureAwait(false);
        return new InitializeModelResult(model, manifestRef);
    }

    /// <summary>Writes a round's manifest and moves the latest pointer.</summary>
    public Task<BlobRef> CommitAsync(CommitRoundRequest request, CancellationToken cancellationToken) =>
        checkpoints.CommitRoundAsync(request.Container, request.Manifest, cancellationToken);
}
