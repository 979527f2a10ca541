namespace FederatedFunctions.Core.Audit;

/// <summary>Builds and verifies the hash chain of a run's audit log.</summary>
/// <remarks>
/// <para>
/// <b>Canonical serialization.</b> An entry's hash is <c>lowercase-hex(SHA-256(UTF-8(C)))</c> where <c>C</c> is one
/// JSON object with no whitespace and exactly these camelCase properties in this order:
/// <c>sequence, runId, round, siloId, kind, blob, bytes, sha256, policy {name, checks}, dpNoise ({noiseMultiplier, clipNorm} or null),
/// identity, recordedAt, previousHash</c>. Integers are plain decimal digits; the two doubles are the shortest
/// round-trip form of <c>double.ToString("R", CultureInfo.InvariantCulture)</c> (finite only); <c>recordedAt</c> is
/// the UTC instant as <c>yyyy-MM-ddTHH:mm:ss.fffffffZ</c> (all seven fractional digits); strings escape only
/// <c>"</c>, <c>\</c> and U+0000–U+001F (as <c>\b \f \n \r \t</c> or <c>\u00xx</c> in lowercase hex), as in
/// RFC 8785, and are otherwise literal UTF-8. The form depends on neither culture, nor property declaration order,
/// nor a JSON library's escaping defaults, so an auditor can recompute it with any tool.
/// </para>
/// <para>
/// A stored line (<see cref="AuditLog.ToJsonLine"/>) is <c>C</c> with <c>,"hash":"…"</c> inserted before its final
/// brace, followed by a newline.
/// </para>
/// <para>
/// <b>What verification proves.</b> The chain has no key: whoever can write the blob could rewrite every entry
/// and recompute every hash. Modification, removal and reordering inside the log are detected; removal of entries
/// from the tail leaves a valid shorter chain and is detected only against an anchored head hash. The orchestrator
/// therefore records the head (sequence and hash) in each round manifest; to check a log that has grown since an
/// anchor, verify the prefix of <c>sequence + 1</c> entries against that anchor's hash.
/// </para>
/// </remarks>
public static class AuditChain
{
    /// <summary>The previous hash of the first entry: 64 zeros.</summary>
    public const string GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";


    /// <summary>The entry that follows <paramref name="previous"/> (or starts the log when null).</summary>
    /// <remarks>
    /// Pure: the caller supplies the time in the draft, so an orchestrator can call it on replay. The timestamp is
    /// normalised to UTC, so the entry equals what <see cref="AuditLog.Parse"/> later reads back.
    /// </remarks>
    /// <exception cref="ArgumentException">
    /// A required text field is empty, a number is negative or not finite, the SHA-256 is not 64 lowercase hex digits,
    /// the blob carries a query string or user info (credentials), or the run id differs from the previous entry's.
    /// </exception>
    /// <exception cref="InvalidOperationException"><paramref name="previous"/> does not verify against its own hash.</exception>
    public static AuditEntry Append(AuditEntry? previous, AuditDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        ValidateDraft(draft);
        if (previous is not null)
        {
            if (!string.Equals(ComputeHash(previous), previous.Hash, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"The previous entry (sequence {previous.Sequence}) does not match its own hash; refusing to extend a tampered log.");
            }

            if (!string.Equals(previous.RunId, draft.RunId, StringComparison.Ordinal))
            {
                throw new ArgumentException($"The log belongs to run '{previous.RunId}'; the draft is for run '{draft.RunId}'.", nameof(draft));
            }
        }

        return AppendAfter(previous?.Sequence, previous?.Hash ?? GenesisHash, draft);
    }

    /// <summary>The entry that follows the entry with <paramref name="previousSequence"/> and <paramref name="previousHash"/>, or starts the log when the sequence is null.</summary>
    /// <remarks>For a writer that keeps only the log's head (sequence and hash), as the commit activity does between rounds.</remarks>
    public static AuditEntry AppendAfter(long? previousSequence, string previousHash, AuditDraft draft)
    {
        ArgumentNullException.ThrowIfNull(draft);
        ArgumentNullException.ThrowIfNull(previousHash);
        ValidateDraft(draft);
        var entry = new AuditEntry(draft, previousSequence is { } p ? checked(p + 1) : 0, previousSequence is null ? GenesisHash : previousHash, string.Empty)
        {
            RecordedAt = draft.RecordedAt.ToUniversalTime(),
        };
        return entry with { Hash = ComputeHash(entry) };
    }

