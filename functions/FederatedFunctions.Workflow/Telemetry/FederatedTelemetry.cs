using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Telemetry;

/// <summary>The workflow's traces and metrics: one <see cref="ActivitySource"/> and one <see cref="Meter"/>, both named <see cref="Name"/>.</summary>
/// <remarks>
/// <para>A run lasts days across processes and restarts, and its orchestrator replays, so no span stays open for it and
/// orchestrator code opens none. Each span is emitted whole, with its start and end times, by the activity that sees it
/// end: a silo step's by the activity that ran or collected it, the aggregation's by the aggregation activity, a round's by
/// its commit (from the round's start in orchestration time to its commit), the run's by <c>RecordRunActivity</c> when the
/// run completes, stops or fails. Ids are derived from the run id (<see cref="TraceId"/>, <see cref="RunSpanId"/>,
/// <see cref="RoundSpanId"/>), so every process emits into the run's one trace and a child names its parent before the
/// parent is emitted.</para>
/// <para>Activities run at least once: a re-executed step, aggregation or commit emits its span again. A round's and the
/// run's spans keep their ids when emitted again; a silo step's or aggregation's second span is a second execution.</para>
/// <para>Privacy: every span and metric carries ids (run, round, silo), the step's kind, an outcome and a reason code, and the
/// run's privacy mode. A silo's own values (its example count, loss, accuracy) are added in eyes-on runs only; a round's
/// aggregates only as its manifest records them for its mode (eyes-off: no example total, and means only over enough
/// silos). Durations are recorded in both modes. Failure messages go into a span's status in eyes-on runs only.</para>
/// <para>With no listener (no exporter configured), emitting costs a check per call.</para>
/// </remarks>
public static class FederatedTelemetry
{
    /// <summary>The name of the activity source and of the meter: what a host adds to its tracer and meter providers.</summary>
    public const string Name = "FederatedFunctions";

    private static readonly string? Version = typeof(FederatedTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    private static readonly ActivitySource Source = new(Name, Version);

    private static readonly Meter Meter = new(Name, Version);

    private static readonly Histogram<double> RoundDuration = Meter.CreateHistogram<double>(
        "fl.round.duration", "s", "A round's time, from sampling its silos to its commit, in orchestration time.");

    private static readonly Histogram<double> SiloLatency = Meter.CreateHistogram<double>(
        "fl.silo.latency", "s", "A silo step's time: its run inside an activity (in-process compute), or from submission to collection (remote compute).");

    private static readonly Counter<long> Rejections = Meter.CreateCounter<long>(
        "fl.rejections", "{update}", "Silos left out of a committed round (failed, late, refused by the aggregator), by reason.");

    private static readonly Histogram<double> AggregationThroughput = Meter.CreateHistogram<double>(
        "fl.aggregation.throughput", "By/s", "Bytes of updates an aggregation read, per second of the aggregation activity.");

    // The W3C ids of an Activity are private; durabletask-dotnet and the Functions worker set the span id the same way.
    // Should a runtime rename them, run and round spans keep their random ids (their children then point at ids no span
    // has): telemetry degrades, training never fails for it.
    private static readonly FieldInfo? SpanIdField = typeof(Activity).GetField("_spanId", BindingFlags.NonPublic | BindingFlags.Instance);

    private static readonly FieldInfo? IdField = typeof(Activity).GetField("_id", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>The trace of a run: the first 16 bytes of SHA-256 of its id.</summary>
    public static ActivityTraceId TraceId(string runId) => ActivityTraceId.CreateFromBytes(Hash("trace", runId)[..16]);

    /// <summary>The run's own span: its id in every process.</summary>
    public static ActivitySpanId RunSpanId(string runId) => ActivitySpanId.CreateFromBytes(Hash("run", runId)[..8]);

    /// <summary>A round's span, the parent of the round's silo steps and aggregation.</summary>
    public static ActivitySpanId RoundSpanId(string runId, int round) => ActivitySpanId.CreateFromBytes(Hash("round", runId, round.ToString(CultureInfo.InvariantCulture))[..8]);

    /// <summary>
    /// Emits a silo step's span (<c>fl.silo.{kind}</c>, a child of its round's) and records its latency. Analysis passes
    /// are not traced.
    /// </summary>
    /// <param name="job">The job that ran the step.</param>
    /// <param name="started">When the step started: in this process, or its submission.</param>
    /// <param name="ended">When it ended, or was seen to have ended.</param>
    /// <param name="status">Its final state; the step's values are read from its result in eyes-on runs only.</param>
    public static void SiloStepEnded(SiloJob job, DateTimeOffset started, DateTimeOffset ended, SiloJobStatus status)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(status);
        var outcome = status.State switch
        {
            SiloJobState.Completed => Outcomes.Completed,
            SiloJobState.Canceled => Outcomes.Canceled,
            _ => Outcomes.Failed,
        };
        SiloStepEnded(job, started, ended, outcome, status.State == SiloJobState.Completed ? null : status.Failure ?? SiloFailures.Failed, status.Detail, status.Result);
    }

    /// <summary>Emits the span of a silo step that threw, and records its latency.</summary>
    public static void SiloStepFailed(SiloJob job, DateTimeOffset started, DateTimeOffset ended, Exception error)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(error);
        SiloStepEnded(job, started, ended, Outcomes.Failed, error is DataValidationException ? SiloFailures.BadData : SiloFailures.Failed, error.Message, null);
    }

