using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;
using System.Runtime.CompilerServices;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>Drives one federated training run, round by round.</summary>
/// <remarks>
/// <para>Each round samples its silos, has them train on their own compute, aggregates their updates (plainly or by secure
/// aggregation), evaluates the new global model in the silos every <see cref="EvaluationSpec.EveryRounds"/> rounds (and the
/// last), and commits the round: its audit entries, its manifest and the run's latest pointer. When every silo step runs
/// in this process, a round's commit is written while the next round's silos train; that round's aggregation waits for
/// it.</para>
/// <para>The orchestrator is deterministic and does no I/O: time comes from the context, logs go through a replay-safe
/// logger, and only references and scalars cross history. After <see cref="OrchestrationSpec.RoundsPerInstance"/> rounds
/// it continues as new with <see cref="TrainingState"/>, so history stays bounded however long the run.</para>
/// <para>A silo whose step fails after its retries, or is late, is reported as rejected for that round; the round fails
/// only when the participation policy's minimum cannot be met.</para>
/// <para>It opens no span: each round's commit emits the round's, and <see cref="RecordRunActivity"/> the run's once it has
/// completed, stopped or failed (see <see cref="FederatedTelemetry"/>). A terminated run emits no run span.</para>
/// </remarks>
[DurableTask(nameof(TrainingOrchestrator))]
public sealed partial class TrainingOrchestrator : TaskOrchestrator<TrainingState, TrainingOutcome?>
{
    /// <inheritdoc />
    public override async Task<TrainingOutcome?> RunAsync(TaskOrchestrationContext context, TrainingState input)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        // The run's own start, kept across ContinueAsNew, so that whoever watches it reports how long the run took.
        input = input.StartedAt is null ? input with { StartedAt = context.CurrentUtcDateTime } : input;
        TrainingOutcome? outcome;
        var committed = new StrongBox<int>(input.NextRound - 1);
        try
        {
            outcome = await RunRoundsAsync(context, input, committed);
        }
        catch (Exception ex) when (ex is TaskFailedException or NoAcceptedUpdatesException or InvalidOperationException)
        {
            var eyesOn = input.Spec.Privacy.Mode == PrivacyModes.EyesOn;
            // Redacted here, before it enters the activity's input in history, not only when the span is written.
            await RecordEndAsync(context, input, FederatedTelemetry.Outcomes.Failed, committed.Value, FederatedTelemetry.ReasonCode(ex), eyesOn ? Core.Redaction.Redact(ex.Message) : null);
            throw;
        }

        if (outcome is not null)
        {
            await RecordEndAsync(context, input, outcome.Stopped ?? FederatedTelemetry.Outcomes.Completed, outcome.Rounds);
        }

