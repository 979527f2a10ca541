using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>One attempt of a secure sum, as its sum step sees it.</summary>
/// <param name="Attempt">The attempt.</param>
/// <param name="KeyExchange">Its public keys.</param>
/// <param name="Masked">The masked vectors, one per silo of the key exchange.</param>
/// <param name="Reveals">The self-mask seeds: null to check the masked vectors (before any silo reveals), set to unmask their sum.</param>
public sealed record SecureSumAttempt(int Attempt, IReadOnlyList<MaskingPublicKey> KeyExchange, IReadOnlyList<MaskedUpdateRef> Masked, IReadOnlyList<SelfMaskReveal>? Reveals);

/// <summary>What a sum step gave: its result (none when only checking), or the silos whose masked vectors it refused.</summary>
/// <param name="Result">The unmasked sum's use (the round's model, an analysis pass's summary, a round's evaluation); null when checking or refused.</param>
/// <param name="Refused">Silos whose masked vector is missing, altered or not the attempt's.</param>
public sealed record SecureSumStep<T>(T? Result, IReadOnlyList<RejectedUpdate> Refused)
    where T : class;

/// <summary>How a secure sum is run.</summary>
/// <param name="Minimum">Fewest silos whose vectors are summed: at least 2 (a lone masked vector has no pairwise mask), and at least the k that the aggregate needs.</param>
/// <param name="MaxAttempts">Most attempts: each redo leaves out at least one silo that failed.</param>
/// <param name="EverySilo">Every participant must contribute: the first silo that fails ends the sum (an analysis pass after the first, whose result must come from one set of rows).</param>
/// <param name="What">What a silo masks, for messages: <c>masked update</c>, <c>masked partial</c>, <c>masked evaluation</c>.</param>
public sealed record SecureSumPolicy(int Minimum, int MaxAttempts, bool EverySilo, string What);

/// <summary>Why a secure sum gave no result.</summary>
public enum SecureSumFailure
{
    /// <summary>It gave a result.</summary>
    None,

    /// <summary>No attempt had enough silos that all delivered a valid masked vector.</summary>
    TooFewSilos,

    /// <summary>A silo that must take part failed (<see cref="SecureSumPolicy.EverySilo"/>).</summary>
    SiloFailed,

    /// <summary>Not every silo of the checked attempt revealed its self-mask: the attempt cannot be unmasked, and the silos that revealed take part in no other attempt of the round.</summary>
    NotRevealed,

    /// <summary>A masked vector changed between its check and the unmasking.</summary>
    ChangedAfterCheck,
}

/// <summary>A secure sum's outcome.</summary>
/// <param name="Result">The sum step's result, or null.</param>
/// <param name="Summed">The attempt whose sum gave it.</param>
/// <param name="Attempts">Every attempt, summed or not: for the audit trail.</param>
/// <param name="Left">The silos left out, with why.</param>
/// <param name="Failure">Why there is no result.</param>
/// <param name="Message">What went wrong, naming each silo that failed and why; null with a result.</param>
public sealed record SecureSumOutcome<T>(T? Result, SecureSumAttempt? Summed, IReadOnlyList<SecureAttemptRecord> Attempts, IReadOnlyList<RejectedUpdate> Left, SecureSumFailure Failure, string? Message)
    where T : class;

