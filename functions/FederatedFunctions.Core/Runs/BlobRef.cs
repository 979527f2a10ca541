namespace FederatedFunctions.Core.Runs;

/// <summary>A reference to an immutable blob: where it is, what it hashes to, how big it is.</summary>
/// <remarks>
/// This is what travels through orchestration history instead of payloads. <see cref="Uri"/> never
/// carries a query string (no SAS token); the reader resolves credentials itself. <see cref="Sha256"/> is
/// lowercase hex of the whole blob and is checked on every read.
/// </remarks>
public sealed record BlobRef(string Uri, string Sha256, long Bytes);

/// <summary>A blob did not match the hash or size recorded for it, or is missing.</summary>
public sealed class IntegrityException(string message) : Exception(message);
