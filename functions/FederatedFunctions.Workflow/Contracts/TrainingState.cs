using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Workflow.Contracts;

/// <summary>The input of <see cref="Orchestration.TrainingOrchestrator"/>, and the state it carries across ContinueAsNew.</summary>
/// <remarks>
/// It is stored in orchestration history, so it holds references and scalars only: the validated spec
/// (silo ids, no endpoints or credentials), the next round to run, the current global model as a
/// <see cref="BlobRef"/>, and a bounded window of recent round summaries for the status.
/// </remarks>
/// <param name="RunId">Run id, also the orchestration instance id.</param>
/// <param name="Spec">The validated spec.</param>
/// <param name="NextRound">First round this instance runs (1-based).</param>
/// <param name="GlobalModel">The model <paramref name="NextRound"/> starts from; null before round 0 is written.</param>
/// <param name="Generation">How many times the run has continued as new.</param>
/// <param name="Recent">The newest round summaries, at most <see cref="RunStatus.RecentWindow"/>.</param>
/// <param name="ResumeFrom">A checkpoint of another run to start from instead of the seeded initialisation.</param>
/// <param name="LastManifest">The manifest of the newest committed round.</param>
/// <param name="Audit">The head of the run's audit log after the newest committed round.</param>
/// <param name="Plan">Where each silo's steps run, resolved from the silo registry once per run; null until then.</param>
/// <param name="Script">A torchscript run's module file (its copy beside the run), which every silo step loads; null for the declared kinds.</param>
/// <param name="StrategyState">The strategy's server state after round <c>NextRound - 1</c> (a server optimizer's moments); null before its first step or for strategies without state.</param>
/// <param name="StartedAt">When the run's orchestration first ran (UTC, from the orchestration's clock), carried across ContinueAsNew; a resumed run's is its resume. Null in the input a run is scheduled with, so the first generation's stored input has none (its instance's creation time is the run's start).</param>
/// <param name="Epoch">This start of the run: null for the first, a fresh token (<see cref="Core.Silos.Epochs"/>) for each resume; it is in every silo job's name, so a resume never takes the jobs of the start it replaces.</param>
public sealed record TrainingState(
    string RunId,
    RunSpec Spec,
    int NextRound,
    BlobRef? GlobalModel,
    int Generation,
    IReadOnlyList<RoundSummary> Recent,
    ModelOrigin? ResumeFrom = null,
    BlobRef? LastManifest = null,
    AuditHead? Audit = null,
    SiloPlan? Plan = null,
    string? Epoch = null,
    BlobRef? StrategyState = null,
    BlobRef? Script = null,
    DateTime? StartedAt = null)
{
    /// <summary>The state of a run that has not started.</summary>
    /// <param name="runId">Run id.</param>
    /// <param name="spec">The validated spec.</param>
    /// <param name="resumeFrom">A checkpoint of an earlier run whose model becomes this run's first checkpoint.</param>
    /// <param name="continueNumbering">
    /// True (a spec's <c>resumeFrom</c>): the copy is this run's round <c>r</c> of the origin, and training goes on from
    /// round <c>r + 1</c>. False (recurring training's warm start): the copy is round 0.
    /// </param>
    /// <param name="script">A torchscript run's module file, copied beside the run.</param>
    public static TrainingState Start(string runId, RunSpec spec, ModelOrigin? resumeFrom = null, bool continueNumbering = false, BlobRef? script = null) =>
        new(runId, spec with { RunId = runId }, continueNumbering && resumeFrom is not null ? resumeFrom.Round + 1 : 1, null, 0, [], resumeFrom, Script: script);

    /// <summary>The state that resumes a run whose orchestration was lost, from its latest committed round.</summary>
    /// <param name="runId">Run id.</param>
    /// <param name="spec">The spec the run was started with.</param>
    /// <param name="latest">Its latest checkpoint.</param>
    /// <param name="audit">The audit head in the latest round's manifest.</param>
    /// <param name="epoch">This resume's epoch (<see cref="Core.Silos.Epochs.New"/>).</param>
    /// <param name="strategyState">The strategy state in the latest round's manifest.</param>
    /// <param name="script">The module file in the latest round's manifest (torchscript runs).</param>
    public static TrainingState Resume(string runId, RunSpec spec, LatestPointer latest, AuditHead? audit, string epoch, BlobRef? strategyState = null, BlobRef? script = null)
    {
        ArgumentNullException.ThrowIfNull(latest);
        return new(runId, spec with { RunId = runId }, latest.Round + 1, latest.Model, 0, [], null, latest.Manifest, audit, Epoch: epoch, StrategyState: strategyState, Script: script);
    }
}

