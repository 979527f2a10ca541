using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>Silo compute on this machine: TorchSharp training on data read with the silo's own credential.</summary>
/// <remarks>
/// This is the simulation backend ("many silos on one machine"). It reads the silo's split from the silo's
/// container through <see cref="ISiloRegistry"/>, trains with <see cref="LocalTrainer"/>, and writes the update and
/// a small <c>result.json</c> to the silo's outbox under deterministic names. Parsed splits are cached per blob ETag,
/// so a changed file is re-read. Training is deterministic, so a retried call writes identical bytes.
/// </remarks>
public sealed class LocalTorchSiloBackend(ISiloRegistry registry) : ISiloBackend
{
    /// <summary>Size of an eyes-off evaluation report, whatever its values.</summary>
    public const int EvaluationReportBytes = 512;

    private readonly ConcurrentDictionary<(string Silo, string Path, string ETag, string Schema), TabularData> cache = new();
    private readonly ConcurrentDictionary<Uri, ReadOnlyMemory<byte>> secrets = new();

    /// <inheritdoc />
    public Task<SiloUpdate> TrainAsync(TrainRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SiloErrors.GuardAsync(registry, request.Privacy, request.RunId, request.Round, request.SiloId, "train", () => TrainCoreAsync(request, globalModel, cancellationToken), cancellationToken);
    }