/// <summary>
/// The one secure sum: a vector of sums over at least k silos, computed without the aggregator reading any silo's term.
/// Training's updates, a round's evaluation and an analysis's partials all cross the silo boundary through it.
/// </summary>
/// <remarks>
/// <para>An attempt is a key exchange (each silo publishes a public key), each silo's vector masked against the others'
/// keys and its own self-mask (in the silo: the caller's step), a check of every masked vector by the sum step, the
/// reveal of the self-masks, and the sum step again with the reveals, which unmasks the sum. Before the reveals, an
/// attempt is redone without the silos that dropped out (or whose masked vector is refused), with fresh keys, until one
/// completes or too few silos are left; after them, the attempt is final. A silo reveals for one attempt per round: when
/// the key exchange shows that silos already revealed (an instance that crashed after the reveals, before its commit),
/// that attempt is taken again with them, and gives the same sum.</para>
/// <para>Each use names its masking run (<see cref="MaskingAttempt"/>), so no two sums share masks or reveal records, and
/// supplies the silo step that masks its vector and the activity that checks and unmasks the sum. See
/// <c>docs/trust-model.md</c>.</para>
/// <para>Orchestrator code: deterministic, no I/O; every silo step runs in the silo through <see cref="SiloFanOut"/>.</para>
/// </remarks>
/// <param name="silos">The fan-out to the silos' computes.</param>
/// <param name="logger">A replay-safe logger.</param>
/// <param name="maskingRun">The masking context's run id.</param>
/// <param name="round">The masking context's round (an analysis's pass).</param>
/// <param name="privacyMode">The privacy mode, which decides what a silo's failure may say.</param>
/// <param name="deadlineSeconds">How long each fan-in waits; null waits for every silo.</param>
public sealed partial class SecureSum(SiloFanOut silos, ILogger logger, string maskingRun, int round, string privacyMode, int? deadlineSeconds)
{
    /// <summary>Runs the secure sum over <paramref name="participants"/>.</summary>
    /// <param name="participants">The silos asked to contribute.</param>
    /// <param name="policy">The minimum, the attempts, and whether every silo must contribute.</param>
    /// <param name="mask">The silo step that masks a silo's vector for an attempt; its result's <see cref="SiloStepResult.Masked"/> is the masked vector.</param>
    /// <param name="maskFailedReason">The reason code of a mask step that failed after its retries.</param>
    /// <param name="sum">Checks an attempt's masked vectors (no reveals) or unmasks their sum (with the reveals): an activity.</param>
    public async Task<SecureSumOutcome<T>> RunAsync<T>(
        IReadOnlyList<string> participants, SecureSumPolicy policy, Func<string, MaskingAttempt, SiloStep> mask, string maskFailedReason, Func<SecureSumAttempt, Task<SecureSumStep<T>>> sum)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(participants);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(sum);
        var current = participants.Order(StringComparer.Ordinal).ToList();
        var left = new List<RejectedUpdate>();
        var attempts = new List<SecureAttemptRecord>();
        var resumed = false;
        for (int attempt = 0, tries = 0; tries < policy.MaxAttempts && current.Count >= policy.Minimum; attempt++, tries++)
        {
            var a = attempt;
            var keyLeft = new List<RejectedUpdate>();
            var exchange = new List<MaskingPublicKey>();
            foreach (var (silo, key, failure) in await silos.RunAsync(
                current, silo => new SiloStep(Key: new MaskingKeyRequest(maskingRun, round, a, silo, privacyMode)), r => r.Key, "key-exchange-failed", $"public key for attempt {a}", deadlineSeconds))
            {
                if (key is not null && key.SiloId == silo && key.Attempt == a)
                {
                    exchange.Add(key);
                }
                else
                {
                    keyLeft.Add(failure ?? new RejectedUpdate(silo, "key-exchange-failed", $"the public key is not labelled for silo '{silo}' attempt {a}"));
                }
            }

            // A silo reveals its self-mask for one attempt per round. Silos that already did take part in that attempt only:
            // it is redone with them, and gives the same sum.
            if (!resumed && exchange.Where(k => k.RevealedAttempt is not null).Select(k => k.RevealedAttempt!.Value).DefaultIfEmpty(-1).Max() is var revealed and >= 0)
            {
                resumed = true;
                LogResumed(logger, maskingRun, round, revealed);
                left.AddRange(keyLeft);
                left.AddRange(exchange.Where(k => k.RevealedAttempt != revealed).Select(k => new RejectedUpdate(k.SiloId, "not-in-revealed-attempt", $"the other silos revealed their self-masks for attempt {revealed} of this round, which this silo was not part of")));
                current = exchange.Where(k => k.RevealedAttempt == revealed).Select(k => k.SiloId).ToList();
                attempt = revealed - 1;
                tries--;
                continue;
            }

            // A silo without a key is simply not in the exchange; one that fails after it makes the masks not cancel.
            foreach (var l in keyLeft)
            {
                LogLeft(logger, maskingRun, round, a, l.SiloId, l.Reason, l.Detail);
            }

            left.AddRange(keyLeft);
            if (exchange.Count < policy.Minimum || (policy.EverySilo && keyLeft.Count > 0))
            {
                attempts.Add(new SecureAttemptRecord(a, exchange, [], false, keyLeft));
                break;
            }

            var attemptLeft = new List<RejectedUpdate>();
            var masking = new MaskingAttempt(maskingRun, a, exchange);
            var masked = new List<MaskedUpdateRef>();
            foreach (var (silo, m, failure) in await silos.RunAsync(
                exchange.Select(k => k.SiloId).ToArray(), silo => mask(silo, masking), r => r.Masked, maskFailedReason, $"{policy.What} for attempt {a}", deadlineSeconds))
            {
                if (m is not null && m.SiloId == silo && m.Round == round && m.Attempt == a)
                {
                    masked.Add(m);
                }
                else
                {
                    var why = failure?.Detail ?? $"the reference is not labelled for silo '{silo}' round {round} attempt {a}";
                    // Bad data stays bad data (a redo will not help the silo); anything else is a dropout.
                    attemptLeft.Add(new RejectedUpdate(silo, failure?.Reason == SiloFailures.BadData ? SiloFailures.BadData : "dropped-out", $"took part in the key exchange of attempt {a} but delivered no {policy.What}: {why}"));
                }
            }

            if (attemptLeft.Count == 0)
            {
                // Every masked vector is checked before any silo reveals its self-mask: after the reveals, the attempt is final.
                var check = await sum(new SecureSumAttempt(a, exchange, masked, null));
                attemptLeft.AddRange(check.Refused);
                if (check.Refused.Count == 0)
                {
                    var reveals = await silos.RunAsync(
                        masked.Select(m => m.SiloId).ToArray(), silo => new SiloStep(Reveal: new RevealSelfMaskRequest(maskingRun, round, a, silo, privacyMode)), r => r.Reveal, "reveal-failed", "self-mask seed", deadlineSeconds);
                    if (reveals.Where(r => r.Result is null).Select(r => r.Failure!).ToArray() is { Length: > 0 } missing)
                    {
                        attempts.Add(new SecureAttemptRecord(a, exchange, masked, false, missing));
                        return Failed<T>(attempts, [.. left, .. missing], SecureSumFailure.NotRevealed, $"secure aggregation attempt {a} cannot be unmasked, because not every silo revealed its self-mask ({Describe(missing)}). The silos that did reveal take part in no other attempt of this round.");
                    }

                    var summed = new SecureSumAttempt(a, exchange, masked, reveals.Select(r => r.Result!).ToArray());
                    var result = await sum(summed);
                    if (result.Result is null)
                    {
                        attempts.Add(new SecureAttemptRecord(a, exchange, masked, false, result.Refused));
                        return Failed<T>(attempts, [.. left, .. result.Refused], SecureSumFailure.ChangedAfterCheck, $"a {policy.What} of attempt {a} changed after it was checked: {Describe(result.Refused)}");
                    }

                    attempts.Add(new SecureAttemptRecord(a, exchange, masked, true, []));
                    return new SecureSumOutcome<T>(result.Result, summed, attempts, left, SecureSumFailure.None, null);
                }
            }

            foreach (var l in attemptLeft)
            {
                LogLeft(logger, maskingRun, round, a, l.SiloId, l.Reason, l.Detail);
            }

            attempts.Add(new SecureAttemptRecord(a, exchange, masked, false, attemptLeft));
            left.AddRange(attemptLeft);
            if (policy.EverySilo)
            {
                break;
            }

            current = exchange.Select(k => k.SiloId).Where(s => attemptLeft.All(l => l.SiloId != s)).ToList();
        }

