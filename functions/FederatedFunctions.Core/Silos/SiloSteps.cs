using System.Globalization;

namespace FederatedFunctions.Core.Silos;

/// <summary>One step a silo runs for the orchestrator: exactly one of the requests is set.</summary>
/// <remarks>
/// Training, evaluation and the three steps of secure aggregation all run inside the silo, with the silo's own credential,
/// whatever its compute: in the orchestrator's process, in a separate process, or in an Azure ML job.
/// </remarks>
/// <param name="Train">Train one round.</param>
/// <param name="Evaluate">Score a global model on the test split.</param>
/// <param name="Key">Publish the masking key of one secure-aggregation attempt.</param>
/// <param name="Mask">Mask the kept update for one secure-aggregation attempt.</param>
/// <param name="Reveal">Reveal the self-mask seed of one secure-aggregation attempt.</param>
/// <param name="Analyze">Compute one pass of an analysis's partial statistics.</param>
public sealed record SiloStep(
    TrainRequest? Train = null,
    EvaluateRequest? Evaluate = null,
    MaskingKeyRequest? Key = null,
    MaskUpdateRequest? Mask = null,
    RevealSelfMaskRequest? Reveal = null,
    Analysis.AnalyzeRequest? Analyze = null)
{
    /// <summary>The step's kind: <c>train</c>, <c>evaluate</c>, <c>key</c>, <c>mask</c> or <c>reveal</c>.</summary>
    /// <exception cref="InvalidOperationException">Not exactly one request is set.</exception>
    public string Kind => Single() switch
    {
        TrainRequest => SiloStepKinds.Train,
        EvaluateRequest => SiloStepKinds.Evaluate,
        MaskingKeyRequest => SiloStepKinds.Key,
        MaskUpdateRequest => SiloStepKinds.Mask,
        Analysis.AnalyzeRequest => SiloStepKinds.Analyze,
        _ => SiloStepKinds.Reveal,
    };

    /// <summary>The run.</summary>
    public string RunId => Train?.RunId ?? Evaluate?.RunId ?? Key?.RunId ?? Mask?.RunId ?? Reveal?.RunId ?? Analyze?.AnalysisId ?? throw Invalid();

    /// <summary>The round.</summary>
    public int Round => Train?.Round ?? Evaluate?.Round ?? Key?.Round ?? Mask?.Round ?? Reveal?.Round ?? Analyze?.Pass ?? throw Invalid();

    /// <summary>The silo.</summary>
    public string SiloId => Train?.SiloId ?? Evaluate?.SiloId ?? Key?.SiloId ?? Mask?.SiloId ?? Reveal?.SiloId ?? Analyze?.SiloId ?? throw Invalid();

    /// <summary>The run's privacy mode, which decides what a failure may say.</summary>
    public string Privacy => Train?.Privacy ?? Evaluate?.Privacy ?? Key?.Privacy ?? Mask?.Privacy ?? Reveal?.Privacy ?? Analyze?.Privacy ?? throw Invalid();

    /// <summary>The secure-aggregation attempt of a key, mask or reveal step, or of a masked analysis pass or evaluation; null for training and an unmasked pass or evaluation.</summary>
    public int? SecureAttempt => Key?.Attempt ?? Mask?.Attempt ?? Reveal?.Attempt ?? Analyze?.Masking?.Attempt ?? Evaluate?.Masking?.Attempt;

    /// <summary>
    /// The step's stable name, unique within a run: kind, round, silo and, for secure-aggregation steps, the attempt, and
    /// for a cross-site evaluation, whose model, with its length so that no two pairs of model and silo read the same,
    /// e.g. <c>train-r00003-silo-2</c>, <c>mask-r00003-a02-silo-2</c>, <c>evaluate-r00003-x6-silo-1-silo-2</c> (silo-1's
    /// model on silo-2) or <c>evaluate-r00003-x0--silo-2</c> (the global model, in the cross-site matrix); a group of
    /// virtual silos adds its number, e.g. <c>train-r00003-v0002-sim</c>.
    /// </summary>
    public string Name =>
        $"{Kind}-r{Round.ToString("D5", CultureInfo.InvariantCulture)}{(SecureAttempt is { } a ? "-a" + a.ToString("D2", CultureInfo.InvariantCulture) : string.Empty)}{(Evaluate?.Of is { } of ? $"-x{of.Length.ToString(CultureInfo.InvariantCulture)}-{of}" : string.Empty)}{(Train?.Virtual is { } v ? "-v" + v.Batch.ToString("D4", CultureInfo.InvariantCulture) : string.Empty)}-{SiloId}";

    private object Single()
    {
        object?[] set = [Train, Evaluate, Key, Mask, Reveal, Analyze];
        return set.Count(x => x is not null) == 1 ? set.First(x => x is not null)! : throw Invalid();
    }

    private static InvalidOperationException Invalid() => new("A silo step must set exactly one request.");
}

