using System.Globalization;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>Drives one federated training run, round by round.</summary>
/// <remarks>
/// <para>Each round fans out one <see cref="TrainActivity"/> per silo the strategy picks, fans in, runs one
/// <see cref="AggregateActivity"/>, evaluates every <see cref="EvaluationSpec.EveryRounds"/> rounds (and the last)
/// with one <see cref="EvaluateActivity"/> per silo, and commits the round with <see cref="CommitRoundActivity"/>.</para>
/// <para>The orchestrator is deterministic and does no I/O: time comes from the context, logs go through a
/// replay-safe logger, and only references and scalars cross history. After
/// <see cref="OrchestrationSpec.RoundsPerInstance"/> rounds it continues as new with <see cref="TrainingState"/>,
/// so history stays bounded however long the run.</para>
/// <para>A silo whose training fails after its retries is reported as rejected for that round; the round fails
/// only when no update can be aggregated.</para>
/// </remarks>
[DurableTask(nameof(TrainingOrchestrator))]
public sealed partial class TrainingOrchestrator : TaskOrchestrator<TrainingState, TrainingOutcome?>
{
    // Storage outages of up to about half a minute (a storage restart, a throttling burst) are ridden out.
    private static readonly TaskOptions StorageRetry = TaskOptions.FromRetryPolicy(new RetryPolicy(
        maxNumberOfAttempts: 6,
        firstRetryInterval: TimeSpan.FromSeconds(1),
        backoffCoefficient: 2.0,
        maxRetryInterval: TimeSpan.FromSeconds(15))
    {
        // A round whose every update was refused is refused again on retry; a model that does not fit never will.
        HandleFailure = failure => !failure.IsCausedBy<NoAcceptedUpdatesException>() && !failure.IsCausedBy<IncompatibleCheckpointException>(),
    });