    /// <summary>Traces one aggregation (plain, or a secure aggregation's check or sum) and records its throughput.</summary>
    /// <param name="scope">Run, round, privacy mode and what is read.</param>
    /// <param name="aggregate">The aggregation.</param>
    /// <param name="counts">Participants and rejections of its result.</param>
    public static async Task<T> AggregateAsync<T>(AggregationScope scope, Func<Task<T>> aggregate, Func<T, (int Participants, int Rejected)> counts)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(aggregate);
        ArgumentNullException.ThrowIfNull(counts);
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var span = Source.StartActivity("fl.aggregate", ActivityKind.Internal, RoundContext(scope.RunId, scope.Round), Common(scope.RunId, scope.PrivacyMode), startTime: started);
        span?.SetTag(Tags.Round, scope.Round)
            .SetTag(Tags.Phase, scope.Phase)
            .SetTag(Tags.Updates, scope.Updates)
            .SetTag(Tags.Bytes, scope.Bytes);
        try
        {
            var result = await aggregate().ConfigureAwait(false);
            var (participants, rejected) = counts(result);
            span?.SetTag(Tags.Outcome, Outcomes.Completed).SetTag(Tags.Participants, participants).SetTag(Tags.Rejected, rejected);
            var seconds = clock.Elapsed.TotalSeconds;
            if (seconds > 0)
            {
                AggregationThroughput.Record(scope.Bytes / seconds, Common(scope.RunId, scope.PrivacyMode).Append(new(Tags.Phase, scope.Phase)).ToArray());
            }

            return result;
        }
        catch (Exception ex)
        {
            span?.SetTag(Tags.Outcome, Outcomes.Failed).SetTag(Tags.Reason, ReasonCode(ex));
            span?.SetStatus(ActivityStatusCode.Error, scope.PrivacyMode == PrivacyModes.EyesOn ? Redaction.Redact(ex.Message) : null);
            throw;
        }
        finally
        {
            span?.Dispose();
        }
    }

    /// <summary>
    /// Emits a committed round's span (<c>fl.round</c>: from <paramref name="roundStarted"/> to the manifest's time, a child
    /// of the run's), with an event per silo left out, and records the round's duration and rejections.
    /// </summary>
    /// <param name="manifest">The committed manifest: its metrics are already what the run's privacy mode shows.</param>
    /// <param name="roundStarted">When the round sampled its silos, in orchestration time; null emits nothing (a request from before telemetry).</param>
    public static void RoundCommitted(RoundManifest manifest, DateTime? roundStarted)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (roundStarted is not { } start)
        {
            return;
        }

        var mode = manifest.Privacy?.Mode ?? PrivacyModes.EyesOn;
        var common = Common(manifest.RunId, mode);
        var ended = manifest.CreatedAt;
        RoundDuration.Record((ended - start).TotalSeconds, common);
        foreach (var rejected in manifest.Rejected)
        {
            Rejections.Add(1, common.Append(new(Tags.SiloId, rejected.SiloId)).Append(new(Tags.Reason, rejected.Reason)).ToArray());
        }

        using var span = Emit("fl.round", RunContext(manifest.RunId), RoundSpanId(manifest.RunId, manifest.Round), common, start);
        if (span is null)
        {
            return;
        }

        span.SetTag(Tags.Round, manifest.Round)
            .SetTag(Tags.Outcome, Outcomes.Completed)
            .SetTag(Tags.Strategy, manifest.Strategy)
            .SetTag(Tags.Sampled, manifest.Sampled.Count)
            .SetTag(Tags.Participants, manifest.Participants.Count)
            .SetTag(Tags.Rejected, manifest.Rejected.Count)
            .SetTag(Tags.TrainExamples, mode == PrivacyModes.EyesOn ? manifest.Metrics.TrainExamples : null)
            .SetTag(Tags.TrainLoss, manifest.Metrics.TrainLoss)
            .SetTag(Tags.EvalLoss, manifest.Metrics.EvalLoss)
            .SetTag(Tags.EvalAccuracy, manifest.Metrics.EvalAccuracy)
            .SetTag(Tags.Epsilon, manifest.Privacy?.Epsilon);
        foreach (var rejected in manifest.Rejected)
        {
            span.AddEvent(new ActivityEvent("fl.rejected", ended, new ActivityTagsCollection { [Tags.SiloId] = rejected.SiloId, [Tags.Reason] = rejected.Reason }));
        }

        span.SetEndTime(ended.UtcDateTime);
    }

    /// <summary>Emits the run's span (<c>fl.run</c>, the root of its trace) when it has completed, stopped or failed.</summary>
    public static void RunEnded(RunEnded run)
    {
        ArgumentNullException.ThrowIfNull(run);
        using var span = Emit("fl.run", new ActivityContext(TraceId(run.RunId), default, ActivityTraceFlags.Recorded), RunSpanId(run.RunId), Common(run.RunId, run.PrivacyMode), run.StartedAt);
        if (span is null)
        {
            return;
        }

        span.SetTag(Tags.Outcome, run.Outcome).SetTag(Tags.Rounds, run.Rounds).SetTag(Tags.Reason, run.Reason);
        if (run.Outcome == Outcomes.Failed)
        {
            span.SetStatus(ActivityStatusCode.Error, run.PrivacyMode == PrivacyModes.EyesOn ? Redaction.Redact(run.Message) : null);
        }

        span.SetEndTime(run.EndedAt);
    }

    /// <summary>The reason code of an exception: the name of its type (a task failure's: the type of what failed it), without <c>Exception</c>.</summary>
    public static string ReasonCode(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var type = error is Microsoft.DurableTask.TaskFailedException failed ? failed.FailureDetails.ErrorType : error.GetType().FullName ?? error.GetType().Name;
        var name = type[(type.LastIndexOf('.') + 1)..];
        return name.EndsWith(nameof(Exception), StringComparison.Ordinal) && name.Length > nameof(Exception).Length ? name[..^nameof(Exception).Length] : name;
    }

    private static void SiloStepEnded(SiloJob job, DateTimeOffset started, DateTimeOffset ended, string outcome, string? reason, string? detail, SiloStepResult? result)
    {
        var step = job.Step;
        if (step.Kind == SiloStepKinds.Analyze)
        {
            return;
        }

        var eyesOn = step.Privacy == PrivacyModes.EyesOn;
        var common = Common(step.RunId, step.Privacy);
        SiloLatency.Record(
            (ended - started).TotalSeconds,
            common.Append(new(Tags.SiloId, step.SiloId)).Append(new(Tags.Step, step.Kind)).Append(new(Tags.Outcome, outcome)).ToArray());
        using var span = Source.StartActivity("fl.silo." + step.Kind, ActivityKind.Internal, RoundContext(step.RunId, step.Round), common, startTime: started);
        if (span is null)
        {
            return;
        }

        span.SetTag(Tags.Round, step.Round)
            .SetTag(Tags.SiloId, step.SiloId)
            .SetTag(Tags.Step, step.Kind)
            .SetTag(Tags.Job, job.Name)
            .SetTag(Tags.JobAttempt, job.Attempt)
            .SetTag(Tags.SecureAttempt, step.SecureAttempt)
            .SetTag(Tags.Outcome, outcome)
            .SetTag(Tags.Reason, reason);
        if (outcome == Outcomes.Failed)
        {
            span.SetStatus(ActivityStatusCode.Error, eyesOn ? Redaction.Redact(detail) : null);
        }

        if (eyesOn && result is not null)
        {
            AddSiloValues(span, result);
        }

        span.SetEndTime(ended.UtcDateTime);
    }

    // One silo's own values: the caller adds them in eyes-on runs only.
    private static void AddSiloValues(Activity span, SiloStepResult result)
    {
        if (result.Update is { } update)
        {
            span.SetTag(Tags.Examples, update.Examples).SetTag(Tags.Loss, update.Loss);
        }

        if (result.Updates is { } updates)
        {
            span.SetTag(Tags.VirtualSilos, updates.Count).SetTag(Tags.Examples, updates.Sum(u => u.Examples ?? 0));
        }

        if (result.Evaluation?.Outcome is { } scored)
        {
            span.SetTag(Tags.Examples, scored.Examples).SetTag(Tags.Loss, scored.Loss).SetTag(Tags.Accuracy, scored.Examples == 0 ? null : (double)scored.Correct / scored.Examples);
        }
    }

    // A span whose id is fixed (a run's, a round's): started with the given start time, its random id then replaced.
    private static Activity? Emit(string name, ActivityContext parent, ActivitySpanId spanId, IEnumerable<KeyValuePair<string, object?>> tags, DateTimeOffset started)
    {
        var span = Source.StartActivity(name, ActivityKind.Internal, parent, tags, startTime: started);
        if (span is not null && SpanIdField is not null && IdField is not null)
        {
            SpanIdField.SetValue(span, spanId.ToHexString());
            IdField.SetValue(span, null);
        }

        return span;
    }

    private static ActivityContext RunContext(string runId) => new(TraceId(runId), RunSpanId(runId), ActivityTraceFlags.Recorded);

    private static ActivityContext RoundContext(string runId, int round) => new(TraceId(runId), RoundSpanId(runId, round), ActivityTraceFlags.Recorded);

    private static KeyValuePair<string, object?>[] Common(string runId, string privacyMode) => [new(Tags.RunId, runId), new(Tags.PrivacyMode, privacyMode)];

    private static byte[] Hash(params string[] parts) => SHA256.HashData(Encoding.UTF8.GetBytes(Name + "\n" + string.Join('\n', parts)));

    /// <summary>Outcomes, the values of <see cref="Tags.Outcome"/>.</summary>
    public static class Outcomes
    {
        /// <summary>Ended as asked.</summary>
        public const string Completed = "completed";

        /// <summary>Failed.</summary>
        public const string Failed = "failed";

        /// <summary>Cancelled.</summary>
        public const string Canceled = "canceled";
    }

    /// <summary>The tag names of the spans and metrics.</summary>
    public static class Tags
    {
        /// <summary>The run id.</summary>
        public const string RunId = "fl.run_id";

        /// <summary>The run's privacy mode: <c>eyes-on</c> or <c>eyes-off</c>.</summary>
        public const string PrivacyMode = "fl.privacy_mode";

        /// <summary>The round.</summary>
        public const string Round = "fl.round";

        /// <summary>The silo id.</summary>
        public const string SiloId = "fl.silo_id";

        /// <summary>The silo step's kind: train, evaluate, key, mask, reveal.</summary>
        public const string Step = "fl.step";

        /// <summary>The silo job's name.</summary>
        public const string Job = "fl.job";

        /// <summary>The silo job's attempt, from 1.</summary>
        public const string JobAttempt = "fl.job_attempt";

        /// <summary>The secure-aggregation attempt of a key, mask or reveal step.</summary>
        public const string SecureAttempt = "fl.secure_attempt";

        /// <summary><see cref="Outcomes"/>, or a run's <c>budget-exhausted</c>.</summary>
        public const string Outcome = "fl.outcome";

        /// <summary>A reason code: a rejection's (<c>late</c>, <c>train-failed</c>, <c>non-finite</c>, …), a failure's category or type.</summary>
        public const string Reason = "fl.reason";

        /// <summary>The aggregation's phase: <c>aggregate</c>, or secure aggregation's <c>check</c> and <c>sum</c>.</summary>
        public const string Phase = "fl.phase";

        /// <summary>Updates the aggregation was given.</summary>
        public const string Updates = "fl.updates";

        /// <summary>Bytes of updates the aggregation read.</summary>
        public const string Bytes = "fl.bytes";

        /// <summary>The strategy.</summary>
        public const string Strategy = "fl.strategy";

        /// <summary>Silos sampled for the round.</summary>
        public const string Sampled = "fl.sampled";

        /// <summary>Updates aggregated.</summary>
        public const string Participants = "fl.participants";

        /// <summary>Silos left out.</summary>
        public const string Rejected = "fl.rejected";

        /// <summary>Rounds the run committed.</summary>
        public const string Rounds = "fl.rounds";

        /// <summary>The round's training examples (eyes-on only).</summary>
        public const string TrainExamples = "fl.train_examples";

        /// <summary>The round's mean train loss, as its manifest shows it.</summary>
        public const string TrainLoss = "fl.train_loss";

        /// <summary>The round's federated evaluation loss, as its manifest shows it.</summary>
        public const string EvalLoss = "fl.eval_loss";

        /// <summary>The round's federated evaluation accuracy, as its manifest shows it.</summary>
        public const string EvalAccuracy = "fl.eval_accuracy";

        /// <summary>ε spent after the round, with differential privacy.</summary>
        public const string Epsilon = "fl.epsilon";

        /// <summary>One silo's examples in its step (eyes-on only).</summary>
        public const string Examples = "fl.silo.examples";

        /// <summary>One silo's loss in its step (eyes-on only).</summary>
        public const string Loss = "fl.silo.loss";

        /// <summary>One silo's accuracy in its evaluation (eyes-on only).</summary>
        public const string Accuracy = "fl.silo.accuracy";

        /// <summary>Virtual silos trained by a simulation's step (eyes-on only).</summary>
        public const string VirtualSilos = "fl.silo.virtual_silos";
    }
}

/// <summary>What an aggregation span describes.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Round">The round.</param>
/// <param name="PrivacyMode">The run's privacy mode.</param>
/// <param name="Phase"><c>aggregate</c>, or secure aggregation's <c>check</c> or <c>sum</c>.</param>
/// <param name="Updates">Updates (or masked updates) given.</param>
/// <param name="Bytes">Their bytes.</param>
public sealed record AggregationScope(string RunId, int Round, string PrivacyMode, string Phase, int Updates, long Bytes);
