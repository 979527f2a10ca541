using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Silo;

/// <summary>The silo side of every step: train, evaluate, the key, mask and reveal steps of secure aggregation, and an analysis's passes.</summary>
/// <remarks>
/// <para>This runs inside the silo, with the silo's own credential, whatever the compute: in the orchestrator's process for
/// simulation, in a separate process, or in an Azure ML job on the provider's compute. It reads the silo's data, trains with
/// <see cref="LocalTrainer"/>, and writes what leaves the silo to its outbox under the deterministic names of
/// <see cref="BlobLayout"/>.</para>
/// <para>Every step is safe to run more than once (steps run at least once): updates, masked updates, reveal records and the
/// masking secret are written first-writer-wins, so a hash recorded in history always matches the stored blob, and a
/// re-executed step returns what the first execution wrote.</para>
/// <para>Eyes-off: the silo returns no count, loss or metric. Its count and loss travel inside the update at fixed width,
/// evaluation reports are padded to a fixed size, and a failure says only its category and a silo-side reference
/// (<see cref="SiloErrorGuard"/>). With secure aggregation, in either mode, neither the update nor the evaluation leaves
/// the silo: both are kept in its private area, and only their masked vectors are written to the outbox.</para>
/// </remarks>
public sealed class SiloProtocol(SiloDataCache cache)
{
    /// <summary>Size of an eyes-off evaluation report, whatever its values.</summary>
    public const int EvaluationReportBytes = 512;

    private readonly ConcurrentDictionary<string, byte[]> secrets = new(StringComparer.Ordinal);

    /// <summary>Runs one step in the silo whose storage is <paramref name="storage"/>.</summary>
    /// <exception cref="DataValidationException">The silo's data is invalid (not worth retrying).</exception>
    /// <exception cref="ArgumentException">The step names another silo than the storage's.</exception>
    public Task<SiloStepResult> RunAsync(ISiloStorage storage, SiloStep step, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(step);
        if (step.SiloId != storage.SiloId)
        {
            throw new ArgumentException($"The step is for silo '{step.SiloId}', not '{storage.SiloId}'.", nameof(step));
        }

        return SiloErrorGuard.GuardAsync(storage, step, () => step.Kind switch
        {
            SiloStepKinds.Train => TrainAsync(storage, step.Train!, cancellationToken),
            SiloStepKinds.Evaluate => EvaluateAsync(storage, step.Evaluate!, cancellationToken),
            SiloStepKinds.Key => PublishKeyAsync(storage, step.Key!, cancellationToken),
            SiloStepKinds.Mask => MaskAsync(storage, step.Mask!, cancellationToken),
            SiloStepKinds.Analyze => SiloAnalysisStep.RunAsync(storage, step.Analyze!, vector => MaskVectorAsync(storage, step.SiloId, step.Round, step.Analyze!.Masking!, vector, cancellationToken), cancellationToken),
            _ => RevealAsync(storage, step.Reveal!, cancellationToken),
        }, cancellationToken);
    }

