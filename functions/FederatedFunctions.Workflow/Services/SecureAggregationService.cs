using System.Globalization;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Aggregates one secure-aggregation attempt: sums the silos' masked updates, decodes the sum, writes the model.</summary>
/// <remarks>
/// <para>
/// The aggregator never holds an individual update: each masked update is uniformly distributed on its own, and only
/// the sum over every silo of the attempt's key exchange is meaningful. Each masked update is read from its silo's
/// outbox, its size and SHA-256 checked against the reference in history, and its labels (silo, run, round, attempt,
/// key exchange) checked before it counts; the sum is accepted only inside the encoding's headroom, which a sum whose
/// masks did not cancel fails with overwhelming probability.
/// </para>
/// <para>
/// Called twice per attempt: first without reveals, to check the masked updates before any silo reveals its self-mask
/// (a refused update can still be redone without); then with every contributor's seed, to unmask the sum. The first
/// model written for a round is the one kept.
/// </para>
/// </remarks>
public sealed partial class SecureAggregationService(ICheckpointStore checkpoints, IUpdateStore updates, ILogger<SecureAggregationService> logger)
{
    /// <summary>Aggregates the attempt described by <paramref name="request"/>.</summary>
    /// <returns>The round's aggregate; or, when a masked update is missing or does not belong to the attempt, no aggregate and the refused silos.</returns>
    /// <exception cref="NoAcceptedUpdatesException">The sum does not decode: its masks did not cancel although every update was labelled for the attempt.</exception>
    public Task<SecureAggregateResult> AggregateAsync(SecureAggregateRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var scope = new AggregationScope(request.RunId, request.Round, request.Privacy.Mode, request.Reveals is null ? "check" : "sum", request.Masked.Count, request.Masked.Sum(m => m.Masked.Bytes));
        return FederatedTelemetry.AggregateAsync(scope, () => AggregateAttemptAsync(request, cancellationToken), r => (r.Aggregate?.Participants.Count ?? 0, r.Refused.Count));
    }

    private async Task<SecureAggregateResult> AggregateAttemptAsync(SecureAggregateRequest request, CancellationToken cancellationToken)
    {
        var strategy = StrategyCatalog.Create(request.Strategy, request.Privacy, maxNormRatio: null);
        var context = new MaskingContext(request.RunId, request.Round, request.Attempt);
        var keys = KeyExchanges.BySilo(request.KeyExchange, request.Attempt);
        var keyExchange = MaskedUpdateCodec.KeyExchangeSha256(keys);
        var attempt = new SecureAggregationAttempt(context, keys.Keys);
        var global = Safetensors.Parse(await checkpoints.ReadModelAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false)).Tensors;
        var length = MaskedUpdateCodec.VectorLength(global);
        var received = new List<MaskedUpdate>();
        var refused = new List<RejectedUpdate>();
        foreach (var masked in request.Masked.OrderBy(m => m.SiloId, StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (file, refusal) = await ReadMaskedAsync(updates, masked.SiloId, masked.Masked, context, keyExchange, length, cancellationToken).ConfigureAwait(false);
            if (file is null)
            {
                LogRefused(logger, request.RunId, request.Round, request.Attempt, refusal!.SiloId, refusal.Reason, refusal.Detail);
                refused.Add(refusal);
                continue;
            }

            received.Add(file.Update);
        }

        var outcome = attempt.Combine(received);
        if (outcome.Status != SecureAggregationStatus.Complete)
        {
            // The masks of the attempt cancel only when every silo of its key exchange contributes: the orchestrator
            // redoes the attempt without the refused silos, as after a dropout.
            return new SecureAggregateResult(null, refused);
        }

        if (request.Reveals is null)
        {
            // Checked only: every masked update of the attempt is here and intact, so the silos may reveal their self-masks.
            return new SecureAggregateResult(null, []);
        }

        var revealed = request.Reveals.Where(r => r.Attempt == request.Attempt).ToDictionary(r => r.SiloId, r => r.Seed, StringComparer.Ordinal);
        var seeds = new List<byte[]>();
        foreach (var silo in outcome.Contributors)
        {
            seeds.Add(revealed.TryGetValue(silo, out var seed)
                ? seed
                : throw new NoAcceptedUpdatesException($"Round {request.Round} of run '{request.RunId}', secure aggregation attempt {request.Attempt}: silo '{silo}' revealed no self-mask."));
        }

        var sum = outcome.Sum!;
        SiloMasking.RemoveSelfMasks(sum, seeds);
        var encoding = request.Encoding.ToFixedPoint();
        DecodedSum decoded;
        try
        {
            decoded = MaskedUpdateCodec.Decode(sum, global, encoding, request.ClipNorm);
        }
        catch (ArgumentException ex)
        {
            throw new NoAcceptedUpdatesException($"Round {request.Round} of run '{request.RunId}', secure aggregation attempt {request.Attempt}: {ex.Message}");
        }

        var dp = request.Privacy.DifferentialPrivacy;
        var contributors = outcome.Contributors.Count;
        IReadOnlyList<NamedTensor> result = decoded.Model;
        var metadata = AggregationService.ModelMetadata(request.RunId, request.Round, strategy.Name, dp);
        metadata["secure_aggregation_attempt"] = request.Attempt.ToString(CultureInfo.InvariantCulture);
        metadata["secure_aggregation_key_exchange_sha256"] = keyExchange;
        // With DP every silo weighs 1, so the decoded model is the global model plus the mean clipped change, and the
        // DP wrapper adds the noise to it.
        result = strategy.Release(result, global, contributors, Math.Max(request.Sampled, contributors));
        var (next, state) = await ServerStep.ApplyAsync(checkpoints, strategy, request.Container, request.RunId, request.Round, global, result, request.Frozen, request.StrategyState, firstWriterWins: true,
            new Dictionary<string, string> { ["secure_aggregation_key_exchange_sha256"] = keyExchange }, cancellationToken).ConfigureAwait(false);

        // First writer wins even without DP: a round's released sum is the one the run keeps, whatever a resumed run computes.
        var bytes = Safetensors.Serialize(next, metadata);
        var model = await checkpoints.PutModelAsync(request.Container, request.RunId, request.Round, bytes, firstWriterWins: true, cancellationToken).ConfigureAwait(false);
        if (model.Sha256 != Core.Hashing.Sha256Hex(bytes))
        {
            // Another execution wrote the round's model first: the same attempt (DP noise differs) is fine; another attempt
            // over other silos (a re-run whose first silos were unreachable) must not be recorded against that model.
            var kept = Safetensors.Parse(await checkpoints.ReadModelAsync(model, cancellationToken).ConfigureAwait(false));
            if (!kept.Metadata.TryGetValue("secure_aggregation_key_exchange_sha256", out var first) || first != keyExchange)
            {
                throw new NoAcceptedUpdatesException(
                    $"Round {request.Round} of run '{request.RunId}' already has a model from another secure-aggregation attempt, over other silos. " +
                    "Retry when the silos of that attempt are reachable, or start a new run with resumeFrom this run's latest committed round.");
            }
        }

        var hashes = request.Masked.ToDictionary(m => m.SiloId, m => m.Masked.Sha256, StringComparer.Ordinal);
        // No example count or weight per silo: the aggregator never learns them.
        var participants = outcome.Contributors.Select(s => new Participant(s, null, hashes[s], null)).ToArray();
        var eyesOff = request.Privacy.Mode == PrivacyModes.EyesOff;
        var maxExamples = request.Privacy.SecureAggregation?.MaxExamples ?? 1;
        FitSummary? fit = eyesOff
            ? contributors < request.Privacy.MinAggregateSilos ? null : new FitSummary(0, decoded.Loss)
            : new FitSummary(dp is null ? (long)Math.Round(decoded.TotalWeight * maxExamples) : 0, decoded.Loss);
        LogAggregated(logger, request.RunId, request.Round, request.Attempt, contributors, model.Sha256);
        return new SecureAggregateResult(new AggregateResult(model, participants, [], fit, state), []);
    }

