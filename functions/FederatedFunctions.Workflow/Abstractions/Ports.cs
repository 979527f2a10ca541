using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Abstractions;

/// <summary>The orchestrator's own checkpoint storage.</summary>
/// <remarks>
/// Writes use the deterministic names of <see cref="BlobLayout"/> and overwrite, so they are idempotent.
/// Reads of models verify the SHA-256 in the <see cref="BlobRef"/> and throw <see cref="IntegrityException"/> on mismatch.
/// </remarks>
public interface ICheckpointStore
{
    /// <summary>Writes a round's model and returns its reference.</summary>
    /// <param name="container">Checkpoint container.</param>
    /// <param name="runId">Run id.</param>
    /// <param name="round">Round.</param>
    /// <param name="safetensors">The model.</param>
    /// <param name="firstWriterWins">
    /// True when a re-execution cannot reproduce the bytes (differentially private noise): a model already written is
    /// kept and its reference returned, so that the hash recorded in history always matches the stored blob.
    /// </param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<BlobRef> PutModelAsync(string container, string runId, int round, ReadOnlyMemory<byte> safetensors, bool firstWriterWins, CancellationToken cancellationToken);

    /// <summary>Reads a model blob and verifies its size and hash.</summary>
    Task<ReadOnlyMemory<byte>> ReadModelAsync(BlobRef model, CancellationToken cancellationToken);

    /// <summary>Writes a round's manifest, then moves the run's latest pointer to that round if it is newer.</summary>
    Task<BlobRef> CommitRoundAsync(string container, RoundManifest manifest, CancellationToken cancellationToken);

    /// <summary>The run's latest pointer, or null when the run has no committed round.</summary>
    Task<LatestPointer?> GetLatestAsync(string container, string runId, CancellationToken cancellationToken);

    /// <summary>Every committed round manifest of a run, by round.</summary>
    Task<IReadOnlyList<RoundManifest>> ListAsync(string container, string runId, CancellationToken cancellationToken);

    /// <summary>The manifest of one round, or null when that round was never committed.</summary>
    Task<RoundManifest?> GetManifestAsync(string container, string runId, int round, CancellationToken cancellationToken);

    /// <summary>Stores the run's spec document (<see cref="BlobLayout.Spec"/>), overwriting it.</summary>
    Task PutSpecAsync(string container, string runId, ReadOnlyMemory<byte> specJson, CancellationToken cancellationToken);

    /// <summary>The run's stored spec document, or null.</summary>
    Task<byte[]?> GetSpecAsync(string container, string runId, CancellationToken cancellationToken);

    /// <summary>
    /// Writes one round's audit entries (<see cref="BlobLayout.Audit"/>). A blob with the same bytes is left as it is; a
    /// different one can only come from a commit that never completed (no manifest anchors it), and is replaced.
    /// </summary>
    Task PutAuditAsync(string container, string runId, int round, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken);

    /// <summary>The run's audit log: the entries of every round up to <paramref name="throughRound"/>, in round order, concatenated.</summary>
    /// <remarks>Rounds after the latest committed one are left out: their entries were written by a commit that never completed.</remarks>
    Task<byte[]> ReadAuditAsync(string container, string runId, int throughRound, CancellationToken cancellationToken);
}

/// <summary>Runs training and evaluation inside a silo.</summary>
/// <remarks>
/// An implementation resolves the silo's storage and credential itself, from the silo registry; neither ever
/// appears in a request or a result. It writes the update to the silo's outbox under
/// <see cref="BlobLayout.SiloUpdate"/>, so a retry overwrites the same blob.
/// </remarks>
public interface ISiloBackend
{
    /// <summary>Trains one round on the silo's train split, starting from <paramref name="globalModel"/>.</summary>
    Task<SiloUpdate> TrainAsync(TrainRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken);

    /// <summary>Scores <paramref name="model"/> on the silo's test split; in eyes-off mode the metrics stay in the silo's outbox and only their reference is returned.</summary>
    Task<SiloEvaluation> EvaluateAsync(EvaluateRequest request, ReadOnlyMemory<byte> model, CancellationToken cancellationToken);