    private async Task<SiloStepResult> TrainAsync(ISiloStorage storage, TrainRequest request, CancellationToken cancellationToken)
    {
        if (request.Virtual is { } batch)
        {
            return await SiloVirtualTraining.TrainAsync(cache, storage, request, batch, cancellationToken).ConfigureAwait(false);
        }

        var (data, global) = await cache.ReadWithModelAsync(storage, request.Data, request.Data.Train, request.Inputs, request.GlobalModel, cancellationToken).ConfigureAwait(false);
        var script = request.Script is { } file ? await storage.ReadOrchestratorBlobAsync(file, cancellationToken).ConfigureAwait(false) : null;
        var result = LocalTrainer.Train(request.Model, request.Training, request.Data.Classes, global, data, request.Round, request.SiloId, cancellationToken, request.Fit?.ProximalMu ?? 0, script);
        var eyesOff = request.Privacy == PrivacyModes.EyesOff;

        // Eyes-off: the example count and loss go to the aggregator inside the update, never to the orchestrator.
        // Secure aggregation: they stay in the silo with the update, for the silo's own masking step.
        var bytes = Safetensors.Serialize(result.State, eyesOff || request.SecureAggregation
            ? new Dictionary<string, string>
            {
                // Fixed width, so that the update's size (recorded in history) says nothing about the values.
                [UpdateMetadata.Examples] = result.Examples.ToString("D19", CultureInfo.InvariantCulture),
                [UpdateMetadata.Loss] = UpdateMetadata.FormatLoss(result.Loss),
            }
            : null);

        // Secure aggregation: the update stays in the private area, which the aggregator cannot read.
        var (area, path) = request.SecureAggregation
            ? (SiloArea.Private, BlobLayout.SiloPrivateUpdate(request.RunId, request.Round))
            : (SiloArea.Outbox, BlobLayout.SiloUpdate(request.RunId, request.Round));
        var resultPath = BlobLayout.SiloResult(request.RunId, request.Round);

        // First writer wins: a re-executed step must not replace an update whose hash may already be recorded, even if this
        // execution's bytes differ (another CPU, another thread count).
        if (await storage.WriteIfAbsentAsync(area, path, bytes, cancellationToken).ConfigureAwait(false) is { } existing)
        {
            var first = new BlobRef(storage.Uri(area, path), Hashing.Sha256Hex(existing), existing.Length);
            if (await storage.ReadAsync(SiloArea.Outbox, resultPath, cancellationToken).ConfigureAwait(false) is { } recordedBytes
                && JsonSerializer.Deserialize<SiloUpdate>(recordedBytes, JsonDefaults.Documents) is { } recorded && recorded.Update == first)
            {
                return new SiloStepResult(Update: eyesOff ? recorded with { Examples = null, Loss = null, Metrics = null } : recorded);
            }

            bytes = existing;
        }

        var update = new BlobRef(storage.Uri(area, path), Hashing.Sha256Hex(bytes), bytes.Length);
        var siloResult = eyesOff
            ? new SiloUpdate(request.SiloId, request.Round, update, null, null, null)
            : new SiloUpdate(request.SiloId, request.Round, update, result.Examples, result.Loss, result.Metrics);
        await storage.WriteAsync(SiloArea.Outbox, resultPath, JsonSerializer.SerializeToUtf8Bytes(siloResult, JsonDefaults.Documents), cancellationToken).ConfigureAwait(false);
        return new SiloStepResult(Update: siloResult);
    }

    private async Task<SiloStepResult> EvaluateAsync(ISiloStorage storage, EvaluateRequest request, CancellationToken cancellationToken)
    {
        if (request.Masking is { } masking)
        {
            // Secure aggregation: the evaluation stays in the silo; only its masked vector leaves, for the round's secure sum.
            var kept = await KeptEvaluationAsync(storage, request, cancellationToken).ConfigureAwait(false);
            return await MaskVectorAsync(storage, request.SiloId, request.Round, masking, SecureEvaluationVector.Encode(kept), cancellationToken).ConfigureAwait(false);
        }

        var outcome = await ScoreAsync(storage, request, cancellationToken).ConfigureAwait(false);
        if (request.Privacy != PrivacyModes.EyesOff)
        {
            return new SiloStepResult(Evaluation: new SiloEvaluation(request.SiloId, outcome, null));
        }

        // Eyes-off: the metrics stay in the silo's outbox, for the evaluation summary to aggregate over enough silos.
        // Padded with trailing whitespace (still valid JSON) to a fixed size, so that its size reveals nothing.
        var bytes = JsonPadding.To(JsonSerializer.SerializeToUtf8Bytes(outcome, JsonDefaults.Documents), EvaluationReportBytes);
        var path = BlobLayout.SiloEvaluation(request.RunId, request.Round);
        await storage.WriteAsync(SiloArea.Outbox, path, bytes, cancellationToken).ConfigureAwait(false);
        return new SiloStepResult(Evaluation: new SiloEvaluation(request.SiloId, null, new BlobRef(storage.Uri(SiloArea.Outbox, path), Hashing.Sha256Hex(bytes), bytes.Length)));
    }