    /// <summary>The hash an entry should carry: SHA-256 of its canonical serialization, ignoring its <see cref="AuditEntry.Hash"/>.</summary>
    /// <exception cref="ArgumentException">A field cannot be serialized canonically (null text, lone surrogate, non-finite number).</exception>
    public static string ComputeHash(AuditEntry entry) => Hashing.Sha256Hex(AuditCanonicalJson.Body(entry));

    /// <summary>Checks a whole log, in order.</summary>
    /// <param name="entries">The log, as read.</param>
    /// <param name="expectedHeadHash">The anchored head hash (from a round manifest), if any; the last entry's hash must equal it.</param>
    /// <param name="expectedRunId">The run the log must belong to; by default that of the first entry.</param>
    /// <remarks>
    /// Each entry is checked in this order, and the first failure is reported: its own hash
    /// (<see cref="AuditFailureReasons.HashMismatch"/>), its run (<see cref="AuditFailureReasons.RunMismatch"/>), its link to
    /// the previous entry (<see cref="AuditFailureReasons.ChainBroken"/>), its sequence number
    /// (<see cref="AuditFailureReasons.SequenceGap"/>); then the head (<see cref="AuditFailureReasons.HeadMismatch"/>).
    /// Never throws for a malformed entry: it is reported.
    /// </remarks>
    public static AuditVerification Verify(IReadOnlyList<AuditEntry> entries, string? expectedHeadHash = null, string? expectedRunId = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var runId = expectedRunId ?? (entries.Count > 0 ? entries[0]?.RunId : null);
        var previousHash = GenesisHash;
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            if (entry is null)
            {
                return AuditVerification.Failure(i, AuditFailureReasons.HashMismatch, $"Entry {i} is missing.");
            }

            string computed;
            try
            {
                computed = ComputeHash(entry);
            }
            catch (ArgumentException e)
            {
                return AuditVerification.Failure(i, AuditFailureReasons.HashMismatch, $"Entry {i} cannot be serialized canonically: {e.Message}");
            }

            if (!string.Equals(computed, entry.Hash, StringComparison.Ordinal))
            {
                return AuditVerification.Failure(i, AuditFailureReasons.HashMismatch, $"Entry {i} does not match its hash: it was modified after it was written.");
            }

            if (!string.Equals(entry.RunId, runId, StringComparison.Ordinal))
            {
                return AuditVerification.Failure(i, AuditFailureReasons.RunMismatch, $"Entry {i} belongs to run '{entry.RunId}', not '{runId}'.");
            }

            if (!string.Equals(entry.PreviousHash, previousHash, StringComparison.Ordinal))
            {
                return AuditVerification.Failure(
                    i,
                    AuditFailureReasons.ChainBroken,
                    i == 0
                        ? "Entry 0 does not start the chain: earlier entries were removed."
                        : $"Entry {i} does not follow entry {i - 1}: an entry was removed, inserted or reordered.");
            }

            if (entry.Sequence != i)
            {
                return AuditVerification.Failure(i, AuditFailureReasons.SequenceGap, $"Entry {i} carries sequence {entry.Sequence}.");
            }

            previousHash = entry.Hash;
        }

        if (expectedHeadHash is not null && !string.Equals(previousHash, expectedHeadHash, StringComparison.Ordinal))
        {
            var anchor = -1;
            for (var i = 0; i < entries.Count && anchor < 0; i++)
            {
                if (string.Equals(entries[i].Hash, expectedHeadHash, StringComparison.Ordinal))
                {
                    anchor = i;
                }
            }

            return anchor >= 0
                ? AuditVerification.Failure(anchor + 1, AuditFailureReasons.HeadMismatch,
                    $"The anchored head is entry {anchor}, but the log continues to entry {entries.Count - 1}; verify the first {anchor + 1} entries against this anchor.")
                : AuditVerification.Failure(entries.Count, AuditFailureReasons.HeadMismatch,
                    $"The anchored head is not in the log of {entries.Count} entries: entries were removed from the tail, or the log was rewritten.");
        }