/// <summary>What one round produced, as shown in the status and the live view.</summary>
/// <remarks>
/// Scalars only, so that a window of <see cref="RunStatus.RecentWindow"/> summaries stays a few hundred bytes
/// whatever the number of silos (custom status is capped at 16 KB). Who took part and why a silo was refused
/// are in the round's manifest.
/// </remarks>
/// <param name="Round">Round number.</param>
/// <param name="Participants">Updates aggregated.</param>
/// <param name="Rejected">Updates refused or missing (failed, late, or rejected by the aggregator).</param>
/// <param name="Examples">Training examples over accepted updates; null when withheld (eyes-off, too few silos).</param>
/// <param name="TrainLoss">Example-weighted train loss.</param>
/// <param name="EvalAccuracy">Federated evaluation accuracy, when evaluated this round.</param>
/// <param name="EvalLoss">Federated evaluation loss, when evaluated this round.</param>
/// <param name="Seconds">Orchestration time the round took.</param>
/// <param name="Epsilon">Differential privacy ε spent after this round; null without DP.</param>
public sealed record RoundSummary(
    int Round,
    int Participants,
    int Rejected,
    long? Examples,
    double? TrainLoss,
    double? EvalAccuracy,
    double? EvalLoss,
    double Seconds,
    double? Epsilon = null);

/// <summary>The custom status of a training orchestration: progress and the latest metrics.</summary>
/// <param name="Phase">What the run is doing: <c>initializing</c>, <c>training</c>, <c>aggregating</c>, <c>evaluating</c>, <c>committing</c>, <c>cross-site</c> (after the last round, with <c>evaluation.crossSite</c>), <c>completed</c>, or <c>budget-exhausted</c> (stopped before a round would exceed the ε budget).</param>
/// <param name="Round">The round in progress, or the last one committed once completed.</param>
/// <param name="TotalRounds">Rounds the run will do.</param>
/// <param name="Recent">The newest round summaries, oldest first.</param>
public sealed record RunStatus(string Phase, int Round, int TotalRounds, IReadOnlyList<RoundSummary> Recent)
{
    /// <summary>How many round summaries status and state keep.</summary>
    public const int RecentWindow = 10;
}

/// <summary>The output of a completed training orchestration.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Rounds">Rounds completed.</param>
/// <param name="FinalModel">The last round's checkpoint.</param>
/// <param name="FinalManifest">The last round's manifest.</param>
/// <param name="FinalAccuracy">Federated evaluation accuracy of the final model.</param>
/// <param name="FinalLoss">Federated evaluation loss of the final model.</param>
/// <param name="Stopped">Why the run ended before <c>training.rounds</c>: <c>budget-exhausted</c>; null when it ran every round.</param>
/// <param name="Epsilon">ε spent by the run, with differential privacy.</param>
/// <param name="CrossSite">The cross-site evaluation matrix (<see cref="CrossSiteMatrix"/>), when <c>evaluation.crossSite</c> asked for it.</param>
public sealed record TrainingOutcome(string RunId, int Rounds, BlobRef FinalModel, BlobRef FinalManifest, double? FinalAccuracy, double? FinalLoss, string? Stopped = null, double? Epsilon = null, BlobRef? CrossSite = null);
