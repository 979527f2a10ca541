using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Silos;
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

    /// <summary>Writes a round's strategy state (a server optimizer's moments) beside its model.</summary>
    /// <param name="container">Checkpoint container.</param>
    /// <param name="runId">Run id.</param>
    /// <param name="round">Round.</param>
    /// <param name="safetensors">The state.</param>
    /// <param name="firstWriterWins">True when a re-execution cannot reproduce the bytes (DP noise, another secure-aggregation attempt): a state already written is kept.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The reference of the state the round keeps: these bytes, or those a first execution wrote.</returns>
    Task<BlobRef> PutStrategyStateAsync(string container, string runId, int round, ReadOnlyMemory<byte> safetensors, bool firstWriterWins, CancellationToken cancellationToken);

    /// <summary>Reads a model blob (or any safetensors blob of a run, such as strategy state) and verifies its size and hash.</summary>
    /// <remarks>A store may answer with the bytes it wrote itself, when they are the reference's, without reading storage again.</remarks>
    Task<ReadOnlyMemory<byte>> ReadModelAsync(BlobRef model, CancellationToken cancellationToken);

    /// <summary>
    /// Reads a model blob as storage holds it now and verifies its size and hash, for readers that report on storage
    /// itself (the API's download), which must notice a blob lost or changed since it was written.
    /// </summary>
    Task<ReadOnlyMemory<byte>> ReadStoredModelAsync(BlobRef model, CancellationToken cancellationToken);

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

    /// <summary>Writes a silo job's document (<see cref="BlobLayout.SiloJobRequest"/>), which the silo runner reads by reference.</summary>
    Task<BlobRef> PutJobRequestAsync(string container, string runId, int round, string jobName, ReadOnlyMemory<byte> document, CancellationToken cancellationToken);

    /// <summary>Records that a run is being cancelled (or clears it, when it is resumed), so that a silo job submitted in the race is cancelled too.</summary>
    Task SetCancelledAsync(string container, string runId, bool cancelled, CancellationToken cancellationToken);

    /// <summary>Whether the run is marked cancelled.</summary>
    Task<bool> IsCancelledAsync(string container, string runId, CancellationToken cancellationToken);

    /// <summary>The run's audit log: the entries of every round up to <paramref name="throughRound"/>, in round order, concatenated.</summary>
    /// <remarks>Rounds after the latest committed one are left out: their entries were written by a commit that never completed.</remarks>
    Task<byte[]> ReadAuditAsync(string container, string runId, int throughRound, CancellationToken cancellationToken);

    /// <summary>Writes a document of a run or an analysis (e.g. <c>{id}/analysis/result.json</c>), replacing it.</summary>
    Task<BlobRef> PutDocumentAsync(string container, string path, ReadOnlyMemory<byte> document, CancellationToken cancellationToken);

    /// <summary>Reads a document written by <see cref="PutDocumentAsync"/>; null when there is none.</summary>
    Task<byte[]?> GetDocumentAsync(string container, string path, CancellationToken cancellationToken);

    /// <summary>Reads a document with its version (the blob's ETag), for a read-modify-write with <see cref="TryPutDocumentAsync"/>; null when there is none.</summary>
    Task<VersionedDocument?> GetVersionedDocumentAsync(string container, string path, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a document only if it is still at version <paramref name="ifMatch"/>, or, when that is null, only if there is
    /// none (optimistic concurrency: if-match, if-none-match).
    /// </summary>
    /// <returns>The document's reference when written; null when another writer changed or created it first (read it again and retry).</returns>
    Task<BlobRef?> TryPutDocumentAsync(string container, string path, ReadOnlyMemory<byte> document, string? ifMatch, CancellationToken cancellationToken);
}

/// <summary>A document and its version, as read for an optimistic read-modify-write.</summary>
/// <param name="Content">The document's bytes.</param>
/// <param name="Version">An opaque version (the blob's ETag) that changes with every write.</param>
public sealed record VersionedDocument(byte[] Content, string Version);

/// <summary>Where a silo's steps run: the part of the silo protocol that differs per compute (in process, a separate process, Azure ML).</summary>
/// <remarks>
/// <para>A compute submits a job, reads its state and cancels it; what runs inside the job is the same silo runner
/// (<c>FederatedFunctions.Silo</c>) everywhere, with the silo's own credential. Implementations resolve the silo's compute
/// and identity from the silo registry; no credential appears in a job or a status.</para>
/// <para>Submission is idempotent by job name: a re-executed activity finds the job it already submitted instead of starting
/// another. An inline compute (in process) runs the step inside <see cref="StartAsync"/> and returns it completed, or throws
/// the step's exception.</para>
/// </remarks>
public interface ISiloCompute
{
    /// <summary>Submits the job, or finds the one already submitted under its name.</summary>
    /// <param name="job">The job.</param>
    /// <param name="request">The job's document in the orchestrator's storage; null for an inline compute, which needs none.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<SiloJobStatus> StartAsync(SiloJob job, BlobRef? request, CancellationToken cancellationToken);

