using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;

using FederatedFunctions.Core.Silos;

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
/// <param name="Script">A torchscript run's module file: its saved parameters are the first checkpoint.</param>
public sealed record InitializeModelRequest(string RunId, string Container, string Strategy, ModelSpec Model, int Inputs, int Classes, long Seed, DateTimeOffset CreatedAt, ModelOrigin? From = null, int Round = 0, RunSpec? Spec = null, BlobRef? Script = null);

/// <summary>Output of the initialize activity.</summary>
public sealed record InitializeModelResult(BlobRef Model, BlobRef Manifest);

/// <summary>Input of the evaluation summary (eyes-off): the silos' metrics reports, to be aggregated over at least <paramref name="MinSilos"/>.</summary>
public sealed record SummarizeEvaluationRequest(string RunId, int Round, string Strategy, IReadOnlyList<SiloEvaluation> Reports, int MinSilos);

/// <summary>Input of the secure evaluation activity: check one attempt's masked evaluations, or (with the reveals) unmask their sum.</summary>
/// <param name="RunId">The run.</param>
/// <param name="MaskingRun">The masking context's run id of the run's evaluations (<see cref="MaskingAttempt.ForEvaluation"/>).</param>
/// <param name="Round">The round.</param>
/// <param name="Attempt">The attempt of the round's secure sum.</param>
/// <param name="KeyExchange">The attempt's public keys.</param>
/// <param name="Masked">The masked evaluations, one per silo of the key exchange.</param>
/// <param name="Reveals">The silos' self-mask seeds; null to check the masked evaluations before any silo reveals.</param>
/// <param name="Privacy">The run's privacy mode: eyes-off withholds the example total.</param>
/// <param name="MinSilos">Fewest silos that must have scored an example for a summary to exist.</param>
public sealed record SecureEvaluationRequest(string RunId, string MaskingRun, int Round, int Attempt, IReadOnlyList<MaskingPublicKey> KeyExchange, IReadOnlyList<MaskedUpdateRef> Masked, IReadOnlyList<SelfMaskReveal>? Reveals, string Privacy, int MinSilos);

/// <summary>Output of the secure evaluation activity.</summary>
/// <param name="Summed">Whether the sum was unmasked.</param>
/// <param name="Summary">The round's mean loss and accuracy, over at least <see cref="SecureEvaluationRequest.MinSilos"/> silos that scored an example; null when checking, refused, or over fewer.</param>
/// <param name="Refused">Silos whose masked evaluation is missing, altered or not the attempt's.</param>
public sealed record SecureEvaluationResult(bool Summed, EvaluateSummary? Summary, IReadOnlyList<RejectedUpdate> Refused);

/// <summary>Input of the aggregate activity.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Round">Round being aggregated.</param>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Strategy">The strategy and its parameters, whole.</param>
/// <param name="GlobalModel">The model the round started from: the template every update must match.</param>
/// <param name="Updates">Updates to aggregate.</param>
/// <param name="MinAccepted">Fewest updates that must pass every check; fewer fail the round.</param>
/// <param name="MaxNormRatio">The norm screen's limit (<see cref="Core.Specs.RobustnessSpec.MaxNormRatio"/>); null turns it off.</param>
/// <param name="Privacy">The run's privacy settings; null means eyes-on without differential privacy.</param>
/// <param name="Sampled">Silos sampled this round: the fixed denominator of the differentially private average.</param>
/// <param name="Frozen">The layers that do not train (<c>training.freeze</c>): the aggregate keeps the global model's.</param>
/// <param name="StrategyState">The strategy's server state after the previous round; null on the first step, or for strategies without state.</param>
public sealed record AggregateRequest(string RunId, int Round, string Container, StrategySpec Strategy, BlobRef GlobalModel, IReadOnlyList<SiloUpdate> Updates, int MinAccepted = 1, double? MaxNormRatio = null, PrivacySpec? Privacy = null, int Sampled = 0, IReadOnlyList<string>? Frozen = null, BlobRef? StrategyState = null);

/// <summary>Output of the aggregate activity.</summary>
/// <param name="Model">The aggregated model, already in blob.</param>
/// <param name="Participants">Updates that entered, with normalised weights.</param>
/// <param name="Rejected">Updates refused, with reasons.</param>
/// <param name="Fit">Aggregated training metrics. Eyes-off: null when fewer than the minimum silos were aggregated, and its example total is 0 (withheld).</param>
/// <param name="StrategyState">The strategy's server state after the round, which the next round starts from; null for strategies without state.</param>
public sealed record AggregateResult(BlobRef Model, IReadOnlyList<Participant> Participants, IReadOnlyList<RejectedUpdate> Rejected, FitSummary? Fit, BlobRef? StrategyState = null);