    private async Task<EvaluateOutcome> ScoreAsync(ISiloStorage storage, EvaluateRequest request, CancellationToken cancellationToken)
    {
        var (data, state) = await cache.ReadWithModelAsync(storage, request.Data, request.Data.Test, request.Inputs, request.Model, cancellationToken).ConfigureAwait(false);
        var script = request.Script is { } file ? await storage.ReadOrchestratorBlobAsync(file, cancellationToken).ConfigureAwait(false) : null;
        var result = LocalTrainer.Evaluate(request.ModelSpec, request.Data.Classes, state, data, cancellationToken, script);
        return new EvaluateOutcome(request.SiloId, result.Examples, result.Loss, result.Correct);
    }

    // The silo's evaluation of the round's model, kept in its private area: scored once, and masked from there for every
    // attempt of the round's secure sum, so that each attempt sums the same values. A kept evaluation of another model
    // (the round's model is first-writer-wins, so only a run id used again) is scored afresh.
    private async Task<EvaluateOutcome> KeptEvaluationAsync(ISiloStorage storage, EvaluateRequest request, CancellationToken cancellationToken)
    {
        var path = BlobLayout.SiloPrivateEvaluation(request.RunId, request.Round);
        if (await storage.ReadAsync(SiloArea.Private, path, cancellationToken).ConfigureAwait(false) is { } bytes
            && JsonSerializer.Deserialize<KeptEvaluation>(bytes, JsonDefaults.Documents) is { } kept && kept.Model == request.Model.Sha256 && kept.Outcome.SiloId == request.SiloId)
        {
            return kept.Outcome;
        }

        var outcome = await ScoreAsync(storage, request, cancellationToken).ConfigureAwait(false);
        await storage.WriteAsync(SiloArea.Private, path, JsonSerializer.SerializeToUtf8Bytes(new KeptEvaluation(request.Model.Sha256, outcome), JsonDefaults.Documents), cancellationToken).ConfigureAwait(false);
        return outcome;
    }

    private sealed record KeptEvaluation(string Model, EvaluateOutcome Outcome);

    private async Task<SiloStepResult> PublishKeyAsync(ISiloStorage storage, MaskingKeyRequest request, CancellationToken cancellationToken)
    {
        var secret = await MaskingSecretAsync(storage, cancellationToken).ConfigureAwait(false);
        var key = SiloMasking.PublicKey(secret, request.SiloId, new MaskingContext(request.RunId, request.Round, request.Attempt));
        var revealed = await RevealedAttemptAsync(storage, request.RunId, request.Round, cancellationToken).ConfigureAwait(false);
        return new SiloStepResult(Key: new MaskingPublicKey(request.SiloId, request.Attempt, key, revealed));
    }

