using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Workflow.Contracts;

/// <summary>Input of the initialize activity: write the run's first checkpoint, the seeded initial model or a copy of <paramref name="From"/>.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Strategy">Strategy name.</param>
/// <param name="Model">Model architecture.</param>
/// <param name="Inputs">Input features.</param>
/// <param name="Classes">Classes.</param>
/// <param name="Seed">Run seed.</param>
/// <param name="CreatedAt">Orchestration time.</param>
/// <param name="From">A checkpoint of an earlier run to copy instead of the seeded model.</param>
/// <param name="Round">The round number of the first checkpoint: 0, or the round a continued run goes on from.</param>
/// <param name="Spec">The run's validated spec, stored beside its checkpoints so that a lost run can be resumed.</param>
public sealed record InitializeModelRequest(string RunId, string Container, string Strategy, ModelSpec Model, int Inputs, int Classes, long Seed, DateTimeOffset CreatedAt, ModelOrigin? From = null, int Round = 0, RunSpec? Spec = null);

/// <summary>Output of the initialize activity.</summary>
public sealed record InitializeModelResult(BlobRef Model, BlobRef Manifest);

/// <summary>Input of the train activity: one silo, one round.</summary>
/// <remarks>
/// Carries the silo id only; the activity resolves the silo's storage and credential from the registry. In
/// <c>eyes-off</c> mode (<paramref name="Privacy"/>) the silo returns no per-silo value: its example count and loss
/// travel inside the update blob, to the aggregator only.
/// </remarks>
public sealed record TrainRequest(string RunId, int Round, string SiloId, BlobRef GlobalModel, ModelSpec Model, DataSpec Data, TrainingSpec Training, int Inputs, string Privacy = PrivacyModes.EyesOn);

/// <summary>Output of the train activity: a reference to the silo's update and its scalar results.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Round">The round.</param>
/// <param name="Update">The update blob in the silo's outbox (no credential in the URI).</param>
/// <param name="Examples">Training examples; null in eyes-off mode (then in the update's metadata).</param>
/// <param name="Loss">Mean train loss of the last local epoch; null in eyes-off mode.</param>
/// <param name="Metrics">Other scalar metrics; null in eyes-off mode.</param>
public sealed record SiloUpdate(string SiloId, int Round, BlobRef Update, long? Examples, double? Loss, IReadOnlyDictionary<string, double>? Metrics);

/// <summary>What one silo's evaluation returns to the orchestrator.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Outcome">The silo's metrics, in eyes-on mode only.</param>
/// <param name="Report">In eyes-off mode: the silo's metrics blob in its outbox, read only by <c>SummarizeEvaluationActivity</c>.</param>
public sealed record SiloEvaluation(string SiloId, EvaluateOutcome? Outcome, BlobRef? Report);

/// <summary>Input of the evaluation summary (eyes-off): the silos' metrics reports, to be aggregated over at least <paramref name="MinSilos"/>.</summary>
public sealed record SummarizeEvaluationRequest(string RunId, int Round, string Strategy, IReadOnlyList<SiloEvaluation> Reports, int MinSilos);

/// <summary>Input of the aggregate activity.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Round">Round being aggregated.</param>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Strategy">Strategy name.</param>
/// <param name="GlobalModel">The model the round started from: the template every update must match.</param>
/// <param name="Updates">Updates to aggregate.</param>
/// <param name="MinAccepted">Fewest updates that must pass every check; fewer fail the round.</param>
/// <param name="MaxNormRatio">The norm screen's limit (<see cref="Core.Specs.RobustnessSpec.MaxNormRatio"/>); null turns it off.</param>
/// <param name="Privacy">The run's privacy settings; null means eyes-on without differential privacy.</param>
/// <param name="Sampled">Silos sampled this round: the fixed denominator of the differentially private average.</param>
public sealed record AggregateRequest(string RunId, int Round, string Container, string Strategy, BlobRef GlobalModel, IReadOnlyList<SiloUpdate> Updates, int MinAccepted = 1, double? MaxNormRatio = null, PrivacySpec? Privacy = null, int Sampled = 0);

/// <summary>Output of the aggregate activity.</summary>
/// <param name="Model">The aggregated model, already in blob.</param>
/// <param name="Participants">Updates that entered, with normalised weights.</param>
/// <param name="Rejected">Updates refused, with reasons.</param>
/// <param name="Fit">Aggregated training metrics. Eyes-off: null when fewer than the minimum silos were aggregated, and its example total is 0 (withheld).</param>
public sealed record AggregateResult(BlobRef Model, IReadOnlyList<Participant> Participants, IReadOnlyList<RejectedUpdate> Rejected, FitSummary? Fit);

/// <summary>Input of the evaluate activity: score a global model on one silo's test split.</summary>
public sealed record EvaluateRequest(string RunId, int Round, string SiloId, BlobRef Model, ModelSpec ModelSpec, DataSpec Data, int Inputs, string Privacy = PrivacyModes.EyesOn);

/// <summary>Input of the commit activity: append the round's audit entries, write its manifest, move the latest pointer.</summary>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Manifest">The round's manifest; the activity sets its <see cref="RoundManifest.Audit"/> head.</param>
/// <param name="Audit">One entry per artifact that left a silo this round, before chaining.</param>
/// <param name="PreviousAudit">The audit head after the previous round; null before the first entry.</param>
public sealed record CommitRoundRequest(string Container, RoundManifest Manifest, IReadOnlyList<AuditDraft>? Audit = null, AuditHead? PreviousAudit = null);

/// <summary>Output of the commit activity.</summary>
public sealed record CommitRoundResult(BlobRef Manifest, AuditHead? Audit);
