using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Api;

/// <summary>A run's committed model, read with the orchestrator's own credential and checked against the round's manifest.</summary>
/// <remarks>
/// The model blob's size and SHA-256 must be the ones the manifest recorded (<see cref="ICheckpointStore.ReadStoredModelAsync"/>
/// checks both, on the blob as storage holds it now, not on what this process wrote), and the bytes must parse as
/// safetensors, so a file written out is the round's model or nothing, and a blob lost or changed is refused wherever
/// the request is served.
/// </remarks>
public static class ModelDownload
{
    /// <summary>What was downloaded: the round's model and its manifest record.</summary>
    /// <param name="RunId">The run.</param>
    /// <param name="Round">The committed round.</param>
    /// <param name="Model">The model as the manifest records it.</param>
    /// <param name="Bytes">The checked safetensors bytes.</param>
    /// <param name="Tensors">How many tensors it holds.</param>
    /// <param name="Manifest">The round's manifest, as read to check the model.</param>
    public sealed record Downloaded(string RunId, int Round, BlobRef Model, byte[] Bytes, int Tensors, RoundManifest Manifest);

    /// <summary>The model of <paramref name="round"/> (the latest committed round when null) of run <paramref name="runId"/>.</summary>
    /// <exception cref="ModelNotFoundException">No such run, or no such committed round.</exception>
    /// <exception cref="IntegrityException">The blob is missing, or its size or SHA-256 is not the manifest's.</exception>
    /// <exception cref="SafetensorsFormatException">The blob matches its hash but is not a safetensors file.</exception>
    public static async Task<Downloaded> GetAsync(ICheckpointStore store, string container, string runId, int? round, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var which = round
            ?? (await store.GetLatestAsync(container, runId, cancellationToken).ConfigureAwait(false))?.Round
            ?? throw new ModelNotFoundException($"Run '{runId}' has no committed round in container '{container}'.");
        var manifest = await store.GetManifestAsync(container, runId, which, cancellationToken).ConfigureAwait(false)
            ?? throw new ModelNotFoundException($"Run '{runId}' has no committed round {which} in container '{container}'.");
        var bytes = (await store.ReadStoredModelAsync(manifest.Model, cancellationToken).ConfigureAwait(false)).ToArray();
        return new Downloaded(runId, which, manifest.Model, bytes, Safetensors.Parse(bytes).Tensors.Count, manifest);
    }
}

/// <summary>The run or round asked for has no committed checkpoint.</summary>
public sealed class ModelNotFoundException(string message) : Exception(message);