    /// <summary>Reads the job's state. Collecting its outcome from the silo's outbox is the caller's.</summary>
    Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken);

    /// <summary>Asks the compute to cancel the job; a job that has ended, or was never submitted, is left as it is.</summary>
    Task CancelAsync(SiloJob job, CancellationToken cancellationToken);
}

/// <summary>The silos this host can reach: the silo registry's ids, never its endpoints or credentials.</summary>
/// <remarks>The API checks a spec's silos against it before anything is scheduled, so a typo in a silo id is refused at start.</remarks>
public interface ISiloCatalog
{
    /// <summary>Whether the registry has an entry for <paramref name="siloId"/>.</summary>
    bool Contains(string siloId);

    /// <summary>The trainer the silo's compute runs, for the eyes-off allow-list.</summary>
    /// <exception cref="ArgumentException">The silo is not in the registry.</exception>
    Core.Silos.TrainerIdentity Trainer(string siloId);

    /// <summary>Where the silo's steps run.</summary>
    /// <exception cref="ArgumentException">The silo is not in the registry, or names a compute kind this host does not have.</exception>
    SiloPlacement Placement(string siloId);

    /// <summary>The silo's compute.</summary>
    /// <exception cref="ArgumentException">As <see cref="Placement"/>.</exception>
    ISiloCompute Compute(string siloId);
}

/// <summary>Reads silo outboxes for the orchestrator's side: updates, evaluation reports, masked updates, job outcomes.</summary>
/// <remarks>Reads use the orchestrator's own grant on each silo's outbox, never the silo's credential, and never leave the outbox.</remarks>
public interface IUpdateStore
{
    /// <summary>Reads the update blob a silo reported. Throws <see cref="UpdateUnavailableException"/> when it is missing or outside the silo's outbox.</summary>
    Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken);

    /// <summary>
    /// Reads <see cref="BlobRef.Bytes"/> bytes from <paramref name="offset"/> of the blob a silo reported (an update inside a
    /// blob of several, <see cref="Core.Silos.SiloUpdate.Offset"/>), or fewer when the blob ends first. Throws
    /// <see cref="UpdateUnavailableException"/> as <see cref="ReadUpdateAsync"/> does.
    /// </summary>
    /// <remarks>The default reads the whole blob and slices it; a store over real storage reads the range alone.</remarks>
    async Task<ReadOnlyMemory<byte>> ReadUpdateRangeAsync(string siloId, BlobRef update, long offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (offset < 0 || update.Bytes <= 0)
        {
            throw new UpdateUnavailableException($"silo '{siloId}': update at offset {offset} of {update.Bytes} bytes is not a range of a blob");
        }

        var whole = await ReadUpdateAsync(siloId, update, cancellationToken).ConfigureAwait(false);
        return offset > whole.Length ? ReadOnlyMemory<byte>.Empty : whole.Slice((int)offset, (int)Math.Min(update.Bytes, whole.Length - offset));
    }

    /// <summary>
    /// Opens the update a silo reported for reading in order, without holding it: the whole blob, or <see cref="BlobRef.Bytes"/>
    /// bytes from <paramref name="offset"/> when given (fewer when the blob ends first). Throws
    /// <see cref="UpdateUnavailableException"/> as <see cref="ReadUpdateAsync"/> does; nothing is checked against the reference.
    /// </summary>
    /// <remarks>The default reads the bytes first and serves them from memory; a store over real storage streams the download.</remarks>
    async Task<Stream> OpenUpdateAsync(string siloId, BlobRef update, long? offset, CancellationToken cancellationToken)
    {
        var bytes = offset is { } at
            ? await ReadUpdateRangeAsync(siloId, update, at, cancellationToken).ConfigureAwait(false)
            : await ReadUpdateAsync(siloId, update, cancellationToken).ConfigureAwait(false);
        var array = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes, out var segment) ? segment : new ArraySegment<byte>(bytes.ToArray());
        return new MemoryStream(array.Array!, array.Offset, array.Count, writable: false, publiclyVisible: true);
    }

    /// <summary>Reads a blob of the silo's outbox by its <see cref="BlobLayout"/> path (<c>outbox/…</c>), or null when it does not exist.</summary>
    Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken);
}

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
    /// <exception cref="InvalidDataException">The state is stored but cannot be read (it is not the state's JSON).</exception>
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
