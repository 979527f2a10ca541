using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Hands a verified global model to the silo backend for training or evaluation.</summary>
/// <remarks>The global model is read from the orchestrator's checkpoint store and its SHA-256 checked before any silo sees it.</remarks>
public sealed class SiloTaskService(ICheckpointStore checkpoints, ISiloBackend backend)
{
    /// <summary>Runs one silo's training for one round.</summary>
    public async Task<SiloUpdate> TrainAsync(TrainRequest request, CancellationToken cancellationToken)
    {
        var global = await checkpoints.ReadModelAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false);
        return await backend.TrainAsync(request, global, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Scores a global model on one silo's test split.</summary>
    public async Task<SiloEvaluation> EvaluateAsync(EvaluateRequest request, CancellationToken cancellationToken)
    {
        var model = await checkpoints.ReadModelAsync(request.Model, cancellationToken).ConfigureAwait(false);
        return await backend.EvaluateAsync(request, model, cancellationToken).ConfigureAwait(false);
    }
}
