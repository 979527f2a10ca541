namespace FederatedFunctions.Core.Runs;

/// <summary>The <c>manifest.json</c> written beside each round's <c>model.safetensors</c>.</summary>
/// <remarks>
/// A manifest is written once per round, after the model blob, and the run's <c>latest.json</c> pointer moves
/// only after the manifest exists: a reader that follows the pointer never finds a half-written round.
/// Round 0 is the seeded initial model, with no participants.
/// </remarks>
public sealed record RoundManifest
{
    /// <summary>Manifest format version.</summary>
    public int Version { get; init; } = 1;

    /// <summary>The run id.</summary>
    public required string RunId { get; init; }

    /// <summary>Round number; 0 is the seeded initial model.</summary>
    public required int Round { get; init; }

    /// <summary>Strategy name.</summary>
    public required string Strategy { get; init; }

    /// <summary>The aggregated model of this round.</summary>
    public required BlobRef Model { get; init; }

    /// <summary>A torchscript run's module file (its copy, checked against <c>model.script.sha256</c>), which every silo loads; null for the declared kinds.</summary>
    public BlobRef? Script { get; init; }

    /// <summary>The strategy's server state after this round (a server optimizer's moments), which the next round starts from; null for strategies without state.</summary>
    public BlobRef? StrategyState { get; init; }

    /// <summary>SHA-256 of the global model the round started from; null for round 0.</summary>
    public string? ParentModelSha256 { get; init; }

    /// <summary>For round 0 of a resumed run: the checkpoint of the earlier run it started from.</summary>
    public ModelOrigin? ResumedFrom { get; init; }

    /// <summary>The silos the participation policy sampled for this round.</summary>
    public IReadOnlyList<string> Sampled { get; init; } = [];

    /// <summary>Updates that entered the aggregate.</summary>
    public IReadOnlyList<Participant> Participants { get; init; } = [];

    /// <summary>Updates refused, each with its reason.</summary>
    public IReadOnlyList<RejectedUpdate> Rejected { get; init; } = [];

    /// <summary>Silos whose evaluation of the new model failed; the round's evaluation metrics leave them out.</summary>
    public IReadOnlyList<RejectedUpdate> EvaluationFailures { get; init; } = [];

    /// <summary>Aggregated metrics of the round.</summary>
    public RoundMetrics Metrics { get; init; } = new();

    /// <summary>The privacy mode and differential privacy of the round; null for eyes-on runs without DP.</summary>
    public RoundPrivacy? Privacy { get; init; }

    /// <summary>Round 0 only: the feature standardization every silo applies for the whole run (<c>data.standardize</c>), or null.</summary>
    public Specs.FeatureStandardization? Standardization { get; init; }

    /// <summary>The run's audit log head after this round: anchors the log against truncation.</summary>
    public AuditHead? Audit { get; init; }

    /// <summary>Orchestration time at which the round was committed (UTC).</summary>
    public required DateTimeOffset CreatedAt { get; init; }
}

/// <summary>One update that entered a round's aggregate.</summary>
/// <param name="SiloId">The silo that produced it.</param>
/// <param name="Examples">Training examples it was computed on; null in eyes-off mode.</param>
/// <param name="UpdateSha256">SHA-256 of the update blob, verified before aggregation.</param>
/// <param name="Weight">Normalised aggregation weight (weights of a round sum to 1); null in eyes-off mode.</param>
public sealed record Participant(string SiloId, long? Examples, string UpdateSha256, double? Weight);

/// <summary>The privacy applied to a round.</summary>
/// <param name="Mode"><c>eyes-on</c> or <c>eyes-off</c>.</param>
/// <param name="NoiseMultiplier">DP noise multiplier z; null without DP.</param>
/// <param name="ClipNorm">DP clipping norm C; null without DP.</param>
/// <param name="SampleRate">Fraction of silos sampled per round, the accountant's q; null without DP.</param>
/// <param name="Epsilon">ε spent by the run after this round, for <paramref name="Delta"/>; null without DP.</param>
/// <param name="Delta">The δ of <paramref name="Epsilon"/>.</param>
/// <param name="SecureAggregationAttempt">With secure aggregation: the attempt whose masked sum made the model (0 is the first; more after dropouts); null without.</param>
public sealed record RoundPrivacy(string Mode, double? NoiseMultiplier = null, double? ClipNorm = null, double? SampleRate = null, double? Epsilon = null, double? Delta = null, int? SecureAggregationAttempt = null);

/// <summary>The head of a run's audit log: the sequence number and hash of its last entry.</summary>
public sealed record AuditHead(long Sequence, string Hash);

/// <summary>An update that did not enter the aggregate.</summary>
/// <param name="SiloId">The silo it came from.</param>
/// <param name="Reason">Stable reason code, e.g. <c>sha256-mismatch</c>, <c>non-finite</c>, <c>shape-mismatch</c>, <c>train-failed</c>.</param>
/// <param name="Detail">Human-readable detail.</param>
public sealed record RejectedUpdate(string SiloId, string Reason, string Detail);

/// <summary>Metrics aggregated over the silos of one round. Null where not measured this round.</summary>
public sealed record RoundMetrics
{
    /// <summary>Examples used for training this round, summed over accepted updates.</summary>
    public long? TrainExamples { get; init; }

    /// <summary>Example-weighted mean of the silos' final-epoch train loss.</summary>
    public double? TrainLoss { get; init; }

    /// <summary>Examples scored in federated evaluation.</summary>
    public long? EvalExamples { get; init; }

    /// <summary>Example-weighted mean test loss of the new global model.</summary>
    public double? EvalLoss { get; init; }

    /// <summary>Example-weighted test accuracy of the new global model, in [0, 1].</summary>
    public double? EvalAccuracy { get; init; }
}

/// <summary>The <c>latest.json</c> pointer of a run: its newest committed round.</summary>
/// <param name="RunId">The run id.</param>
/// <param name="Round">Newest committed round.</param>
/// <param name="Model">That round's model.</param>
/// <param name="Manifest">That round's manifest blob.</param>
public sealed record LatestPointer(string RunId, int Round, BlobRef Model, BlobRef Manifest);

/// <summary>A checkpoint of one run that another run starts from.</summary>
/// <param name="RunId">The earlier run.</param>
/// <param name="Round">Its round.</param>
/// <param name="Model">That round's model.</param>
public sealed record ModelOrigin(string RunId, int Round, BlobRef Model);
