using System.Globalization;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Aggregates one round: checks every update, streams the accepted ones into one accumulator, writes the model.</summary>
/// <remarks>
/// Updates are read one at a time, in silo-id order, so the result is bit-identical for the same inputs and
/// peak memory is about one accumulator, one template and one update, whatever the number of silos.
/// An update is checked completely (size, SHA-256, format, keys, shapes, dtypes, finiteness) before it counts, and, when the
/// spec sets <c>robustness.maxNormRatio</c>, screened by <see cref="NormScreen"/> in a first pass over the round's updates;
/// a refused update is returned with its reason, never dropped silently.
/// </remarks>
public sealed partial class AggregationService(ICheckpointStore checkpoints, IUpdateStore updates, ILogger<AggregationService> logger)
{
    /// <summary>Aggregates the round described by <paramref name="request"/>.</summary>
    /// <exception cref="NoAcceptedUpdatesException">Every update was refused.</exception>
    public async Task<AggregateResult> AggregateAsync(AggregateRequest request, CancellationToken cancellationToken)
    {
        var strategy = StrategyFactory.Create(new Core.Specs.StrategySpec { Name = request.Strategy });
        var rejected = new List<RejectedUpdate>();
        var candidates = new List<SiloUpdate>();
        foreach (var u in request.Updates.OrderBy(u => u.SiloId, StringComparer.Ordinal))
        {
            if (u.Round != request.Round)
            {
                rejected.Add(new RejectedUpdate(u.SiloId, "wrong-round", $"update is for round {u.Round}, not {request.Round}"));
            }
            else if (u.Examples <= 0)
            {
                rejected.Add(new RejectedUpdate(u.SiloId, "bad-example-count", $"example count {u.Examples} is not positive"));
            }
            else if (candidates.Any(c => c.SiloId == u.SiloId))
            {
                rejected.Add(new RejectedUpdate(u.SiloId, "duplicate", "a second update from the same silo"));
            }
            else
            {
                candidates.Add(u);
            }
        }

        StreamingAggregator aggregator;
        {
            // The global model is needed as a template, and by the norm screen as the point distances are taken from;
            // its bytes go out of scope before the aggregating pass reads any update.
            var global = Safetensors.Parse(await checkpoints.ReadModelAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false)).Tensors;
            aggregator = new StreamingAggregator(global);
            if (request.MaxNormRatio is { } ratio && candidates.Count >= NormScreen.MinUpdates)
            {
                candidates = await ScreenNormsAsync(request, aggregator, global, candidates, ratio, rejected, cancellationToken).ConfigureAwait(false);
            }
        }

        IReadOnlyList<double> weights = candidates.Count == 0
            ? []
            : strategy.AggregationWeights(candidates.Select(c => new FitOutcome(c.SiloId, c.Examples, c.Loss)).ToArray());