/// <summary>Input of the commit activity: append the round's audit entries, write its manifest, move the latest pointer.</summary>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Manifest">The round's manifest; the activity sets its <see cref="RoundManifest.Audit"/> head.</param>
/// <param name="Audit">One entry per artifact that left a silo this round, before chaining.</param>
/// <param name="PreviousAudit">The audit head after the previous round; null before the first entry.</param>
/// <param name="RoundStartedAt">When the round sampled its silos (orchestration time): the start of the round's span.</param>
public sealed record CommitRoundRequest(string Container, RoundManifest Manifest, IReadOnlyList<AuditDraft>? Audit = null, AuditHead? PreviousAudit = null, DateTime? RoundStartedAt = null);

/// <summary>Output of the commit activity.</summary>
public sealed record CommitRoundResult(BlobRef Manifest, AuditHead? Audit);

/// <summary>Input of the secure aggregate activity: unmask the sum of one attempt's masked updates and write the model.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Round">Round.</param>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Strategy">The strategy and its parameters, whole.</param>
/// <param name="GlobalModel">The round's global model.</param>
/// <param name="Attempt">The attempt whose masked updates are summed.</param>
/// <param name="KeyExchange">The attempt's public keys: exactly the silos whose updates must all be summed.</param>
/// <param name="Masked">One masked update per silo of the key exchange.</param>
/// <param name="Encoding">The round's encoding.</param>
/// <param name="Privacy">The run's privacy settings.</param>
/// <param name="Sampled">Silos sampled this round: the denominator of the differentially private average.</param>
/// <param name="ClipNorm">The clipping norm the silos divided their changes by.</param>
/// <param name="Reveals">Every contributor's self-mask seed; null to check the masked updates only, before any silo reveals.</param>
/// <param name="Frozen">The layers that do not train (<c>training.freeze</c>): the aggregate keeps the global model's.</param>
/// <param name="StrategyState">The strategy's server state after the previous round; null on the first step, or for strategies without state.</param>
public sealed record SecureAggregateRequest(
    string RunId,
    int Round,
    string Container,
    StrategySpec Strategy,
    BlobRef GlobalModel,
    int Attempt,
    IReadOnlyList<MaskingPublicKey> KeyExchange,
    IReadOnlyList<MaskedUpdateRef> Masked,
    SecureAggregationEncoding Encoding,
    PrivacySpec Privacy,
    int Sampled,
    double ClipNorm,
    IReadOnlyList<SelfMaskReveal>? Reveals,
    IReadOnlyList<string>? Frozen = null,
    BlobRef? StrategyState = null);

/// <summary>Output of the secure aggregate activity.</summary>
/// <param name="Aggregate">The round's aggregate; null when a masked update was refused, or when only checking.</param>
/// <param name="Refused">Masked updates refused (missing, altered, or labelled for another attempt); their silos are left out of the redo.</param>
public sealed record SecureAggregateResult(AggregateResult? Aggregate, IReadOnlyList<RejectedUpdate> Refused);

/// <summary>One attempt of a round's secure aggregation, as the orchestrator saw it: for the audit trail.</summary>
/// <param name="Attempt">Attempt number.</param>
/// <param name="KeyExchange">The public keys of the attempt.</param>
/// <param name="Masked">The masked updates that arrived.</param>
/// <param name="Summed">Whether this attempt's sum made the round's model.</param>
/// <param name="Left">Silos left out of the next attempt, with reasons.</param>
public sealed record SecureAttemptRecord(int Attempt, IReadOnlyList<MaskingPublicKey> KeyExchange, IReadOnlyList<MaskedUpdateRef> Masked, bool Summed, IReadOnlyList<RejectedUpdate> Left);

/// <summary>Input of the publish activity (cross-site evaluation): copy each silo's local model of a round into the run's checkpoints.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Container">Checkpoint container.</param>
/// <param name="Updates">The round's accepted updates, each read from its silo's outbox and checked against its reference.</param>
public sealed record PublishLocalModelsRequest(string RunId, string Container, IReadOnlyList<SiloUpdate> Updates);

/// <summary>A silo's local model, published for the other silos to score.</summary>
public sealed record PublishedModel(string SiloId, BlobRef Model);

/// <summary>Input of the activity that writes a run's cross-site matrix.</summary>
public sealed record WriteCrossSiteRequest(string Container, CrossSiteMatrix Matrix);

/// <summary>Input of the activity that emits a run's span when the run has ended.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="PrivacyMode">The run's privacy mode.</param>
/// <param name="StartedAt">The run's start (<see cref="TrainingState.StartedAt"/>), in orchestration time.</param>
/// <param name="EndedAt">Its end, in orchestration time.</param>
/// <param name="Outcome"><c>completed</c>, <c>budget-exhausted</c> or <c>failed</c>.</param>
/// <param name="Rounds">The last round committed.</param>
/// <param name="Reason">A failure's reason code (<see cref="Telemetry.FederatedTelemetry.ReasonCode"/>).</param>
/// <param name="Message">A failure's message, in eyes-on runs only; null in eyes-off runs.</param>
public sealed record RunEnded(string RunId, string PrivacyMode, DateTime StartedAt, DateTime EndedAt, string Outcome, int Rounds, string? Reason = null, string? Message = null);
