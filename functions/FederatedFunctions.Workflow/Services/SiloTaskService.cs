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

    /// <summary>Asks a silo for its public key of one secure-aggregation attempt.</summary>
    public Task<MaskingPublicKey> PublishMaskingKeyAsync(MaskingKeyRequest request, CancellationToken cancellationToken) =>
        backend.PublishMaskingKeyAsync(request, cancellationToken);

    /// <summary>Has a silo mask its kept update for one secure-aggregation attempt.</summary>
    public async Task<MaskedUpdateRef> MaskUpdateAsync(MaskUpdateRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var global = await checkpoints.ReadModelAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false);
        return await backend.MaskUpdateAsync(request, global, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asks a silo to reveal its self-mask seed for one secure-aggregation attempt.</summary>
    public Task<SelfMaskReveal> RevealSelfMaskAsync(RevealSelfMaskRequest request, CancellationToken cancellationToken) =>
        backend.RevealSelfMaskAsync(request, cancellationToken);

    /// <summary>Scores a global model on one silo's test split.</summary>
    public async Task<SiloEvaluation> EvaluateAsync(EvaluateRequest request, CancellationToken cancellationToken)
    {
        var model = await checkpoints.ReadModelAsync(request.Model, cancellationToken).ConfigureAwait(false);
        return await backend.EvaluateAsync(request, model, cancellationToken).ConfigureAwait(false);
    }
}