        using (aggregator)
        {
            var accepted = new List<SiloUpdate>();
            for (var i = 0; i < candidates.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var candidate = candidates[i];
                var refusal = await TryAddAsync(aggregator, candidate, weights[i], cancellationToken).ConfigureAwait(false);
                if (refusal is null)
                {
                    accepted.Add(candidate);
                }
                else
                {
                    LogRejected(logger, request.RunId, request.Round, candidate.SiloId, refusal.Reason, refusal.Detail);
                    rejected.Add(refusal);
                }
            }

            if (accepted.Count == 0 || accepted.Count < request.MinAccepted)
            {
                var what = accepted.Count == 0 ? "no update to aggregate" : $"only {accepted.Count} accepted update(s), below the minimum of {request.MinAccepted}";
                throw new NoAcceptedUpdatesException(
                    $"Round {request.Round} of run '{request.RunId}' has {what}: " +
                    (rejected.Count == 0 ? "no silo reported one." : string.Join("; ", rejected.Select(r => $"{r.SiloId}: {r.Reason} ({r.Detail})"))));
            }

            var metadata = new Dictionary<string, string>
            {
                ["run_id"] = request.RunId,
                ["round"] = request.Round.ToString(CultureInfo.InvariantCulture),
                ["strategy"] = strategy.Name,
            };
            var bytes = Safetensors.Serialize(aggregator.Result(), metadata);
            var model = await checkpoints.PutModelAsync(request.Container, request.RunId, request.Round, bytes, cancellationToken).ConfigureAwait(false);

            var fits = accepted.Select(a => new FitOutcome(a.SiloId, a.Examples, a.Loss)).ToArray();
            var finalWeights = strategy.AggregationWeights(fits);
            var participants = accepted.Select((a, i) => new Participant(a.SiloId, a.Examples, a.Update.Sha256, finalWeights[i])).ToArray();
            LogAggregated(logger, request.RunId, request.Round, participants.Length, rejected.Count, model.Sha256);
            return new AggregateResult(model, participants, rejected, strategy.AggregateFit(fits));
        }
    }

    // The screening pass: every update is read and checked once, its distance from the global model measured, and the
    // outliers refused. The aggregating pass reads the survivors again and checks them again, so an update changed
    // between the two reads is refused rather than aggregated unscreened; peak memory stays one update.
    private async Task<List<SiloUpdate>> ScreenNormsAsync(
        AggregateRequest request, StreamingAggregator aggregator, IReadOnlyList<NamedTensor> global, List<SiloUpdate> candidates, double ratio, List<RejectedUpdate> rejected, CancellationToken cancellationToken)
    {
        var measured = new List<(SiloUpdate Update, double Distance)>();
        foreach (var candidate in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (file, refusal) = await ReadCheckedAsync(candidate, cancellationToken).ConfigureAwait(false);
            var check = file is null ? null : aggregator.Validate(file.Tensors);
            refusal ??= check is { Accepted: false } ? new RejectedUpdate(candidate.SiloId, check.Reason ?? "invalid", check.Detail ?? "rejected by the aggregator") : null;
            if (refusal is not null)
            {
                LogRejected(logger, request.RunId, request.Round, candidate.SiloId, refusal.Reason, refusal.Detail);
                rejected.Add(refusal);
                continue;
            }

            measured.Add((candidate, TensorMath.L2Distance(file!.Tensors, global)));
        }

        var outliers = NormScreen.Outliers(measured.Select(m => m.Distance).ToArray(), ratio, out var median);
        var kept = new List<SiloUpdate>();
        for (var i = 0; i < measured.Count; i++)
        {
            if (!outliers[i])
            {
                kept.Add(measured[i].Update);
                continue;
            }

            var refusal = new RejectedUpdate(
                measured[i].Update.SiloId,
                "norm-outlier",
                string.Create(CultureInfo.InvariantCulture, $"update moved {measured[i].Distance / median:0.##} times the round's median distance from the global model (limit {ratio})"));
            LogRejected(logger, request.RunId, request.Round, refusal.SiloId, refusal.Reason, refusal.Detail);
            rejected.Add(refusal);
        }

        return kept;
    }

    private async Task<RejectedUpdate?> TryAddAsync(StreamingAggregator aggregator, SiloUpdate update, double weight, CancellationToken cancellationToken)
    {
        var (file, refusal) = await ReadCheckedAsync(update, cancellationToken).ConfigureAwait(false);
        if (file is null)
        {
            return refusal;
        }

        var check = aggregator.TryAdd(file.Tensors, weight);
        return check.Accepted ? null : new RejectedUpdate(update.SiloId, check.Reason ?? "invalid", check.Detail ?? "rejected by the aggregator");
    }

    // Reads an update and checks what can be checked without the template: presence, size, SHA-256, format.
    private async Task<(SafetensorsFile? File, RejectedUpdate? Refusal)> ReadCheckedAsync(SiloUpdate update, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> bytes;
        try
        {
            bytes = await updates.ReadUpdateAsync(update.SiloId, update.Update, cancellationToken).ConfigureAwait(false);
        }
        catch (UpdateUnavailableException ex)
        {
            return (null, new RejectedUpdate(update.SiloId, "missing", ex.Message));
        }

        if (bytes.Length != update.Update.Bytes)
        {
            return (null, new RejectedUpdate(update.SiloId, "truncated", $"blob has {bytes.Length} bytes, the silo reported {update.Update.Bytes}"));
        }

        var sha = Hashing.Sha256Hex(bytes.Span);
        if (!string.Equals(sha, update.Update.Sha256, StringComparison.Ordinal))
        {
            return (null, new RejectedUpdate(update.SiloId, "sha256-mismatch", $"blob hashes to {sha}, the silo reported {update.Update.Sha256}"));
        }

        try
        {
            return (Safetensors.Parse(bytes), null);
        }
        catch (SafetensorsFormatException ex)
        {
            return (null, new RejectedUpdate(update.SiloId, "malformed", ex.Message));
        }
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: update from {SiloId} rejected ({Reason}): {Detail}")]
    private static partial void LogRejected(ILogger logger, string runId, int round, string siloId, string reason, string detail);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Run {RunId} round {Round}: aggregated {Accepted} updates, rejected {Rejected}; model {Sha256}")]
    private static partial void LogAggregated(ILogger logger, string runId, int round, int accepted, int rejected, string sha256);
}