        return policy.EverySilo && left.Count > 0
            ? Failed<T>(attempts, left, SecureSumFailure.SiloFailed, Describe(left))
            : Failed<T>(attempts, left, SecureSumFailure.TooFewSilos, $"secure aggregation found no attempt in which at least {policy.Minimum} silos all delivered a valid {policy.What} ({attempts.Count} of at most {policy.MaxAttempts} attempts): {Describe(left)}");
    }

    private static SecureSumOutcome<T> Failed<T>(IReadOnlyList<SecureAttemptRecord> attempts, IReadOnlyList<RejectedUpdate> left, SecureSumFailure failure, string message)
        where T : class => new(null, null, attempts, left, failure, message);

    private static string Describe(IEnumerable<RejectedUpdate> failures) => string.Join("; ", failures.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})"));

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Secure sum {MaskingRun} round {Round}: silos already revealed their self-masks for attempt {Attempt}; that attempt is redone with them")]
    private static partial void LogResumed(ILogger logger, string maskingRun, int round, int attempt);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Secure sum {MaskingRun} round {Round}: attempt {Attempt} goes on without silo {SiloId} ({Reason}): {Detail}")]
    private static partial void LogLeft(ILogger logger, string maskingRun, int round, int attempt, string siloId, string reason, string detail);
}