/// <summary>The kinds of <see cref="SiloStep"/>.</summary>
public static class SiloStepKinds
{
    /// <summary>Train one round.</summary>
    public const string Train = "train";

    /// <summary>Score a global model.</summary>
    public const string Evaluate = "evaluate";

    /// <summary>Publish a masking key.</summary>
    public const string Key = "key";

    /// <summary>Mask the kept update.</summary>
    public const string Mask = "mask";

    /// <summary>Reveal the self-mask seed.</summary>
    public const string Reveal = "reveal";

    /// <summary>One pass of an analysis.</summary>
    public const string Analyze = "analyze";
}

/// <summary>What a silo step returns: the one result of its kind.</summary>
/// <remarks><see cref="Updates"/> is a group of virtual silos' training result: one update per virtual silo, in the group's order.</remarks>
public sealed record SiloStepResult(
    SiloUpdate? Update = null,
    SiloEvaluation? Evaluation = null,
    MaskingPublicKey? Key = null,
    MaskedUpdateRef? Masked = null,
    SelfMaskReveal? Reveal = null,
    Runs.BlobRef? Analysis = null,
    IReadOnlyList<SiloUpdate>? Updates = null);

/// <summary>
/// The document a silo job runs: written by the orchestrator's side into its own storage, read by the silo runner with the
/// silo's identity, and named in the job by reference and SHA-256. It holds ids, references and scalars only.
/// </summary>
/// <param name="JobName">The job's name (see <see cref="SiloJobNames"/>).</param>
/// <param name="Step">The step to run.</param>
public sealed record SiloJobRequest(string JobName, SiloStep Step);

/// <summary>What a silo job leaves in the silo's outbox when it ends: the step's result, or the category of its failure.</summary>
/// <param name="JobName">The job it belongs to.</param>
/// <param name="Result">The result, when the step succeeded.</param>
/// <param name="Failure">When it failed: <see cref="SiloFailures.BadData"/> or <see cref="SiloFailures.Failed"/>.</param>
/// <param name="Message">The failure's message; in eyes-off mode a category and a silo-side reference only.</param>
public sealed record SiloJobOutcome(string JobName, SiloStepResult? Result, string? Failure = null, string? Message = null);

/// <summary>Failure categories of a silo step.</summary>
public static class SiloFailures
{
    /// <summary>The silo's data is invalid; retrying does not help.</summary>
    public const string BadData = "bad-data";

    /// <summary>Anything else; retried per the run's retry policy.</summary>
    public const string Failed = "failed";
}

/// <summary>Names of silo jobs: deterministic from run, step and attempt, so a re-executed submission finds the job it already made.</summary>
public static class SiloJobNames
{
    /// <summary>Longest job name: the Azure ML limit on job ids (255) is more; the 120 keeps names readable in logs and portals.</summary>
    public const int MaxLength = 120;

    /// <summary>
    /// <c>fl-{run}-{step}-j{attempt}</c>, e.g. <c>fl-demo-train-r00003-silo-2-j1</c>, and for a resumed run
    /// <c>fl-{run}-{step}-{epoch}-j{attempt}</c>, e.g. <c>fl-demo-train-r00003-silo-2-e3fa9c1-j1</c>; when that is longer
    /// than <see cref="MaxLength"/>, the run, step and epoch are replaced by 24 hex digits of their SHA-256. Only letters,
    /// digits and <c>-</c> occur, which every compute accepts.
    /// </summary>
    /// <param name="runId">The run.</param>
    /// <param name="step">The step.</param>
    /// <param name="jobAttempt">The job attempt, from 1.</param>
    /// <param name="epoch">The start of the run the job belongs to: null for its first start, a token per resume (<see cref="Epochs"/>).</param>
    public static string For(string runId, SiloStep step, int jobAttempt, string? epoch = null)
    {
        ArgumentNullException.ThrowIfNull(step);
        var attempt = jobAttempt.ToString(CultureInfo.InvariantCulture);
        var stem = epoch is null ? step.Name : $"{step.Name}-{epoch}";
        var name = $"fl-{runId}-{stem}-j{attempt}";
        return name.Length <= MaxLength
            ? name
            : $"fl-{Hashing.Sha256Hex(System.Text.Encoding.UTF8.GetBytes(runId + "|" + stem))[..24]}-j{attempt}";
    }
}

/// <summary>Epochs: one per start of a run's orchestration after its first, so that a resumed run names its silo jobs afresh.</summary>
/// <remarks>
/// A cancelled or failed run leaves jobs behind on the silos' computes, cancelled or ended, under names derived from run,
/// step and attempt. A resume that used the same names would find those jobs and take their end (cancelled, failed) as
/// its own; with its own epoch in every job name it submits new ones.
/// </remarks>
public static class Epochs
{
    /// <summary>A fresh epoch: <c>e</c> and 6 random hex digits.</summary>
    public static string New() => "e" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
}