    private async Task<SiloUpdate> TrainCoreAsync(TrainRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        var container = registry.GetContainer(request.SiloId);
        var data = await ReadSplitAsync(container, request.SiloId, request.Data, request.Data.Train, request.Inputs, cancellationToken).ConfigureAwait(false);
        var global = Safetensors.Parse(globalModel).Tensors;

        var result = LocalTrainer.Train(request.Model, request.Training, request.Data.Classes, global, data, request.Round, request.SiloId, cancellationToken);
        var eyesOff = request.Privacy == PrivacyModes.EyesOff;

        // Eyes-off: the example count and loss go to the aggregator inside the update, never to the orchestrator.
        // Secure aggregation: they stay in the silo with the update, for the silo's own masking step.
        var bytes = Safetensors.Serialize(result.State, eyesOff || request.SecureAggregation
            ? new Dictionary<string, string>
            {
                // Fixed width, so that the update's size (recorded in history) says nothing about the values.
                [UpdateMetadata.Examples] = result.Examples.ToString("D19", System.Globalization.CultureInfo.InvariantCulture),
                [UpdateMetadata.Loss] = UpdateMetadata.FormatLoss(result.Loss),
            }
            : null);
        var sha = Hashing.Sha256Hex(bytes);

        // Secure aggregation: the update stays outside the outbox, where the aggregator's reads are refused.
        var updateBlob = container.GetBlobClient(request.SecureAggregation ? BlobLayout.SiloPrivateUpdate(request.RunId, request.Round) : BlobLayout.SiloUpdate(request.RunId, request.Round));
        var resultBlob = container.GetBlobClient(BlobLayout.SiloResult(request.RunId, request.Round));
        // First writer wins: a re-executed activity (at-least-once delivery) must not replace an update whose
        // hash may already be recorded, even if this execution's bytes differ (another CPU, another thread count).
        if (await BlobWrites.UploadIfAbsentAsync(updateBlob, bytes, cancellationToken).ConfigureAwait(false) is { } existing)
        {
            var first = new BlobRef(BlobCheckpointStore.PlainUri(updateBlob), Hashing.Sha256Hex(existing.Span), existing.Length);
            var recorded = await ReadResultAsync(resultBlob, cancellationToken).ConfigureAwait(false);
            if (recorded is not null && recorded.Update == first)
            {
                return eyesOff ? recorded with { Examples = null, Loss = null, Metrics = null } : recorded;
            }

            bytes = existing.ToArray();
            sha = first.Sha256;
        }

        var update = new BlobRef(BlobCheckpointStore.PlainUri(updateBlob), sha, bytes.Length);
        var siloResult = eyesOff
            ? new SiloUpdate(request.SiloId, request.Round, update, null, null, null)
            : new SiloUpdate(request.SiloId, request.Round, update, result.Examples, result.Loss, result.Metrics);
        await resultBlob.UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(siloResult, JsonDefaults.Documents)), overwrite: true, cancellationToken).ConfigureAwait(false);
        return siloResult;
    }

    /// <inheritdoc />
    public Task<SiloEvaluation> EvaluateAsync(EvaluateRequest request, ReadOnlyMemory<byte> model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SiloErrors.GuardAsync(registry, request.Privacy, request.RunId, request.Round, request.SiloId, "evaluate", () => EvaluateCoreAsync(request, model, cancellationToken), cancellationToken);
    }

    private async Task<SiloEvaluation> EvaluateCoreAsync(EvaluateRequest request, ReadOnlyMemory<byte> model, CancellationToken cancellationToken)
    {
        var container = registry.GetContainer(request.SiloId);
        var data = await ReadSplitAsync(container, request.SiloId, request.Data, request.Data.Test, request.Inputs, cancellationToken).ConfigureAwait(false);
        var state = Safetensors.Parse(model).Tensors;
        var result = LocalTrainer.Evaluate(request.ModelSpec, request.Data.Classes, state, data, cancellationToken);
        var outcome = new EvaluateOutcome(request.SiloId, result.Examples, result.Loss, result.Correct);
        if (request.Privacy != PrivacyModes.EyesOff)
        {
            return new SiloEvaluation(request.SiloId, outcome, null);
        }

        // Eyes-off: the metrics stay in the silo's outbox, for the evaluation summary to aggregate over enough silos.
        // Padded with trailing whitespace (still valid JSON) to a fixed size, so that its size reveals nothing.
        var json = JsonSerializer.SerializeToUtf8Bytes(outcome, JsonDefaults.Documents);
        var bytes = new byte[Math.Max(EvaluationReportBytes, json.Length)];
        json.CopyTo(bytes, 0);
        bytes.AsSpan(json.Length).Fill((byte)' ');
        var blob = container.GetBlobClient(BlobLayout.SiloEvaluation(request.RunId, request.Round));
        await blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true, cancellationToken).ConfigureAwait(false);
        return new SiloEvaluation(request.SiloId, null, new BlobRef(BlobCheckpointStore.PlainUri(blob), Hashing.Sha256Hex(bytes), bytes.Length));
    }

    /// <inheritdoc />
    public Task<MaskingPublicKey> PublishMaskingKeyAsync(MaskingKeyRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SiloErrors.GuardAsync(registry, request.Privacy, request.RunId, request.Round, request.SiloId, "key-exchange", async () =>
        {
            var container = registry.GetContainer(request.SiloId);
            var secret = await MaskingSecretAsync(container, cancellationToken).ConfigureAwait(false);
            var key = SiloMasking.PublicKey(secret.Span, request.SiloId, new MaskingContext(request.RunId, request.Round, request.Attempt));
            return new MaskingPublicKey(request.SiloId, request.Attempt, key, await RevealedAttemptAsync(container, request.RunId, request.Round, cancellationToken).ConfigureAwait(false));
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<MaskedUpdateRef> MaskUpdateAsync(MaskUpdateRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SiloErrors.GuardAsync(registry, request.Privacy, request.RunId, request.Round, request.SiloId, "mask", () => MaskCoreAsync(request, globalModel, cancellationToken), cancellationToken);
    }

    private async Task<MaskedUpdateRef> MaskCoreAsync(MaskUpdateRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        var container = registry.GetContainer(request.SiloId);
        var kept = container.GetBlobClient(BlobLayout.SiloPrivateUpdate(request.RunId, request.Round));
        if (request.Update.Uri != BlobCheckpointStore.PlainUri(kept))
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}' keeps its round {request.Round} update at {BlobCheckpointStore.PlainUri(kept)}, not {request.Update.Uri}.");
        }

        ReadOnlyMemory<byte> bytes;
        try
        {
            bytes = (await kept.DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToMemory();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}' has no kept update for round {request.Round}.", ex);
        }

        var secret = await MaskingSecretAsync(container, cancellationToken).ConfigureAwait(false);
        var revealed = await RevealedAttemptAsync(container, request.RunId, request.Round, cancellationToken).ConfigureAwait(false);
        var masked = SiloMaskingStep.Mask(request, bytes, globalModel, secret.Span, revealed);

        // One masked update per attempt: a mask is a one-time pad, so a second vector masked for the same attempt
        // (with another key exchange) would let the two be subtracted. A re-execution with the same key exchange gets the first.
        var blob = container.GetBlobClient(BlobLayout.SiloMaskedUpdate(request.RunId, request.Round, request.Attempt));
        if (await BlobWrites.UploadIfAbsentAsync(blob, masked, cancellationToken).ConfigureAwait(false) is { } existing)
        {
            masked = SiloMaskingStep.KeepFirst(request, masked, existing);
        }

        return new MaskedUpdateRef(request.SiloId, request.Round, request.Attempt, new BlobRef(BlobCheckpointStore.PlainUri(blob), Hashing.Sha256Hex(masked), masked.Length));
    }

    /// <inheritdoc />
    public Task<SelfMaskReveal> RevealSelfMaskAsync(RevealSelfMaskRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SiloErrors.GuardAsync(registry, request.Privacy, request.RunId, request.Round, request.SiloId, "reveal", async () =>
        {
            var container = registry.GetContainer(request.SiloId);
            var secret = await MaskingSecretAsync(container, cancellationToken).ConfigureAwait(false);
            var masked = (await container.GetBlobClient(BlobLayout.SiloMaskedUpdate(request.RunId, request.Round, request.Attempt)).ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
            var revealed = await RevealedAttemptAsync(container, request.RunId, request.Round, cancellationToken).ConfigureAwait(false);
            var seed = SiloMaskingStep.Reveal(request, secret.Span, masked, revealed);
            // Record the attempt before the seed leaves, first writer wins; a concurrent reveal for another attempt loses.
            var record = container.GetBlobClient(BlobLayout.SiloRevealedAttempt(request.RunId, request.Round));
            if (await BlobWrites.UploadIfAbsentAsync(record, SiloMaskingStep.FormatRevealed(request.Attempt), cancellationToken).ConfigureAwait(false) is { } existing)
            {
                seed = SiloMaskingStep.Reveal(request, secret.Span, masked, SiloMaskingStep.ParseRevealed(existing.Span));
            }

            return new SelfMaskReveal(request.SiloId, request.Attempt, seed);
        }, cancellationToken);
    }

    private static async Task<int?> RevealedAttemptAsync(BlobContainerClient container, string runId, int round, CancellationToken cancellationToken)
    {
        try
        {
            var content = (await container.GetBlobClient(BlobLayout.SiloRevealedAttempt(runId, round)).DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content;
            return SiloMaskingStep.ParseRevealed(content.ToMemory().Span);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    // The silo's masking secret: 32 random bytes created on first use, first writer wins, kept outside the outbox. It
    // never changes, so it is read once per silo container, not once per key, mask and reveal.
    private async Task<ReadOnlyMemory<byte>> MaskingSecretAsync(BlobContainerClient container, CancellationToken cancellationToken)
    {
        if (secrets.TryGetValue(container.Uri, out var known))
        {
            return known;
        }

        var secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(MaskingKeys.MinSecretBytes);
        var blob = container.GetBlobClient(BlobLayout.SiloMaskingSecret);
        var kept = await BlobWrites.UploadIfAbsentAsync(blob, secret, cancellationToken).ConfigureAwait(false) ?? secret;
        return secrets.GetOrAdd(container.Uri, kept);
    }

    private static async Task<SiloUpdate?> ReadResultAsync(BlobClient blob, CancellationToken cancellationToken)
    {
        try
        {
            return (await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value.Content.ToObjectFromJson<SiloUpdate>(JsonDefaults.Documents);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    private async Task<TabularData> ReadSplitAsync(BlobContainerClient container, string siloId, DataSpec spec, string path, int inputs, CancellationToken cancellationToken)
    {
        var blob = container.GetBlobClient(path);
        string etag;
        try
        {
            etag = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Value.ETag.ToString();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new DataValidationException(siloId, path, "the data file does not exist in the silo's container");
        }

        // The parsed table depends on the schema as much as on the file.
        var schema = $"{spec.Format}|{spec.Label}|{spec.Classes}|{inputs}|{string.Join(",", spec.Features ?? [])}";
        var key = (siloId, path, etag, schema);
        if (cache.TryGetValue(key, out var cached))
        {
            return cached;
        }

        await using var stream = await blob.OpenReadAsync(new Azure.Storage.Blobs.Models.BlobOpenReadOptions(allowModifications: false), cancellationToken).ConfigureAwait(false);
        TabularData data;
        try
        {
            data = await TabularReader.ReadAsync(stream, spec, inputs, siloId, cancellationToken).ConfigureAwait(false);
        }
        catch (DataValidationException ex)
        {
            // The reader knows the column and row; the error also names the file, since a silo has a train and a test split.
            throw new DataValidationException(siloId, $"{path} {ex.Field}", ex.Problem, ex);
        }

        foreach (var stale in cache.Keys.Where(k => k.Silo == siloId && k.Path == path))
        {
            cache.TryRemove(stale, out _);
        }

        cache[key] = data;
        return data;
    }
}
