using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>Secure aggregation of one round, as the orchestrator drives it: key exchange, masking, a check of the masked
/// updates, the reveal of the self-masks and the unmasked sum.</summary>
/// <remarks>
/// An attempt is redone without the silos that drop out (or whose masked update is refused) before the reveals, with fresh
/// keys, until an attempt completes or too few silos are left. A silo reveals for one attempt per round; a round redone after
/// the reveals takes that attempt again with the same silos. Every silo step runs in the silo, through <see cref="SiloFanOut"/>.
/// See <c>docs/trust-model.md</c>.
/// </remarks>
public sealed partial class SecureAggregationRound(TaskOrchestrationContext context, ILogger logger, RunSpec spec, string runId, SiloFanOut silos)
{
    // Secure aggregation of one round: key exchange, masking, a check of the masked updates, the reveal of the self-masks
    // and the unmasked sum; redone without the silos that drop out (or whose masked update is refused) before the reveals,
    // until an attempt completes or too few silos are left.
    /// <summary>Aggregates one round's updates by secure aggregation; throws <see cref="NoAcceptedUpdatesException"/> when no attempt can complete.</summary>
    /// <param name="round">The round.</param>
    /// <param name="global">The round's global model.</param>
    /// <param name="strategyState">The strategy's server state after the previous round, or null.</param>
    /// <param name="trained">The silos' training results: references to the updates they keep.</param>
    /// <param name="sampled">Silos sampled this round: the fixed-point encoding's bound and the DP denominator.</param>
    /// <param name="minAccepted">The participation policy's minimum.</param>
    public async Task<(AggregateResult Aggregate, IReadOnlyList<SecureAttemptRecord> Attempts)> AggregateAsync(int round, BlobRef global, BlobRef? strategyState, IReadOnlyList<SiloUpdate> trained, int sampled, int minAccepted)
    {
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(trained);
        var privacy = spec.Privacy;
        var sa = privacy.SecureAggregation ?? throw new InvalidOperationException("The run has no secure aggregation.");
        var dp = privacy.DifferentialPrivacy;
        var clip = sa.ClipNorm ?? dp?.ClipNorm ?? throw new InvalidOperationException("Secure aggregation needs a clipping norm.");
        var encoding = SecureAggregationEncoding.For(sampled);
        // Never fewer than two (a lone masked update has no mask), nor fewer than the round or the eyes-off aggregate need.
        var minimum = Math.Max(Math.Max(SecureAggregationAttempt.AbsoluteMinimumParticipants, minAccepted), privacy.Mode == PrivacyModes.EyesOff ? privacy.MinAggregateSilos : 1);
        var updates = trained.ToDictionary(u => u.SiloId, StringComparer.Ordinal);
        var participants = trained.Select(u => u.SiloId).Order(StringComparer.Ordinal).ToList();
        var left = new List<RejectedUpdate>();
        var attempts = new List<SecureAttemptRecord>();
        var deadline = spec.Participation.RoundDeadlineSeconds;
        var resumed = false;
        for (int attempt = 0, tries = 0; tries < sa.MaxAttempts && participants.Count >= minimum; attempt++, tries++)
        {
            var attemptLeft = new List<RejectedUpdate>();
            var exchange = new List<MaskingPublicKey>();
            var keyAttempt = attempt;
            foreach (var (silo, key, failure) in await silos.RunAsync(
                participants, silo => new SiloStep(Key: new MaskingKeyRequest(runId, round, keyAttempt, silo, privacy.Mode)), r => r.Key, "key-exchange-failed", $"public key for attempt {attempt}", deadline))
            {
                if (key is not null && key.SiloId == silo && key.Attempt == attempt)
                {
                    exchange.Add(key);
                }
                else
                {
                    attemptLeft.Add(failure ?? new RejectedUpdate(silo, "key-exchange-failed", $"the public key is not labelled for silo '{silo}' attempt {attempt}"));
                }
            }

            // A silo reveals its self-mask for one attempt per round. Silos that already did (an instance that crashed
            // after the reveals, before the commit) take part in that attempt only: it is redone with them, and gives the same sum.
            if (!resumed && exchange.Where(k => k.RevealedAttempt is not null).Select(k => k.RevealedAttempt!.Value).DefaultIfEmpty(-1).Max() is var revealed and >= 0)
            {
                resumed = true;
                LogSecureAggregationResumed(logger, runId, round, revealed);
                left.AddRange(attemptLeft);
                left.AddRange(exchange.Where(k => k.RevealedAttempt != revealed).Select(k => new RejectedUpdate(k.SiloId, "not-in-revealed-attempt", $"the other silos revealed their self-masks for attempt {revealed} of this round, which this silo was not part of")));
                participants = exchange.Where(k => k.RevealedAttempt == revealed).Select(k => k.SiloId).ToList();
                attempt = revealed - 1;
                tries--;
                continue;
            }

            if (exchange.Count < minimum)
            {
                attempts.Add(new SecureAttemptRecord(attempt, exchange, [], false, attemptLeft));
                left.AddRange(attemptLeft);
                break;
            }

            var plan = new SecureAggregationAttempt(new MaskingContext(runId, round, attempt), exchange.Select(k => k.SiloId), minimum);
            var masked = new List<MaskedUpdateRef>();
            var maskAttempt = attempt;
            foreach (var (silo, m, failure) in await silos.RunAsync(
                exchange.Select(k => k.SiloId).ToArray(),
                silo => new SiloStep(Mask: new MaskUpdateRequest(runId, round, maskAttempt, silo, global, updates[silo].Update, exchange, encoding, clip, sa.MaxExamples, dp is not null, privacy.Mode)),
                r => r.Masked,
                "mask-failed",
                $"masked update for attempt {attempt}",
                deadline))
            {
                if (m is not null && m.SiloId == silo && m.Round == round && m.Attempt == attempt)
                {
                    masked.Add(m);
                }
                else
                {
                    var why = failure?.Detail ?? $"the reference is not labelled for silo '{silo}' round {round} attempt {attempt}";
                    attemptLeft.Add(new RejectedUpdate(silo, "dropped-out", $"took part in the key exchange of attempt {attempt} but delivered no masked update: {why}"));
                }
            }

            if (plan.Decide(masked.Select(m => m.SiloId)).Status == SecureAggregationStatus.Complete)
            {
                // Check every masked update before any silo reveals its self-mask: after the reveals, the attempt is final.
                var request = new SecureAggregateRequest(runId, round, spec.Checkpoints.Container, spec.Strategy, global, attempt, exchange, masked, encoding, privacy, sampled, clip, null, spec.Training.Freeze, strategyState);
                var check = await context.CallActivityAsync<SecureAggregateResult>(nameof(SecureAggregateActivity), request, TaskPolicies.StorageRetry);
                attemptLeft.AddRange(check.Refused);
                if (check.Refused.Count == 0)
                {
                    var revealAttempt = attempt;
                    var reveals = await silos.RunAsync(
                        masked.Select(m => m.SiloId).ToArray(), silo => new SiloStep(Reveal: new RevealSelfMaskRequest(runId, round, revealAttempt, silo, privacy.Mode)), r => r.Reveal, "reveal-failed", "self-mask seed", deadline);
                    var missing = reveals.Where(r => r.Result is null).Select(r => r.Failure!).ToArray();
                    if (missing.Length > 0)
                    {
                        // The silos that revealed take part in no other attempt of this round, so it cannot be redone.
                        throw new NoAcceptedUpdatesException(
                            $"Round {round} of run '{runId}': secure aggregation attempt {attempt} cannot be unmasked, because not every silo revealed its self-mask (" +
                            string.Join("; ", missing.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")) +
                            "). The silos that did reveal take part in no other attempt of this round. Start a new run with resumeFrom this run's latest round.");
                    }

                    var result = await context.CallActivityAsync<SecureAggregateResult>(nameof(SecureAggregateActivity), request with { Reveals = reveals.Select(r => r.Result!).ToArray() }, TaskPolicies.StorageRetry);
                    var aggregate = result.Aggregate ?? throw new NoAcceptedUpdatesException(
                        $"Round {round} of run '{runId}': a masked update of attempt {attempt} changed after it was checked: " + string.Join("; ", result.Refused.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")));
                    attempts.Add(new SecureAttemptRecord(attempt, exchange, masked, true, []));
                    left.AddRange(attemptLeft);
                    return (aggregate with { Rejected = [.. left, .. aggregate.Rejected] }, attempts);
                }
            }

            foreach (var l in attemptLeft)
            {
                LogSecureAggregationLeft(logger, runId, round, attempt, l.SiloId, l.Reason, l.Detail);
            }

            attempts.Add(new SecureAttemptRecord(attempt, exchange, masked, false, attemptLeft));
            left.AddRange(attemptLeft);
            participants = exchange.Select(k => k.SiloId).Where(s => attemptLeft.All(l => l.SiloId != s)).ToList();
        }

        throw new NoAcceptedUpdatesException(
            $"Round {round} of run '{runId}': secure aggregation found no attempt in which at least {minimum} silos all delivered a valid masked update " +
            $"({attempts.Count} of at most {sa.MaxAttempts} attempts): " + string.Join("; ", left.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")));
    }

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: silos already revealed their self-masks for secure aggregation attempt {Attempt}; that attempt is redone with them")]
    private static partial void LogSecureAggregationResumed(ILogger logger, string runId, int round, int attempt);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: secure aggregation attempt {Attempt} goes on without silo {SiloId} ({Reason}): {Detail}")]
    private static partial void LogSecureAggregationLeft(ILogger logger, string runId, int round, int attempt, string siloId, string reason, string detail);
}
