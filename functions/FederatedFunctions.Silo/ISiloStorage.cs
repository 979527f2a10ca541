using FederatedFunctions.Core.Runs;

namespace FederatedFunctions.Silo;

/// <summary>The parts of a silo's storage, by who may read them.</summary>
public enum SiloArea
{
    /// <summary>The silo's data: read by the silo only, never written by the protocol.</summary>
    Data,

    /// <summary>What the silo keeps to itself (kept updates, masking secret, error details): read and written by the silo only.</summary>
    Private,

    /// <summary>What leaves the silo (updates, reports, job outcomes): written by the silo, read by the orchestrator.</summary>
    Outbox,
}

/// <summary>A silo's storage as the silo sees it, with the silo's own credential.</summary>
/// <remarks>
/// Paths are those of <see cref="BlobLayout"/> (<c>outbox/…</c>, <c>private/…</c>) and of the run spec's data paths. The
/// adapter decides where each area lives (the outbox in its own container, which the orchestrator can read; data and private
/// in the data container, which it cannot). Reads of the orchestrator's blobs (the global model, the job document) go
/// through <see cref="ReadOrchestratorBlobAsync"/>, which checks size and SHA-256.
/// </remarks>
public interface ISiloStorage
{
    /// <summary>The silo.</summary>
    string SiloId { get; }

    /// <summary>A version tag of a blob (its ETag), or null when it does not exist.</summary>
    Task<string?> GetVersionAsync(SiloArea area, string path, CancellationToken cancellationToken);

    /// <summary>Opens a blob for reading, or returns null when it does not exist.</summary>
    Task<Stream?> OpenReadAsync(SiloArea area, string path, CancellationToken cancellationToken);

    /// <summary>A blob's bytes, or null when it does not exist.</summary>
    Task<byte[]?> ReadAsync(SiloArea area, string path, CancellationToken cancellationToken);

    /// <summary>Writes a blob unless it exists: null when this call wrote it, else the bytes already there (first writer wins).</summary>
    Task<byte[]?> WriteIfAbsentAsync(SiloArea area, string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken);

    /// <summary>Writes a blob, replacing it.</summary>
    Task WriteAsync(SiloArea area, string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken);

    /// <summary>Every blob of an area whose path starts with <paramref name="prefix"/> (a flat listing, any depth), with its size and version.</summary>
    /// <remarks>For data laid out as folders (<c>imagefolder</c>); the caller bounds how many it takes.</remarks>
    IAsyncEnumerable<SiloBlobInfo> ListAsync(SiloArea area, string prefix, CancellationToken cancellationToken);

    /// <summary>A blob's URI without any credential, for references that leave the silo.</summary>
    string Uri(SiloArea area, string path);

    /// <summary>Reads a blob of the orchestrator's storage that the silo may read (a global model, a job document) and checks it.</summary>
    /// <exception cref="IntegrityException">It is missing, or its size or SHA-256 differs from the reference.</exception>
    Task<byte[]> ReadOrchestratorBlobAsync(BlobRef blob, CancellationToken cancellationToken);
}

/// <summary>A blob of a listing.</summary>
/// <param name="Path">Its path in the area, as <see cref="ISiloStorage.OpenReadAsync"/> takes it.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Version">Its version tag (ETag), as <see cref="ISiloStorage.GetVersionAsync"/> returns it.</param>
public sealed record SiloBlobInfo(string Path, long Bytes, string Version);