        return new AuditVerification(true, null, null, null, previousHash);
    }

    private static void ValidateDraft(AuditDraft draft)
    {
        Required(draft.RunId, nameof(draft.RunId));
        Required(draft.SiloId, nameof(draft.SiloId));
        Required(draft.Kind, nameof(draft.Kind));
        Required(draft.Blob, nameof(draft.Blob));
        Required(draft.Identity, nameof(draft.Identity));
        if (draft.Round < 0)
        {
            throw new ArgumentException($"The round must not be negative; got {draft.Round}.", nameof(draft));
        }

        if (draft.Bytes < 0)
        {
            throw new ArgumentException($"The size must not be negative; got {draft.Bytes}.", nameof(draft));
        }

        if (!Hashing.IsSha256Hex(draft.Sha256))
        {
            throw new ArgumentException("The SHA-256 must be 64 lowercase hex digits.", nameof(draft));
        }

        if (draft.Blob.Contains('?', StringComparison.Ordinal) ||
            (Uri.TryCreate(draft.Blob, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0))
        {
            throw new ArgumentException("The blob must be a path without query string or user info: an audit entry never carries credentials.", nameof(draft));
        }

        if (draft.Policy is null)
        {
            throw new ArgumentException("The policy is required.", nameof(draft));
        }

        Required(draft.Policy.Name, "Policy.Name");
        if (draft.Policy.Checks is null)
        {
            throw new ArgumentException("The policy checks are required (empty when none were applied).", nameof(draft));
        }

        if (draft.DpNoise is { } dp &&
            (!double.IsFinite(dp.NoiseMultiplier) || dp.NoiseMultiplier < 0 || !double.IsFinite(dp.ClipNorm) || dp.ClipNorm <= 0))
        {
            throw new ArgumentException("DP noise needs a finite non-negative noise multiplier and a finite positive clip norm.", nameof(draft));
        }
    }

    private static void Required(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new ArgumentException($"The audit field '{field}' is required.", "draft");
        }
    }
}

/// <summary>The result of <see cref="AuditChain.Verify"/>.</summary>
/// <param name="IsValid">Whether the whole log verified (and matched the anchored head, if one was given).</param>
/// <param name="FirstBadIndex">
/// Index of the first entry that failed, or for <see cref="AuditFailureReasons.HeadMismatch"/> the first index past the
/// anchor (the log's length when the anchor is missing); null when valid.
/// </param>
/// <param name="Reason">A stable code from <see cref="AuditFailureReasons"/>; null when valid.</param>
/// <param name="Detail">Human-readable explanation; null when valid.</param>
/// <param name="HeadHash">The verified head hash (<see cref="AuditChain.GenesisHash"/> for an empty log), to anchor; null when invalid.</param>
public sealed record AuditVerification(bool IsValid, int? FirstBadIndex, string? Reason, string? Detail, string? HeadHash)
{
    internal static AuditVerification Failure(int index, string reason, string detail) => new(false, index, reason, detail, null);
}

/// <summary>Stable reason codes of <see cref="AuditVerification.Reason"/>.</summary>
public static class AuditFailureReasons
{
    /// <summary>An entry does not match its own hash: it was modified.</summary>
    public const string HashMismatch = "hash-mismatch";

    /// <summary>An entry's previous hash is not the hash of the entry before it: an entry was removed, inserted or reordered.</summary>
    public const string ChainBroken = "chain-broken";

    /// <summary>An entry's sequence number is not its position.</summary>
    public const string SequenceGap = "sequence-gap";

    /// <summary>An entry belongs to another run.</summary>
    public const string RunMismatch = "run-mismatch";

    /// <summary>The log does not end at the anchored head hash: its tail was truncated (or it grew past the anchor).</summary>
    public const string HeadMismatch = "head-mismatch";
}
