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
        var keyExchange = MaskedUpdateCodec.KeyExchangeSha256(KeyExchanges.BySilo(request.KeyExchange, request.Attempt));
        var global = Safetensors.Parse(await checkpoints.ReadModelAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false)).Tensors;
        var masked = await MaskedSums.SumAsync(
            updates, context, request.KeyExchange, request.Masked.Select(m => (m.SiloId, m.Masked)), MaskedUpdateCodec.VectorLength(global), request.Reveals, "masked update", cancellationToken).ConfigureAwait(false);
        foreach (var refusal in masked.Refused)
        {
            LogRefused(logger, request.RunId, request.Round, request.Attempt, refusal.SiloId, refusal.Reason, refusal.Detail);
        }

        if (masked.Refused.FirstOrDefault(r => r.Reason == "not-revealed") is { } unrevealed)
        {
            throw new NoAcceptedUpdatesException($"Round {request.Round} of run '{request.RunId}', secure aggregation attempt {request.Attempt}: silo '{unrevealed.SiloId}' revealed no self-mask.");
        }

        if (masked.Sum is not { } sum)
        {
            // Refused: the orchestrator redoes the attempt without the refused silos, as after a dropout. Or checked only:
            // every masked update of the attempt is here and intact, so the silos may reveal their self-masks.
            return new SecureAggregateResult(null, masked.Refused);
        }

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
        var contributors = masked.Contributors.Count;
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
        var participants = masked.Contributors.Select(s => new Participant(s, null, hashes[s], null)).ToArray();
        var eyesOff = request.Privacy.Mode == PrivacyModes.EyesOff;
        var maxExamples = request.Privacy.SecureAggregation?.MaxExamples ?? 1;
        FitSummary? fit = eyesOff
            ? contributors < request.Privacy.MinAggregateSilos ? null : new FitSummary(0, decoded.Loss)
            : new FitSummary(dp is null ? (long)Math.Round(decoded.TotalWeight * maxExamples) : 0, decoded.Loss);
        LogAggregated(logger, request.RunId, request.Round, request.Attempt, contributors, model.Sha256);
        return new SecureAggregateResult(new AggregateResult(model, participants, [], fit, state), []);
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Run {RunId} round {Round} attempt {Attempt}: masked update from {SiloId} refused ({Reason}): {Detail}")]
    private static partial void LogRefused(ILogger logger, string runId, int round, int attempt, string siloId, string reason, string detail);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Run {RunId} round {Round}: securely aggregated attempt {Attempt} over {Contributors} silos; model {Sha256}")]
    private static partial void LogAggregated(ILogger logger, string runId, int round, int attempt, int contributors, string sha256);
}