    /// <summary>Secure aggregation: the silo's public key for one attempt, derived from a secret that never leaves the silo.</summary>
    /// <remarks>The same request always returns the same key, so a re-executed activity agrees with the history.</remarks>
    Task<MaskingPublicKey> PublishMaskingKeyAsync(MaskingKeyRequest request, CancellationToken cancellationToken);

    /// <summary>Secure aggregation: clips, weights, quantizes and masks the silo's kept update, and writes the masked update to its outbox.</summary>
    /// <remarks>
    /// At most one masked update per attempt: a second request for the same attempt gets the first one back, and a request
    /// with another key exchange for an attempt already masked is refused (a mask is a one-time pad). Refused too once the
    /// silo revealed its self-mask for another attempt of the round.
    /// </remarks>
    Task<MaskedUpdateRef> MaskUpdateAsync(MaskUpdateRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken);

    /// <summary>Secure aggregation: reveals the silo's self-mask seed for an attempt it masked for.</summary>
    /// <remarks>
    /// At most one attempt per round: the silo records the attempt it revealed (first writer wins), reveals that one
    /// again on request, and refuses any other, and it masks for no other attempt of the round afterwards.
    /// </remarks>
    Task<SelfMaskReveal> RevealSelfMaskAsync(RevealSelfMaskRequest request, CancellationToken cancellationToken);
}

/// <summary>The silos this host can reach: the silo registry's ids, never its endpoints or credentials.</summary>
/// <remarks>The API checks a spec's silos against it before anything is scheduled, so a typo in a silo id is refused at start.</remarks>
public interface ISiloCatalog
{
    /// <summary>Whether the registry has an entry for <paramref name="siloId"/>.</summary>
    bool Contains(string siloId);
}

/// <summary>Reads silo updates for the aggregator.</summary>
public interface IUpdateStore
{
    /// <summary>Reads the update blob a silo reported. Throws <see cref="UpdateUnavailableException"/> when it is missing or outside the silo's outbox.</summary>
    Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken);
}

/// <summary>A blob did not match the hash or size recorded for it.</summary>
public sealed class IntegrityException(string message) : Exception(message);

/// <summary>An update blob could not be read.</summary>
public sealed class UpdateUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>No update of a round could be aggregated.</summary>
public sealed class NoAcceptedUpdatesException(string message) : Exception(message);

/// <summary>A checkpoint to resume from does not have the keys, shapes and dtypes of the run's model.</summary>
public sealed class IncompatibleCheckpointException(string message) : Exception(message);

/// <summary>Where recurring training keeps its spec template and the id of its last run, in the orchestrator's storage.</summary>
/// <remarks>Read and written by the timer function only, never by an orchestrator.</remarks>
public interface IRecurringStore
{
    /// <summary>The spec template (JSON), or null when none is stored.</summary>
    Task<byte[]?> ReadTemplateAsync(CancellationToken cancellationToken);

    /// <summary>The id of the last run the timer started, or null.</summary>
    Task<string?> GetLastRunIdAsync(CancellationToken cancellationToken);

    /// <summary>Records the id of the run the timer just started.</summary>
    Task SetLastRunIdAsync(string runId, CancellationToken cancellationToken);
}

/// <summary>Settings of recurring (timer-triggered) training, section <c>Recurring</c>.</summary>
public sealed class RecurringOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Recurring";

    /// <summary>Whether a tick starts anything. The Functions host can also disable the timer function itself.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Container in the orchestrator's storage that holds the template and the timer's state.</summary>
    public string Container { get; set; } = "fl-config";

    /// <summary>Blob path of the spec template inside <see cref="Container"/>.</summary>
    public string TemplateBlob { get; set; } = "recurring/spec.json";

    /// <summary>Blob path of the timer's state (the last run it started) inside <see cref="Container"/>.</summary>
    public string StateBlob { get; set; } = "recurring/state.json";

    /// <summary>Prefix of recurring run ids; the start time follows it (e.g. <c>recurring-20261201-020000</c>).</summary>
    public string RunIdPrefix { get; set; } = "recurring";
}