    /// <inheritdoc />
    public override async Task<TrainingOutcome?> RunAsync(TaskOrchestrationContext context, TrainingState input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var log = context.CreateReplaySafeLogger<TrainingOrchestrator>();
        var spec = input.Spec;
        var totalRounds = spec.Training.Rounds;
        var inputs = RunSpecValidator.ResolveInputs(spec);
        var strategy = StrategyFactory.Create(spec.Strategy);
        var container = spec.Checkpoints.Container;
        var recent = input.Recent.ToList();
        var siloRetry = SiloRetry(spec.Retry);
        var policy = spec.Participation;

        var privacy = spec.Privacy;
        var dp = privacy.DifferentialPrivacy;
        var eyesOff = privacy.Mode == PrivacyModes.EyesOff;
        var secure = privacy.SecureAggregation is not null;
        var audit = input.Audit;
        var lastManifest = input.LastManifest;
        var global = input.GlobalModel;
        if (global is null)
        {
            context.SetCustomStatus(new RunStatus("initializing", 0, totalRounds, recent));
            var init = await context.CallActivityAsync<InitializeModelResult>(
                nameof(InitializeModelActivity),
                new InitializeModelRequest(input.RunId, container, strategy.Name, spec.Model, inputs, spec.Data.Classes, spec.Training.Seed, context.CurrentUtcDateTime, input.ResumeFrom, input.NextRound - 1, spec),
                StorageRetry);
            global = init.Model;
            lastManifest = init.Manifest;
        }

        var lastRoundHere = Math.Min(totalRounds, input.NextRound + spec.Orchestration.RoundsPerInstance - 1);
        var round = input.NextRound;
        for (; round <= lastRoundHere; round++)
        {
            var started = context.CurrentUtcDateTime;
            var silos = ParticipationPolicy.Sample(strategy.ConfigureFit(round, spec.Silos), policy, spec.Training.Seed, round);
            var sampleRate = (double)silos.Count / spec.Silos.Count;

            // The accountant is pure arithmetic on the spec, so it runs here, before any silo works on the round.
            double? epsilon = dp is null ? null : RdpAccountant.GetEpsilon(sampleRate, dp.NoiseMultiplier, dp.Delta, round);
            if (dp?.EpsilonBudget is { } budget && epsilon > budget)
            {
                LogBudgetExhausted(log, input.RunId, round, epsilon.Value, budget);
                context.SetCustomStatus(new RunStatus("budget-exhausted", round - 1, totalRounds, recent));
                var final = recent.Count == 0 ? null : recent[^1];
                return new TrainingOutcome(input.RunId, round - 1, global, lastManifest ?? throw new InvalidOperationException("No round was committed."), final?.EvalAccuracy, final?.EvalLoss, "budget-exhausted", final?.Epsilon);
            }

            context.SetCustomStatus(new RunStatus("training", round, totalRounds, recent));
            var minimum = ParticipationPolicy.MinimumAccepted(policy, silos.Count);
            // Past the deadline the round goes on with what has arrived; a late result is never read again, and the
            // aggregator refuses any update whose round is not the current one.
            var trained = await FanOutAsync<SiloUpdate>(
                context, silos, nameof(TrainActivity), silo => new TrainRequest(input.RunId, round, silo, global, spec.Model, spec.Data, spec.Training, inputs, privacy.Mode, secure), "train-failed", "result", siloRetry, policy.RoundDeadlineSeconds);
            var failures = trained.Where(t => t.Failure is not null).Select(t => t.Failure!).ToList();
            foreach (var f in failures)
            {
                LogSiloFailed(log, input.RunId, round, f.SiloId, f.Detail);
            }

            var reported = trained.Length - failures.Count;
            if (reported == 0 || reported < minimum)
            {
                throw new NoAcceptedUpdatesException(
                    $"Round {round} of run '{input.RunId}' has {(reported == 0 ? "no update to aggregate" : $"{reported} update(s), below the minimum of {minimum} ({policy.FailurePolicy})")}: " +
                    string.Join("; ", failures.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")));
            }

            context.SetCustomStatus(new RunStatus("aggregating", round, totalRounds, recent));
            var delivered = trained.Where(t => t.Result is not null).Select(t => t.Result!).ToArray();
            AggregateResult aggregate;
            IReadOnlyList<SecureAttemptRecord> attempts = [];
            if (secure)
            {
                (aggregate, attempts) = await SecurelyAggregateAsync(context, log, spec, input.RunId, round, strategy.Name, global, delivered, silos.Count, minimum, siloRetry);
            }
            else
            {
                aggregate = await context.CallActivityAsync<AggregateResult>(
                    nameof(AggregateActivity),
                    new AggregateRequest(input.RunId, round, container, strategy.Name, global, delivered, minimum, spec.Robustness.MaxNormRatio, privacy, silos.Count),
                    StorageRetry);
            }

            EvaluateSummary? evaluation = null;
            IReadOnlyList<SiloEvaluation> reports = [];
            var evaluationFailures = new List<RejectedUpdate>();
            if (IsEvaluationRound(spec, round))
            {
                context.SetCustomStatus(new RunStatus("evaluating", round, totalRounds, recent));
                var scored = await FanOutAsync<SiloEvaluation>(
                    context, strategy.ConfigureEvaluate(round, spec.Silos), nameof(EvaluateActivity), silo => new EvaluateRequest(input.RunId, round, silo, aggregate.Model, spec.Model, spec.Data, inputs, privacy.Mode), "evaluate-failed", "result", siloRetry, deadlineSeconds: null);
                foreach (var failure in scored.Where(s => s.Failure is not null).Select(s => s.Failure!))
                {
                    LogEvaluationFailed(log, input.RunId, round, failure.SiloId, failure.Detail);
                    evaluationFailures.Add(failure);
                }

                if (eyesOff)
                {
                    // The orchestrator sees report references only; the summary exists only over enough silos.
                    reports = scored.Where(s => s.Result?.Report is not null).Select(s => s.Result!).ToArray();
                    evaluation = reports.Count == 0 ? null : await context.CallActivityAsync<EvaluateSummary?>(
                        nameof(SummarizeEvaluationActivity),
                        new SummarizeEvaluationRequest(input.RunId, round, strategy.Name, reports, privacy.MinAggregateSilos),
                        StorageRetry);
                }
                else
                {
                    var ok = scored.Where(s => s.Result?.Outcome is { Examples: > 0 }).Select(s => s.Result!.Outcome!).ToArray();
                    evaluation = ok.Length == 0 ? null : strategy.AggregateEvaluate(ok);
                }
            }

            var rejected = failures.Concat(aggregate.Rejected).ToArray();
            var manifest = new RoundManifest
            {
                RunId = input.RunId,
                Round = round,
                Strategy = strategy.Name,
                Model = aggregate.Model,
                ParentModelSha256 = global.Sha256,
                Sampled = silos,
                Participants = aggregate.Participants,
                Rejected = rejected,
                EvaluationFailures = evaluationFailures,
                Privacy = privacy.Mode == PrivacyModes.EyesOn && dp is null && !secure
                    ? null
                    : new RoundPrivacy(privacy.Mode, dp?.NoiseMultiplier, dp?.ClipNorm, dp is null ? null : sampleRate, epsilon, dp?.Delta, secure ? attempts.Single(a => a.Summed).Attempt : null),
                // Eyes-off: example totals are withheld. Silos' counts are fixed, so totals over rounds with different
                // participants would give each silo's count by subtraction.
                Metrics = new RoundMetrics
                {
                    TrainExamples = eyesOff ? null : aggregate.Fit?.Examples,
                    TrainLoss = aggregate.Fit?.Loss,
                    EvalExamples = eyesOff ? null : evaluation?.Examples,
                    EvalLoss = evaluation?.Loss,
                    EvalAccuracy = evaluation?.Accuracy,
                },
                CreatedAt = context.CurrentUtcDateTime,
            };
            context.SetCustomStatus(new RunStatus("committing", round, totalRounds, recent));
            var drafts = AuditDrafts(input.RunId, round, secure ? [] : delivered, rejected, reports, privacy, spec.Robustness, context.CurrentUtcDateTime, attempts);
            var committed = await context.CallActivityAsync<CommitRoundResult>(nameof(CommitRoundActivity), new CommitRoundRequest(container, manifest, drafts, audit), StorageRetry);
            lastManifest = committed.Manifest;
            audit = committed.Audit;

            var summary = new RoundSummary(
                round,
                aggregate.Participants.Count,
                rejected.Length,
                eyesOff ? null : aggregate.Fit?.Examples,
                aggregate.Fit?.Loss,
                evaluation?.Accuracy,
                evaluation?.Loss,
                (context.CurrentUtcDateTime - started).TotalSeconds,
                epsilon);
            recent.Add(summary);
            if (recent.Count > RunStatus.RecentWindow)
            {
                recent.RemoveRange(0, recent.Count - RunStatus.RecentWindow);
            }

            global = aggregate.Model;
            LogRoundCommitted(log, input.RunId, round, summary.Participants, rejected.Length, evaluation?.Accuracy ?? double.NaN);
        }

        if (round <= totalRounds)
        {
            context.SetCustomStatus(new RunStatus("training", round, totalRounds, recent));
            context.ContinueAsNew(input with { NextRound = round, GlobalModel = global, Generation = input.Generation + 1, Recent = recent, LastManifest = lastManifest, Audit = audit });
            return null;
        }

        var last = recent[^1];
        context.SetCustomStatus(new RunStatus("completed", totalRounds, totalRounds, recent));
        return new TrainingOutcome(
            input.RunId,
            totalRounds,
            global,
            lastManifest ?? throw new InvalidOperationException("The final round committed no manifest."),
            last.EvalAccuracy,
            last.EvalLoss,
            null,
            last.Epsilon);
    }

    /// <summary>
    /// One audit entry per artifact that left a silo this round: each update the aggregator read, each masked update of
    /// every secure-aggregation attempt (summed or discarded), and each eyes-off evaluation report.
    /// </summary>
    public static IReadOnlyList<AuditDraft> AuditDrafts(
        string runId, int round, IEnumerable<SiloUpdate> updates, IReadOnlyList<RejectedUpdate> rejected, IReadOnlyList<SiloEvaluation> reports, PrivacySpec privacy, RobustnessSpec robustness, DateTimeOffset now, IReadOnlyList<SecureAttemptRecord>? secureAttempts = null)
    {
        ArgumentNullException.ThrowIfNull(privacy);
        ArgumentNullException.ThrowIfNull(robustness);
        var dp = privacy.DifferentialPrivacy;
        var checks = "sha256,size,format,keys,shapes,dtypes,finite" + (robustness.MaxNormRatio is { } r ? $",norm-screen<={r.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : string.Empty) + (dp is null ? string.Empty : ",dp-clip");
        var drafts = new List<AuditDraft>();
        void Add(string siloId, string kind, BlobRef artifact, string checks, DpNoiseParameters? noise = null) => drafts.Add(new AuditDraft
        {
            RunId = runId,
            Round = round,
            SiloId = siloId,
            Kind = kind,
            Blob = artifact.Uri,
            Bytes = artifact.Bytes,
            Sha256 = artifact.Sha256,
            Policy = new AuditPolicy(privacy.Mode, checks),
            DpNoise = noise,
            Identity = "silo:" + siloId,
            RecordedAt = now,
        });

        var noise = dp is null ? null : new DpNoiseParameters(dp.NoiseMultiplier, dp.ClipNorm);
        foreach (var u in updates.OrderBy(u => u.SiloId, StringComparer.Ordinal))
        {
            var refusal = rejected.FirstOrDefault(x => x.SiloId == u.SiloId);
            Add(u.SiloId, AuditKinds.Update, u.Update, (refusal is null ? "accepted: " : $"rejected ({refusal.Reason}): ") + checks, refusal is null ? noise : null);
        }

        foreach (var attempt in secureAttempts ?? [])
        {
            var exchange = MaskedUpdateCodec.KeyExchangeSha256(KeyExchanges.BySilo(attempt.KeyExchange, attempt.Attempt));
            foreach (var m in attempt.Masked.OrderBy(m => m.SiloId, StringComparer.Ordinal))
            {
                var left = attempt.Left.FirstOrDefault(x => x.SiloId == m.SiloId);
                var fate = attempt.Summed ? "summed" : left is null ? "discarded: attempt redone without the silos that dropped out" : $"refused ({left.Reason})";
                var applied = string.Create(CultureInfo.InvariantCulture, $"secure-aggregation attempt {attempt.Attempt} over {attempt.KeyExchange.Count} silos (key exchange sha256 {exchange}): {fate}") + (dp is null ? string.Empty : ", dp-clip");
                Add(m.SiloId, AuditKinds.MaskedUpdate, m.Masked, applied, attempt.Summed ? noise : null);
            }
        }

        foreach (var e in reports.Where(e => e.Report is not null).OrderBy(e => e.SiloId, StringComparer.Ordinal))
        {
            Add(e.SiloId, AuditKinds.Metrics, e.Report!, $"aggregated over at least {privacy.MinAggregateSilos} silos");
        }

        return drafts;
    }

    // Secure aggregation of one round: key exchange, masking, a check of the masked updates, the reveal of the self-masks
    // and the unmasked sum; redone without the silos that drop out (or whose masked update is refused) before the reveals,
    // until an attempt completes or too few silos are left.
    private static async Task<(AggregateResult Aggregate, IReadOnlyList<SecureAttemptRecord> Attempts)> SecurelyAggregateAsync(
        TaskOrchestrationContext context, ILogger log, RunSpec spec, string runId, int round, string strategy, BlobRef global, IReadOnlyList<SiloUpdate> trained, int sampled, int minAccepted, TaskOptions siloRetry)
    {
        var privacy = spec.Privacy;
        var sa = privacy.SecureAggregation!;
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
            foreach (var (silo, key, failure) in await FanOutAsync<MaskingPublicKey>(
                context, participants, nameof(PublishMaskingKeyActivity), silo => new MaskingKeyRequest(runId, round, attempt, silo, privacy.Mode), "key-exchange-failed", $"public key for attempt {attempt}", siloRetry, deadline))
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
                LogSecureAggregationResumed(log, runId, round, revealed);
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
            foreach (var (silo, m, failure) in await FanOutAsync<MaskedUpdateRef>(
                context,
                exchange.Select(k => k.SiloId).ToArray(),
                nameof(MaskUpdateActivity),
                silo => new MaskUpdateRequest(runId, round, attempt, silo, global, updates[silo].Update, exchange, encoding, clip, sa.MaxExamples, dp is not null, privacy.Mode),
                "mask-failed",
                $"masked update for attempt {attempt}",
                siloRetry,
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
                var request = new SecureAggregateRequest(runId, round, spec.Checkpoints.Container, strategy, global, attempt, exchange, masked, encoding, privacy, sampled, clip, null);
                var check = await context.CallActivityAsync<SecureAggregateResult>(nameof(SecureAggregateActivity), request, StorageRetry);
                attemptLeft.AddRange(check.Refused);
                if (check.Refused.Count == 0)
                {
                    var reveals = await FanOutAsync<SelfMaskReveal>(
                        context, masked.Select(m => m.SiloId).ToArray(), nameof(RevealSelfMaskActivity), silo => new RevealSelfMaskRequest(runId, round, attempt, silo, privacy.Mode), "reveal-failed", "self-mask seed", siloRetry, deadline);
                    var missing = reveals.Where(r => r.Result is null).Select(r => r.Failure!).ToArray();
                    if (missing.Length > 0)
                    {
                        // The silos that revealed take part in no other attempt of this round, so it cannot be redone.
                        throw new NoAcceptedUpdatesException(
                            $"Round {round} of run '{runId}': secure aggregation attempt {attempt} cannot be unmasked, because not every silo revealed its self-mask (" +
                            string.Join("; ", missing.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")) +
                            "). The silos that did reveal take part in no other attempt of this round. Start a new run with resumeFrom this run's latest round.");
                    }

                    var result = await context.CallActivityAsync<SecureAggregateResult>(nameof(SecureAggregateActivity), request with { Reveals = reveals.Select(r => r.Result!).ToArray() }, StorageRetry);
                    var aggregate = result.Aggregate ?? throw new NoAcceptedUpdatesException(
                        $"Round {round} of run '{runId}': a masked update of attempt {attempt} changed after it was checked: " + string.Join("; ", result.Refused.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")));
                    attempts.Add(new SecureAttemptRecord(attempt, exchange, masked, true, []));
                    left.AddRange(attemptLeft);
                    return (aggregate with { Rejected = [.. left, .. aggregate.Rejected] }, attempts);
                }
            }

            foreach (var l in attemptLeft)
            {
                LogSecureAggregationLeft(log, runId, round, attempt, l.SiloId, l.Reason, l.Detail);
            }

            attempts.Add(new SecureAttemptRecord(attempt, exchange, masked, false, attemptLeft));
            left.AddRange(attemptLeft);
            participants = exchange.Select(k => k.SiloId).Where(s => attemptLeft.All(l => l.SiloId != s)).ToList();
        }

        throw new NoAcceptedUpdatesException(
            $"Round {round} of run '{runId}': secure aggregation found no attempt in which at least {minimum} silos all delivered a valid masked update " +
            $"({attempts.Count} of at most {sa.MaxAttempts} attempts): " + string.Join("; ", left.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")));
    }

    // One silo activity per silo at once, awaited together or until the deadline: for each silo, in order, its result, or
    // why there is none: the activity failed after its retries (`bad-data` for bad data, else failedReason), or it was late.
    private static async Task<(string SiloId, T? Result, RejectedUpdate? Failure)[]> FanOutAsync<T>(
        TaskOrchestrationContext context, IReadOnlyList<string> silos, string activity, Func<string, object> request, string failedReason, string what, TaskOptions retry, int? deadlineSeconds)
        where T : class
    {
        var calls = silos.Select(silo => CallSiloAsync<T>(context, activity, request(silo), silo, failedReason, retry)).ToArray();
        await WhenAllOrDeadlineAsync(context, calls, deadlineSeconds);
        return calls.Select((t, i) => t.IsCompletedSuccessfully
            ? (silos[i], t.Result.Result, t.Result.Failure)
            : (silos[i], null, new RejectedUpdate(silos[i], "late", $"no {what} within the round deadline of {deadlineSeconds} s"))).ToArray();
    }

    private static async Task<(T? Result, RejectedUpdate? Failure)> CallSiloAsync<T>(TaskOrchestrationContext context, string activity, object request, string siloId, string failedReason, TaskOptions retry)
        where T : class
    {
        try
        {
            return (await context.CallActivityAsync<T>(activity, request, retry), null);
        }
        catch (TaskFailedException ex)
        {
            var reason = ex.FailureDetails.IsCausedBy<DataValidationException>() ? "bad-data" : failedReason;
            return (null, new RejectedUpdate(siloId, reason, ex.FailureDetails.ErrorMessage));
        }
    }

    /// <summary>Whether federated evaluation runs after <paramref name="round"/>.</summary>
    public static bool IsEvaluationRound(RunSpec spec, int round) =>
        round == spec.Training.Rounds || (spec.Evaluation.EveryRounds > 0 && round % spec.Evaluation.EveryRounds == 0);

    /// <summary>The retry options of silo activities, from the spec. Bad data is not retried: it does not get better.</summary>
    public static TaskOptions SiloRetry(RetrySpec retry)
    {
        ArgumentNullException.ThrowIfNull(retry);
        return TaskOptions.FromRetryPolicy(new RetryPolicy(
            maxNumberOfAttempts: retry.MaxAttempts,
            firstRetryInterval: TimeSpan.FromSeconds(retry.FirstIntervalSeconds),
            backoffCoefficient: retry.BackoffCoefficient,
            maxRetryInterval: TimeSpan.FromSeconds(retry.MaxIntervalSeconds))
        {
            HandleFailure = failure => !failure.IsCausedBy<DataValidationException>(),
        });
    }

    private static async Task WhenAllOrDeadlineAsync(TaskOrchestrationContext context, Task[] tasks, int? deadlineSeconds)
    {
        var all = Task.WhenAll(tasks);
        if (deadlineSeconds is not { } seconds)
        {
            await all;
            return;
        }

        // A durable timer raced against the fan-in; the timer is cancelled when the fan-in wins, so it does not
        // keep the orchestration waiting.
        using var cts = new CancellationTokenSource();
        var deadline = context.CreateTimer(context.CurrentUtcDateTime.AddSeconds(seconds), cts.Token);
        if (await Task.WhenAny(all, deadline) == all)
        {
            await cts.CancelAsync();
        }
    }

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: silos already revealed their self-masks for secure aggregation attempt {Attempt}; that attempt is redone with them")]
    private static partial void LogSecureAggregationResumed(ILogger logger, string runId, int round, int attempt);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: secure aggregation attempt {Attempt} goes on without silo {SiloId} ({Reason}): {Detail}")]
    private static partial void LogSecureAggregationLeft(ILogger logger, string runId, int round, int attempt, string siloId, string reason, string detail);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Run {RunId} stops before round {Round}: epsilon would reach {Epsilon}, over the budget of {Budget}")]
    private static partial void LogBudgetExhausted(ILogger logger, string runId, int round, double epsilon, double budget);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: evaluation on silo {SiloId} failed: {Detail}")]
    private static partial void LogEvaluationFailed(ILogger logger, string runId, int round, string siloId, string detail);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: silo {SiloId} failed: {Detail}")]
    private static partial void LogSiloFailed(ILogger logger, string runId, int round, string siloId, string detail);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Run {RunId} round {Round} committed: {Participants} participants, {Rejected} rejected, accuracy {Accuracy}")]
    private static partial void LogRoundCommitted(ILogger logger, string runId, int round, int participants, int rejected, double accuracy);
}