    private async Task<SiloStepResult> MaskAsync(ISiloStorage storage, MaskUpdateRequest request, CancellationToken cancellationToken)
    {
        var keptPath = BlobLayout.SiloPrivateUpdate(request.RunId, request.Round);
        if (request.Update.Uri != storage.Uri(SiloArea.Private, keptPath))
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}' keeps its round {request.Round} update at {storage.Uri(SiloArea.Private, keptPath)}, not {request.Update.Uri}.");
        }

        var kept = await storage.ReadAsync(SiloArea.Private, keptPath, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Silo '{request.SiloId}' has no kept update for round {request.Round}.");
        var global = await storage.ReadOrchestratorBlobAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false);
        var secret = await MaskingSecretAsync(storage, cancellationToken).ConfigureAwait(false);
        var revealed = await RevealedAttemptAsync(storage, request.RunId, request.Round, cancellationToken).ConfigureAwait(false);
        var masked = SiloMaskingStep.Mask(request, kept, global, secret, revealed);

        // One masked update per attempt: a mask is a one-time pad, so a second vector masked for the same attempt (with
        // another key exchange) would let the two be subtracted. A re-execution with the same key exchange gets the first.
        var path = BlobLayout.SiloMaskedUpdate(request.RunId, request.Round, request.Attempt);
        if (await storage.WriteIfAbsentAsync(SiloArea.Outbox, path, masked, cancellationToken).ConfigureAwait(false) is { } existing)
        {
            masked = SiloMaskingStep.KeepFirst(request, masked, existing);
        }

        return new SiloStepResult(Masked: new MaskedUpdateRef(request.SiloId, request.Round, request.Attempt, new BlobRef(storage.Uri(SiloArea.Outbox, path), Hashing.Sha256Hex(masked), masked.Length)));
    }

    // A vector of a secure sum (an analysis pass's encoded partial, a round's evaluation), masked for the attempt and
    // written where the reveal step looks for it; a masked vector already written for the attempt is kept (one vector per
    // attempt), as for training updates.
    private async Task<SiloStepResult> MaskVectorAsync(ISiloStorage storage, string siloId, int round, MaskingAttempt masking, uint[] vector, CancellationToken cancellationToken)
    {
        var context = new MaskingContext(masking.MaskingRun, round, masking.Attempt);
        if (await RevealedAttemptAsync(storage, masking.MaskingRun, round, cancellationToken).ConfigureAwait(false) is { } revealed && revealed != masking.Attempt)
        {
            throw new InvalidOperationException($"Silo '{siloId}' revealed its self-mask for attempt {revealed} of {masking.MaskingRun} round {round}; it masks for no other attempt of that round.");
        }

        var secret = await MaskingSecretAsync(storage, cancellationToken).ConfigureAwait(false);
        var masked = SiloMasking.MaskVector(secret, siloId, context, KeyExchanges.BySilo(masking.KeyExchange, masking.Attempt), vector);
        var path = BlobLayout.SiloMaskedUpdate(masking.MaskingRun, round, masking.Attempt);
        if (await storage.WriteIfAbsentAsync(SiloArea.Outbox, path, masked, cancellationToken).ConfigureAwait(false) is { } existing)
        {
            masked = SiloMaskingStep.KeepFirst(siloId, context, masking.KeyExchange, masked, existing);
        }

        return new SiloStepResult(Masked: new MaskedUpdateRef(siloId, round, masking.Attempt, new BlobRef(storage.Uri(SiloArea.Outbox, path), Hashing.Sha256Hex(masked), masked.Length)));
    }

    private async Task<SiloStepResult> RevealAsync(ISiloStorage storage, RevealSelfMaskRequest request, CancellationToken cancellationToken)
    {
        var secret = await MaskingSecretAsync(storage, cancellationToken).ConfigureAwait(false);
        var masked = await storage.GetVersionAsync(SiloArea.Outbox, BlobLayout.SiloMaskedUpdate(request.RunId, request.Round, request.Attempt), cancellationToken).ConfigureAwait(false) is not null;
        var revealed = await RevealedAttemptAsync(storage, request.RunId, request.Round, cancellationToken).ConfigureAwait(false);
        var seed = SiloMaskingStep.Reveal(request, secret, masked, revealed);

        // Record the attempt before the seed leaves, first writer wins; a concurrent reveal for another attempt loses.
        if (await storage.WriteIfAbsentAsync(SiloArea.Private, BlobLayout.SiloRevealedAttempt(request.RunId, request.Round), SiloMaskingStep.FormatRevealed(request.Attempt), cancellationToken).ConfigureAwait(false) is { } existing)
        {
            seed = SiloMaskingStep.Reveal(request, secret, masked, SiloMaskingStep.ParseRevealed(existing));
        }

        return new SiloStepResult(Reveal: new SelfMaskReveal(request.SiloId, request.Attempt, seed));
    }

    private static async Task<int?> RevealedAttemptAsync(ISiloStorage storage, string runId, int round, CancellationToken cancellationToken) =>
        await storage.ReadAsync(SiloArea.Private, BlobLayout.SiloRevealedAttempt(runId, round), cancellationToken).ConfigureAwait(false) is { } record
            ? SiloMaskingStep.ParseRevealed(record)
            : null;

    // The silo's masking secret: 32 random bytes created on first use, first writer wins, kept in the private area. It
    // never changes, so it is read once per silo, not once per key, mask and reveal.
    private async Task<byte[]> MaskingSecretAsync(ISiloStorage storage, CancellationToken cancellationToken)
    {
        var where = storage.Uri(SiloArea.Private, BlobLayout.SiloMaskingSecret);
        if (secrets.TryGetValue(where, out var known))
        {
            return known;
        }

        var secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(MaskingKeys.MinSecretBytes);
        var kept = await storage.WriteIfAbsentAsync(SiloArea.Private, BlobLayout.SiloMaskingSecret, secret, cancellationToken).ConfigureAwait(false) ?? secret;
        return secrets.GetOrAdd(where, kept);
    }
}
