namespace FederatedFunctions.Core.Audit;

/// <summary>One record of the run's audit log: one artifact that left a silo, chained to the record before it.</summary>
/// <remarks>
/// <para>
/// The log is append-only and tamper-evident: <see cref="Hash"/> is the lowercase hex SHA-256 of the canonical
/// serialization of every other field (see <see cref="AuditChain"/>), and <see cref="PreviousHash"/> is the
/// <see cref="Hash"/> of the entry before it (<see cref="AuditChain.GenesisHash"/> for the first). Changing,
/// removing or reordering an entry breaks the chain; <see cref="AuditChain.Verify"/> says where and why.
/// </para>
/// <para>
/// An entry holds references and hashes, never payloads or credentials: <see cref="AuditDraft.Blob"/> is a path without a
/// query string, so it cannot carry a SAS token. Build entries with <see cref="AuditChain.Append"/>, which fills in
/// <see cref="Sequence"/>, <see cref="PreviousHash"/> and <see cref="Hash"/> and validates the draft.
/// </para>
/// </remarks>
public sealed record AuditEntry : AuditDraft
{
    /// <summary>Creates an entry; <see cref="AuditChain.Append"/> and <see cref="AuditLog.Parse"/> do.</summary>
    public AuditEntry()
    {
    }

    /// <summary>The entry of <paramref name="draft"/> at <paramref name="sequence"/>, chained to <paramref name="previousHash"/>.</summary>
    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    internal AuditEntry(AuditDraft draft, long sequence, string previousHash, string hash)
        : base(draft)
    {
        Sequence = sequence;
        PreviousHash = previousHash;
        Hash = hash;
    }

    /// <summary>Position in the log, 0-based and contiguous.</summary>
    public required long Sequence { get; init; }

    /// <summary>Lowercase hex <see cref="Hash"/> of the previous entry, or <see cref="AuditChain.GenesisHash"/> for the first.</summary>
    public required string PreviousHash { get; init; }

    /// <summary>Lowercase hex SHA-256 of the canonical serialization of every other field.</summary>
    public required string Hash { get; init; }
}

/// <summary>The fields of an audit entry that the writer supplies; <see cref="AuditChain.Append"/> adds the chain fields.</summary>
public record AuditDraft
{
    /// <summary>The run the log belongs to; the same in every entry.</summary>
    public required string RunId { get; init; }

    /// <summary>The round the artifact belongs to.</summary>
    public required int Round { get; init; }

    /// <summary>The silo the artifact left.</summary>
    public required string SiloId { get; init; }

    /// <summary>What the artifact is, e.g. <see cref="AuditKinds.Update"/>.</summary>
    public required string Kind { get; init; }

    /// <summary>Where the artifact is stored: a blob path or URI without query string or user info.</summary>
    public required string Blob { get; init; }

    /// <summary>Artifact size in bytes.</summary>
    public required long Bytes { get; init; }

    /// <summary>Lowercase hex SHA-256 of the artifact.</summary>
    public required string Sha256 { get; init; }

    /// <summary>The release policy under which the artifact left the silo.</summary>
    public required AuditPolicy Policy { get; init; }

    /// <summary>Differential-privacy noise applied before release, or null if none was.</summary>
    public DpNoiseParameters? DpNoise { get; init; }

    /// <summary>Who wrote the artifact: a principal or object id, or <c>local</c> for the local host.</summary>
    public required string Identity { get; init; }

    /// <summary>
    /// When the entry was recorded; in an orchestrator, <c>context.CurrentUtcDateTime</c>. In an entry it is UTC
    /// (<see cref="AuditChain.Append"/> normalises the offset).
    /// </summary>
    public required DateTimeOffset RecordedAt { get; init; }
}

/// <summary>The release policy under which an artifact left a silo.</summary>
/// <param name="Name">Policy name, e.g. <c>eyes-off</c>.</param>
/// <param name="Checks">The checks applied before release, e.g. <c>finite,shape,clip-norm&lt;=1.0</c>; may be empty.</param>
public sealed record AuditPolicy(string Name, string Checks);

/// <summary>Differential-privacy noise applied to an artifact before release.</summary>
/// <param name="NoiseMultiplier">Gaussian noise standard deviation divided by the clip norm; non-negative.</param>
/// <param name="ClipNorm">L2 clip norm applied before noising; positive.</param>
public sealed record DpNoiseParameters(double NoiseMultiplier, double ClipNorm);

/// <summary>Well-known values of <see cref="AuditDraft.Kind"/>.</summary>
public static class AuditKinds
{
    /// <summary>A model update.</summary>
    public const string Update = "update";

    /// <summary>Training or evaluation metrics.</summary>
    public const string Metrics = "metrics";

    /// <summary>A masked update for secure aggregation.</summary>
    public const string MaskedUpdate = "masked-update";

    /// <summary>A masked evaluation (examples, correct answers, loss) for the secure sum of a round's evaluation.</summary>
    public const string MaskedMetrics = "masked-metrics";

    /// <summary>A silo's partial statistics of one pass of a federated analysis.</summary>
    public const string AnalysisPartial = "analysis-partial";

    /// <summary>A silo's masked partial of one pass of a securely aggregated analysis.</summary>
    public const string MaskedAnalysisPartial = "masked-analysis-partial";
}