        return outcome;
    }

    // The run's span, emitted by an activity once the run has ended; losing it never fails the run.
    private static async Task RecordEndAsync(TaskOrchestrationContext context, TrainingState input, string outcome, int rounds, string? reason = null, string? message = null)
    {
        try
        {
            await context.CallActivityAsync<bool>(
                nameof(RecordRunActivity),
                new RunEnded(input.RunId, input.Spec.Privacy.Mode, input.StartedAt!.Value, context.CurrentUtcDateTime, outcome, rounds, reason, message));
        }
        catch (TaskFailedException)
        {
            // Telemetry only.
        }
    }

    private static async Task<TrainingOutcome?> RunRoundsAsync(TaskOrchestrationContext context, TrainingState input, StrongBox<int> committed)
    {
        var run = await TrainingRun.StartAsync(context, input);
        var lastRoundHere = Math.Min(run.TotalRounds, input.NextRound + input.Spec.Orchestration.RoundsPerInstance - 1);
        try
        {
            for (var round = input.NextRound; round <= lastRoundHere; round++)
            {
                var sampled = run.Sample(round);
                if (run.BudgetExhausted(round, sampled))
                {
                    await run.CommittedAsync(committed);
                    return run.StopOnBudget(round);
                }

                // The round's silos train while the previous round's commit is written; its aggregation waits for that commit.
                var training = run.TrainAsync(round, sampled);
                await run.CommittedAsync(committed);
                var trained = await training;
                var aggregate = await run.AggregateAsync(round, sampled, trained);
                var evaluation = await run.EvaluateAsync(round, aggregate.Result.Model);
                run.BeginCommit(round, sampled, trained, aggregate, evaluation);
                if (!run.StepsInProcess || (round == run.TotalRounds && input.Spec.Evaluation.CrossSite))
                {
                    await run.CommittedAsync(committed);
                }

                if (round == run.TotalRounds && input.Spec.Evaluation.CrossSite)
                {
                    await run.TryCrossSiteAsync(round, trained, aggregate);
                }
            }

            await run.CommittedAsync(committed);
        }
        catch (Exception) when (run.CommitPending)
        {
            // The next round failed before it waited for this commit: the run reports the rounds committed, so the
            // commit is waited for first. Its own failure, if any, leaves the count where it was; the round's is reported.
            try
            {
                await run.CommittedAsync(committed);
            }
            catch (TaskFailedException)
            {
            }

            throw;
        }

        return run.Finish(lastRoundHere + 1);
    }

    /// <summary>
    /// A silo's answer counts only as its own update in its own outbox: one naming another silo, a host or a slice of a
    /// shared blob (which only virtual silos have) is that silo's failure, so no silo can make the aggregator read
    /// another's outbox.
    /// </summary>
    internal static IReadOnlyList<SiloCall<SiloUpdate>> OwnUpdates(IReadOnlyList<SiloCall<SiloUpdate>> calls) =>
        calls.Select(c => c.Result is { } u && (u.SiloId != c.SiloId || u.Host is not null || u.Offset is not null)
        ? new SiloCall<SiloUpdate>(c.SiloId, null, new RejectedUpdate(c.SiloId, "train-failed", $"the silo answered with an update of '{u.SiloId}'{(u.Host is null ? string.Empty : $" in '{u.Host}''s outbox")}{(u.Offset is null ? string.Empty : " at an offset")}, not its own"))
        : c).ToArray();

    /// <summary>Whether federated evaluation runs after <paramref name="round"/>.</summary>
    public static bool IsEvaluationRound(RunSpec spec, int round)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return round == spec.Training.Rounds || (spec.Evaluation.EveryRounds > 0 && round % spec.Evaluation.EveryRounds == 0);
    }

    /// <summary>The silos of a round, as sampled, and the sampling rate the accountant needs.</summary>
    internal sealed record SampledRound(IReadOnlyList<string> Silos, double Rate, double? Epsilon, DateTime Started);

    /// <summary>What a round's training gave: the updates that arrived and the silos that failed or were late.</summary>
    internal sealed record TrainedRound(IReadOnlyList<SiloUpdate> Updates, IReadOnlyList<RejectedUpdate> Failures);

    /// <summary>A round's aggregate, and the secure-aggregation attempts that made it.</summary>
    internal sealed record AggregatedRound(AggregateResult Result, IReadOnlyList<SecureAttemptRecord> Attempts);

    /// <summary>A round's evaluation: the summary, the eyes-off reports it was computed from or the secure sum's attempts, and the silos whose evaluation failed.</summary>
    internal sealed record EvaluatedRound(EvaluateSummary? Summary, IReadOnlyList<SiloEvaluation> Reports, IReadOnlyList<RejectedUpdate> Failures, IReadOnlyList<SecureAttemptRecord> Attempts)
    {
        public static EvaluatedRound None { get; } = new(null, [], [], []);
    }

    /// <summary>One execution of the orchestrator: the run's state and the steps of a round.</summary>
    private sealed class TrainingRun
    {
        private readonly TaskOrchestrationContext context;
        private readonly ILogger log;
        private readonly TrainingState input;
        private readonly RunSpec spec;
        private readonly IFederatedStrategy strategy;
        private readonly SiloFanOut silos;
        private readonly SiloPlan plan;
        private readonly IReadOnlyList<string> participants;
        private readonly int inputs;
        private readonly List<RoundSummary> recent;
        private BlobRef global;
        private BlobRef? strategyState;
        private BlobRef? crossSite;
        private readonly BlobRef? script;
        private BlobRef? lastManifest;
        private AuditHead? audit;
        private Task<int>? committing;

        private TrainingRun(TaskOrchestrationContext context, TrainingState input, SiloPlan plan, BlobRef global, BlobRef? lastManifest)
        {
            this.context = context;
            this.input = input;
            this.plan = plan;
            this.global = global;
            this.lastManifest = lastManifest;
            spec = input.Spec;
            log = context.CreateReplaySafeLogger<TrainingOrchestrator>();
            strategy = StrategyCatalog.Create(spec.Strategy);
            strategyState = input.StrategyState;
            script = input.Script;
            inputs = RunSpecValidator.ResolveInputs(spec);
            participants = VirtualSilos.Participants(spec);
            recent = input.Recent.ToList();
            audit = input.Audit;
            silos = new SiloFanOut(context, plan, spec.Checkpoints.Container, spec.Retry, input.Epoch);
            StepsInProcess = plan.Silos.All(p => p.Inline);
        }

        public int TotalRounds => spec.Training.Rounds;

        private PrivacySpec Privacy => spec.Privacy;

        private bool EyesOff => Privacy.Mode == PrivacyModes.EyesOff;

        private bool Secure => Privacy.SecureAggregation is not null;

        /// <summary>Places the run's silos (once per run; carried across continue-as-new) and writes its first checkpoint (once per run).</summary>
        public static async Task<TrainingRun> StartAsync(TaskOrchestrationContext context, TrainingState input)
        {
            var plan = input.Plan ?? await context.CallActivityAsync<SiloPlan>(nameof(PlanSilosActivity), new PlanSilosRequest(input.RunId, input.Spec.Silos), TaskPolicies.StorageRetry);
            if (input.GlobalModel is { } model)
            {
                if (input.Spec.Data is { Standardize: true, Standardization: null })
                {
                    throw new InvalidOperationException($"Run '{input.RunId}' is resumed without its standardization: round 0's manifest records none, and a new one would not match the model.");
                }

                return new TrainingRun(context, input with { Plan = plan }, plan, model, input.LastManifest);
            }

            var spec = input.Spec;
            if (spec.Data is { Standardize: true, Standardization: null })
            {
                context.SetCustomStatus(new RunStatus("standardizing", 0, spec.Training.Rounds, input.Recent));
                spec = spec with { Data = spec.Data with { Standardization = await StandardizeAsync(context, input.RunId, spec) } };
                input = input with { Spec = spec };
            }

            context.SetCustomStatus(new RunStatus("initializing", 0, spec.Training.Rounds, input.Recent));
            var init = await context.CallActivityAsync<InitializeModelResult>(
                nameof(InitializeModelActivity),
                new InitializeModelRequest(input.RunId, spec.Checkpoints.Container, spec.Strategy.Name, spec.Model, RunSpecValidator.ResolveInputs(spec), spec.Data.Classes, spec.Training.Seed, context.CurrentUtcDateTime, input.ResumeFrom, input.NextRound - 1, spec, input.Script),
                TaskPolicies.StorageRetry);
            return new TrainingRun(context, input with { Plan = plan }, plan, init.Model, init.Manifest);
        }

        /// <summary>
        /// Each feature's federated mean and standard deviation over the silos' train splits, by the analysis path (a
        /// sub-orchestration with the run's silos and privacy mode): aggregates only, which every later silo step applies.
        /// </summary>
        private static async Task<FeatureStandardization> StandardizeAsync(TaskOrchestrationContext context, string runId, RunSpec spec)
        {
            var analysis = StandardizationAnalysis.For(runId, spec);
            await context.CallSubOrchestratorAsync<AnalysisOutcome>(
                nameof(AnalysisOrchestrator),
                new AnalysisState(analysis.AnalysisId!, analysis, spec.Checkpoints.Container),
                new SubOrchestrationOptions { InstanceId = analysis.AnalysisId });
            return await context.CallActivityAsync<FeatureStandardization>(
                nameof(ReadStandardizationActivity),
                new ReadStandardizationRequest(spec.Checkpoints.Container, analysis.AnalysisId!, spec.Data.Features!),
                TaskPolicies.StorageRetry);
        }

        /// <summary>Whether ε would exceed the budget in <paramref name="round"/>; if so, the run stops before it (<see cref="StopOnBudget"/>).</summary>
        /// <remarks>The accountant is pure arithmetic on the spec, so it runs here, before any silo works on the round.</remarks>
        public bool BudgetExhausted(int round, SampledRound sampled)
        {
            if (Privacy.DifferentialPrivacy?.EpsilonBudget is not { } budget || sampled.Epsilon is not { } epsilon || epsilon <= budget)
            {
                return false;
            }

            LogBudgetExhausted(log, input.RunId, round, epsilon, budget);
            return true;
        }

        /// <summary>The outcome of a run stopped before <paramref name="round"/> because ε would exceed the budget; every earlier round is committed.</summary>
        public TrainingOutcome StopOnBudget(int round)
        {
            context.SetCustomStatus(new RunStatus("budget-exhausted", round - 1, TotalRounds, recent));
            var final = recent.Count == 0 ? null : recent[^1];
            return new TrainingOutcome(input.RunId, round - 1, global, lastManifest ?? throw new InvalidOperationException("No round was committed."), final?.EvalAccuracy, final?.EvalLoss, "budget-exhausted", final?.Epsilon);
        }

        /// <summary>Samples the round's silos (a simulation's virtual silos) per the participation policy, seeded from the spec and the round.</summary>
        public SampledRound Sample(int round)
        {
            var candidates = strategy.ConfigureFit(round, participants);
            var sampled = spec.Simulation is null
                ? ParticipationPolicy.Sample(candidates, spec.Participation, spec.Training.Seed, round)
                : ParticipationPolicy.SampleVirtual(candidates, spec.Participation, spec.Training.Seed, round);
            var rate = (double)sampled.Count / participants.Count;
            return new SampledRound(sampled, rate, Epsilon(round, rate), context.CurrentUtcDateTime);
        }

        /// <summary>Each sampled silo trains one round on its own compute; the round fails when too few updates arrive.</summary>
        public async Task<TrainedRound> TrainAsync(int round, SampledRound sampled)
        {
            context.SetCustomStatus(new RunStatus("training", round, TotalRounds, recent));
            var calls = spec.Simulation is { } simulation
                ? await TrainVirtualAsync(round, sampled, simulation)
                : OwnUpdates(await silos.RunAsync(
                    sampled.Silos,
                    silo => new SiloStep(Train: new TrainRequest(input.RunId, round, silo, global, spec.Model, spec.Data, spec.Training, inputs, Privacy.Mode, Secure, FitFor(round, silo), script)),
                    r => r.Update,
                    "train-failed",
                    "result",
                    spec.Participation.RoundDeadlineSeconds));
            var failures = calls.Where(c => c.Failure is not null).Select(c => c.Failure!).ToArray();
            foreach (var f in failures)
            {
                LogSiloFailed(log, input.RunId, round, f.SiloId, f.Detail);
            }

            var minimum = ParticipationPolicy.MinimumAccepted(spec.Participation, sampled.Silos.Count);
            var reported = calls.Count - failures.Length;
            if (reported == 0 || reported < minimum)
            {
                throw new NoAcceptedUpdatesException(
                    $"Round {round} of run '{input.RunId}' has {(reported == 0 ? "no update to aggregate" : $"{reported} update(s), below the minimum of {minimum} ({spec.Participation.FailurePolicy})")}: " +
                    string.Join("; ", failures.Select(f => $"{f.SiloId}: {f.Reason} ({f.Detail})")));
            }

            return new TrainedRound(calls.Where(c => c.Result is not null).Select(c => c.Result!).ToArray(), failures);
        }

        /// <summary>A simulation's round: the sampled virtual silos in groups, each group one step on the host, each virtual silo one update.</summary>
        /// <remarks>The strategy's fit configuration is the host's for every virtual silo (FedProx's μ is the same for all).</remarks>
        private async Task<IReadOnlyList<SiloCall<SiloUpdate>>> TrainVirtualAsync(int round, SampledRound sampled, SimulationSpec simulation)
        {
            var host = spec.Silos[0];
            var batches = VirtualSilos.Batches(host, sampled.Silos, simulation);
            var calls = await silos.RunAsync(
                batches.Select(b => new SiloStep(Train: new TrainRequest(input.RunId, round, host, global, spec.Model, spec.Data, spec.Training, inputs, Privacy.Mode, Secure, FitFor(round, host), script, b))).ToArray(),
                r => r.Updates,
                "train-failed",
                "result",
                spec.Participation.RoundDeadlineSeconds);
            return VirtualSiloSteps.Flatten(host, round, batches, calls);
        }

        /// <summary>Aggregates the round's updates into the next global model, plainly or by secure aggregation.</summary>
        public async Task<AggregatedRound> AggregateAsync(int round, SampledRound sampled, TrainedRound trained)
        {
            context.SetCustomStatus(new RunStatus("aggregating", round, TotalRounds, recent));
            var minimum = ParticipationPolicy.MinimumAccepted(spec.Participation, sampled.Silos.Count);
            if (Secure)
            {
                var (result, attempts) = await new SecureAggregationRound(context, log, spec, input.RunId, silos).AggregateAsync(round, global, strategyState, trained.Updates, sampled.Silos.Count, minimum);
                return new AggregatedRound(result, attempts);
            }

            var aggregate = await context.CallActivityAsync<AggregateResult>(
                nameof(AggregateActivity),
                new AggregateRequest(input.RunId, round, spec.Checkpoints.Container, spec.Strategy, global, trained.Updates, minimum, spec.Robustness.MaxNormRatio, Privacy, sampled.Silos.Count, spec.Training.Freeze, strategyState),
                TaskPolicies.StorageRetry);
            return new AggregatedRound(aggregate, []);
        }

        /// <summary>
        /// On evaluation rounds, each silo scores the new model on its test split. Eyes-off, only a mean over enough silos
        /// leaves the summary activity; under secure aggregation, only the masked sum of the silos' metrics leaves the silos.
        /// </summary>
        public async Task<EvaluatedRound> EvaluateAsync(int round, BlobRef model)
        {
            if (!IsEvaluationRound(spec, round))
            {
                return EvaluatedRound.None;
            }

            context.SetCustomStatus(new RunStatus("evaluating", round, TotalRounds, recent));
            var evaluating = strategy.ConfigureEvaluate(round, spec.Silos);
            EvaluateRequest Request(string silo) => new(input.RunId, round, silo, model, spec.Model, spec.Data, inputs, Privacy.Mode, Script: script);
            if (Secure)
            {
                var (secured, failed, attempts) = await new SecureAggregationRound(context, log, spec, input.RunId, silos).EvaluateAsync(round, model, evaluating, Request);
                LogEvaluationFailures(round, failed);
                return new EvaluatedRound(secured, [], failed, attempts);
            }

            var scored = await silos.RunAsync(evaluating, silo => new SiloStep(Evaluate: Request(silo)), r => r.Evaluation, "evaluate-failed", "result", spec.Participation.RoundDeadlineSeconds);
            var failures = scored.Where(s => s.Failure is not null).Select(s => s.Failure!).ToArray();
            LogEvaluationFailures(round, failures);
            if (!EyesOff)
            {
                var ok = scored.Where(s => s.Result?.Outcome is { Examples: > 0 }).Select(s => s.Result!.Outcome!).ToArray();
                return new EvaluatedRound(ok.Length == 0 ? null : strategy.AggregateEvaluate(ok), [], failures, []);
            }

            // The orchestrator sees report references only; the summary exists only over enough silos.
            var reports = scored.Where(s => s.Result?.Report is not null).Select(s => s.Result!).ToArray();
            var summary = reports.Length == 0 ? null : await context.CallActivityAsync<EvaluateSummary?>(
                nameof(SummarizeEvaluationActivity),
                new SummarizeEvaluationRequest(input.RunId, round, strategy.Name, reports, Privacy.MinAggregateSilos),
                TaskPolicies.StorageRetry);
            return new EvaluatedRound(summary, reports, failures, []);
        }

        private void LogEvaluationFailures(int round, IEnumerable<RejectedUpdate> failures)
        {
            foreach (var failure in failures)
            {
                LogEvaluationFailed(log, input.RunId, round, failure.SiloId, failure.Detail);
            }
        }

        /// <summary>
        /// Cross-site evaluation after the last round: the global model and each silo's local model of that round (its
        /// accepted update, published into the run's checkpoints) scored on every silo's test split, one fan-out per model.
        /// </summary>
        /// <remarks>Eyes-on only, without secure aggregation or DP (the validator refuses the rest): local models leave their silos.</remarks>
        public async Task CrossSiteAsync(int round, TrainedRound trained, AggregatedRound aggregated)
        {
            context.SetCustomStatus(new RunStatus("cross-site", round, TotalRounds, recent));
            var accepted = aggregated.Result.Participants.Select(p => p.SiloId).ToHashSet(StringComparer.Ordinal);
            var published = await context.CallActivityAsync<IReadOnlyList<PublishedModel>>(
                nameof(PublishLocalModelsActivity),
                new PublishLocalModelsRequest(input.RunId, spec.Checkpoints.Container, trained.Updates.Where(u => accepted.Contains(u.SiloId)).ToArray()),
                TaskPolicies.StorageRetry);
            // The global model's row is named apart from the round's own evaluation (Of: empty), so its silo jobs are new ones.
            var models = new List<(string Name, BlobRef Model, string? Of)> { (CrossSiteMatrix.Global, aggregated.Result.Model, string.Empty) };
            models.AddRange(published.Select(p => (p.SiloId, p.Model, (string?)p.SiloId)));
            var cells = new List<CrossSiteCell>();
            var failures = new List<CrossSiteFailure>();
            foreach (var (name, model, of) in models)
            {
                var scored = await silos.RunAsync(
                    spec.Silos,
                    silo => new SiloStep(Evaluate: new EvaluateRequest(input.RunId, round, silo, model, spec.Model, spec.Data, inputs, Privacy.Mode, of, script)),
                    r => r.Evaluation,
                    "evaluate-failed",
                    "result",
                    spec.Participation.RoundDeadlineSeconds);
                foreach (var s in scored)
                {
                    if (s.Result?.Outcome is { Examples: > 0 } o)
                    {
                        cells.Add(new CrossSiteCell(name, s.SiloId, o.Examples, o.Loss, (double)o.Correct / o.Examples));
                    }
                    else
                    {
                        failures.Add(new CrossSiteFailure(name, s.SiloId, s.Failure?.Reason ?? "no-examples", s.Failure?.Detail ?? "the silo's test split is empty"));
                    }
                }
            }

            var matrix = new CrossSiteMatrix(input.RunId, round, models.Select(m => m.Name).ToArray(), spec.Silos, cells, failures);
            crossSite = await context.CallActivityAsync<BlobRef>(nameof(WriteCrossSiteActivity), new WriteCrossSiteRequest(spec.Checkpoints.Container, matrix), TaskPolicies.StorageRetry);
        }

        /// <summary>Cross-site evaluation that never fails the run: every round is committed by then, so a storage failure leaves the outcome without a matrix (logged) rather than failing a trained run.</summary>
        public async Task TryCrossSiteAsync(int round, TrainedRound trained, AggregatedRound aggregated)
        {
            try
            {
                await CrossSiteAsync(round, trained, aggregated);
            }
            catch (TaskFailedException ex)
            {
                LogCrossSiteFailed(log, input.RunId, ex.Message);
            }
        }

        /// <summary>
        /// Moves the run on to the round's model and starts writing the round's audit entries, manifest and latest
        /// pointer; <see cref="CommittedAsync"/> waits for them. One commit at most is in flight, and each commit takes
        /// the audit head of the one before.
        /// </summary>
        public void BeginCommit(int round, SampledRound sampled, TrainedRound trained, AggregatedRound aggregated, EvaluatedRound evaluated)
        {
            if (committing is not null)
            {
                throw new InvalidOperationException($"Round {round} of run '{input.RunId}' is committed before the round before it.");
            }

            committing = CommitAsync(round, sampled, trained, aggregated, evaluated);
            global = aggregated.Result.Model;
            strategyState = aggregated.Result.StrategyState;
        }

        /// <summary>
        /// Whether every silo step of the run runs in this process (<see cref="SiloPlacement.Inline"/>). Only then does a
        /// round's commit run beside the next round's training: a job on a provider's compute that a failed commit left
        /// running would keep that compute busy, and such rounds last minutes to days, against the commit's few writes.
        /// </summary>
        public bool StepsInProcess { get; }

        /// <summary>Whether a commit is in flight.</summary>
        public bool CommitPending => committing is not null;

        /// <summary>Waits for the commit in flight, if any, and records its round as the last one committed.</summary>
        public async Task CommittedAsync(StrongBox<int> committed)
        {
            if (committing is { } pending)
            {
                committing = null;
                committed.Value = await pending;
            }
        }

        private async Task<int> CommitAsync(int round, SampledRound sampled, TrainedRound trained, AggregatedRound aggregated, EvaluatedRound evaluated)
        {
            var aggregate = aggregated.Result;
            var evaluation = evaluated.Summary;
            var rejected = trained.Failures.Concat(aggregate.Rejected).ToArray();
            var dp = Privacy.DifferentialPrivacy;
            var manifest = new RoundManifest
            {
                RunId = input.RunId,
                Round = round,
                Strategy = strategy.Name,
                Model = aggregate.Model,
                StrategyState = aggregate.StrategyState,
                Script = script,
                ParentModelSha256 = global.Sha256,
                Sampled = sampled.Silos,
                Participants = aggregate.Participants,
                Rejected = rejected,
                EvaluationFailures = evaluated.Failures,
                Privacy = Privacy.Mode == PrivacyModes.EyesOn && dp is null && !Secure
                    ? null
                    : new RoundPrivacy(Privacy.Mode, dp?.NoiseMultiplier, dp?.ClipNorm, dp is null ? null : sampled.Rate, sampled.Epsilon, dp?.Delta, Secure ? aggregated.Attempts.Single(a => a.Summed).Attempt : null),
                // Eyes-off: example totals are withheld. Silos' counts are fixed, so totals over rounds with different
                // participants would give each silo's count by subtraction.
                Metrics = new RoundMetrics
                {
                    TrainExamples = EyesOff ? null : aggregate.Fit?.Examples,
                    TrainLoss = aggregate.Fit?.Loss,
                    EvalExamples = EyesOff ? null : evaluation?.Examples,
                    EvalLoss = evaluation?.Loss,
                    EvalAccuracy = evaluation?.Accuracy,
                },
                CreatedAt = context.CurrentUtcDateTime,
            };
            context.SetCustomStatus(new RunStatus("committing", round, TotalRounds, recent));
            var drafts = RoundAudit.Drafts(input.RunId, round, Secure ? [] : trained.Updates, rejected, evaluated.Reports, Privacy, spec.Robustness, context.CurrentUtcDateTime, aggregated.Attempts, evaluated.Attempts);
            var committed = await context.CallActivityAsync<CommitRoundResult>(nameof(CommitRoundActivity), new CommitRoundRequest(spec.Checkpoints.Container, manifest, drafts, audit, sampled.Started), TaskPolicies.StorageRetry);
            lastManifest = committed.Manifest;
            audit = committed.Audit;

            var summary = new RoundSummary(
                round,
                aggregate.Participants.Count,
                rejected.Length,
                EyesOff ? null : aggregate.Fit?.Examples,
                aggregate.Fit?.Loss,
                evaluation?.Accuracy,
                evaluation?.Loss,
                (context.CurrentUtcDateTime - sampled.Started).TotalSeconds,
                sampled.Epsilon);
            recent.Add(summary);
            if (recent.Count > RunStatus.RecentWindow)
            {
                recent.RemoveRange(0, recent.Count - RunStatus.RecentWindow);
            }

            LogRoundCommitted(log, input.RunId, round, summary.Participants, rejected.Length, evaluation?.Accuracy ?? double.NaN);
            return round;
        }

        /// <summary>Continues as new when rounds remain (returning null), else completes the run.</summary>
        public TrainingOutcome? Finish(int nextRound)
        {
            if (nextRound <= TotalRounds)
            {
                context.SetCustomStatus(new RunStatus("training", nextRound, TotalRounds, recent));
                context.ContinueAsNew(input with { NextRound = nextRound, GlobalModel = global, Generation = input.Generation + 1, Recent = recent, LastManifest = lastManifest, Audit = audit, StrategyState = strategyState });
                return null;
            }

            var last = recent[^1];
            context.SetCustomStatus(new RunStatus("completed", TotalRounds, TotalRounds, recent));
            return new TrainingOutcome(
                input.RunId,
                TotalRounds,
                global,
                lastManifest ?? throw new InvalidOperationException("The final round committed no manifest."),
                last.EvalAccuracy,
                last.EvalLoss,
                null,
                last.Epsilon,
                crossSite);
        }

        // What the strategy tells one silo for its fit; null (nothing) for plain local training, to keep history small.
        private FitConfig? FitFor(int round, string silo) => strategy.ConfigureSiloFit(round, silo) is var fit && fit != FitConfig.Plain ? fit : null;

        private double? Epsilon(int round, double rate) =>
            Privacy.DifferentialPrivacy is { } dp ? RdpAccountant.GetEpsilon(rate, dp.NoiseMultiplier, dp.Delta, round) : null;
    }

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Run {RunId} stops before round {Round}: epsilon would reach {Epsilon}, over the budget of {Budget}")]
    private static partial void LogBudgetExhausted(ILogger logger, string runId, int round, double epsilon, double budget);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Run {RunId}: cross-site evaluation failed, the run completes without its matrix: {Detail}")]
    private static partial void LogCrossSiteFailed(ILogger logger, string runId, string detail);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: evaluation on silo {SiloId} failed: {Detail}")]
    private static partial void LogEvaluationFailed(ILogger logger, string runId, int round, string siloId, string detail);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: silo {SiloId} failed: {Detail}")]
    private static partial void LogSiloFailed(ILogger logger, string runId, int round, string siloId, string detail);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Run {RunId} round {Round} committed: {Participants} participants, {Rejected} rejected, accuracy {Accuracy}")]
    private static partial void LogRoundCommitted(ILogger logger, string runId, int round, int participants, int rejected, double accuracy);
}