    /// <summary>
    /// Reads one masked vector from its silo's outbox and checks it before it counts: its size and SHA-256 against the
    /// reference, its labels (silo, run, round, attempt, key exchange) and its length; a vector that fails is refused, with why.
    /// </summary>
    /// <remarks>Shared by training's masked updates and an analysis's masked partials.</remarks>
    public static async Task<(MaskedUpdateFile? File, RejectedUpdate? Refusal)> ReadMaskedAsync(IUpdateStore updates, string siloId, BlobRef blob, MaskingContext context, string keyExchange, int length, CancellationToken cancellationToken)
    {
        var (read, refusal) = await VerifiedReads.ReadAsync(updates, siloId, blob, cancellationToken).ConfigureAwait(false);
        if (read is not { } bytes)
        {
            return (null, refusal);
        }

        MaskedUpdateFile file;
        try
        {
            file = MaskedUpdateCodec.Parse(bytes);
        }
        catch (Exception ex) when (ex is SafetensorsFormatException or FormatException)
        {
            return (null, new RejectedUpdate(siloId, "malformed", ex.Message));
        }

        if (file.Update.SiloId != siloId || file.Update.Context != context || file.KeyExchangeSha256 != keyExchange)
        {
            return (null, new RejectedUpdate(siloId, "wrong-attempt", $"the masked vector is labelled for silo '{file.Update.SiloId}', round {file.Update.Context.Round}, attempt {file.Update.Context.Attempt} and another key exchange"));
        }

        if (file.Update.Values.Length != length)
        {
            return (null, new RejectedUpdate(siloId, "wrong-length", $"the masked vector has {file.Update.Values.Length} elements; {length} are expected"));
        }

        return (file, null);
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Run {RunId} round {Round} attempt {Attempt}: masked update from {SiloId} refused ({Reason}): {Detail}")]
    private static partial void LogRefused(ILogger logger, string runId, int round, int attempt, string siloId, string reason, string detail);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Run {RunId} round {Round}: securely aggregated attempt {Attempt} over {Contributors} silos; model {Sha256}")]
    private static partial void LogAggregated(ILogger logger, string runId, int round, int attempt, int contributors, string sha256);
}
