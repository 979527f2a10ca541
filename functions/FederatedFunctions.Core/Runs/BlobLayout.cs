using System.Globalization;

namespace FederatedFunctions.Core.Runs;

/// <summary>Deterministic blob names for everything a run writes.</summary>
/// <remarks>
/// <para>Activities run at least once. Every name is derived from run id, round and silo only, so a retried
/// activity overwrites its own earlier output instead of adding a second copy.</para>
/// <para>A silo's names start with <c>outbox/</c> (what leaves the silo: updates, reports, job outcomes; in the silo's outbox
/// container, which the orchestrator may read), <c>private/</c> (what never leaves: kept updates, masking secrets, error
/// details; in the silo's data container), or are the data paths of the spec (in the data container).</para>
/// </remarks>
public static class BlobLayout
{
    /// <summary>Round folder inside the checkpoint container, e.g. <c>demo/round-00003</c>.</summary>
    public static string RoundPrefix(string runId, int round) =>
        $"{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}";

    /// <summary>The round's aggregated model.</summary>
    public static string Model(string runId, int round) => RoundPrefix(runId, round) + "/model.safetensors";

    /// <summary>A torchscript run's copy of its module file (<c>model.script</c>), made when it starts.</summary>
    public static string Script(string runId) => runId + "/model.pt";

    /// <summary>The strategy's server state after the round (a server optimizer's moments), when it keeps any.</summary>
    public static string StrategyState(string runId, int round) => RoundPrefix(runId, round) + "/strategy-state.safetensors";

    /// <summary>A silo's local model of the last round, published for cross-site evaluation.</summary>
    public static string CrossSiteModel(string runId, string siloId) => runId + "/cross-site/" + siloId + ".safetensors";

    /// <summary>The run's cross-site evaluation matrix.</summary>
    public static string CrossSite(string runId) => runId + "/cross-site/matrix.json";

    /// <summary>The round's manifest.</summary>
    public static string Manifest(string runId, int round) => RoundPrefix(runId, round) + "/manifest.json";

    /// <summary>The run's pointer to its newest committed round.</summary>
    public static string Latest(string runId) => $"{runId}/latest.json";

    /// <summary>The marker of a run being cancelled: a silo job submitted while the cancellation races it is cancelled too.</summary>
    public static string Cancelled(string runId) => $"{runId}/cancelled.json";

    /// <summary>The run's spec, as validated when it started: what a resume of a lost run starts again from.</summary>
    public static string Spec(string runId) => $"{runId}/spec.json";

    /// <summary>The audit entries appended by one round, as JSON lines (written once; see <see cref="Audit.AuditLog"/>).</summary>
    public static string Audit(string runId, int round) => $"{runId}/audit/round-{round.ToString("D5", CultureInfo.InvariantCulture)}.jsonl";

    /// <summary>Prefix of a run's audit blobs.</summary>
    public static string AuditPrefix(string runId) => $"{runId}/audit/";

    /// <summary>Prefix under which a run's rounds are listed.</summary>
    public static string RunPrefix(string runId) => runId + "/";

    /// <summary>A silo's update for a round, inside that silo's own container.</summary>
    public static string SiloUpdate(string runId, int round) =>
        $"outbox/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/update.safetensors";

    /// <summary>A silo's evaluation metrics for a round (eyes-off), inside that silo's own container.</summary>
    public static string SiloEvaluation(string runId, int round) =>
        $"outbox/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/evaluation.json";

    /// <summary>The full error of a failed silo task (eyes-off), kept inside the silo, outside its outbox; the orchestrator sees only its reference.</summary>
    public static string SiloError(string runId, int round, string reference) =>
        $"private/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/error-{reference}.json";

    /// <summary>The document a silo job runs (<c>SiloJobRequest</c>), in the orchestrator's checkpoint container.</summary>
    public static string SiloJobRequest(string runId, int round, string jobName) =>
        $"{runId}/jobs/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/{jobName}.json";

    /// <summary>What a silo job left when it ended (<c>SiloJobOutcome</c>), in the silo's outbox.</summary>
    public static string SiloJobOutcome(string runId, int round, string jobName) =>
        $"outbox/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/jobs/{jobName}.json";

    /// <summary>A silo's trained model under secure aggregation: kept inside the silo, outside its outbox, so the aggregator cannot read it.</summary>
    public static string SiloPrivateUpdate(string runId, int round) =>
        $"private/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/update.safetensors";

    /// <summary>A silo's evaluation of a round's model under secure aggregation: kept inside the silo, outside its outbox, and masked from there for every attempt of the round's secure sum.</summary>
    public static string SiloPrivateEvaluation(string runId, int round) =>
        $"private/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/evaluation.json";

    /// <summary>The attempt of a round a silo revealed its self-mask for (decimal text), inside the silo: it reveals for one attempt per round only.</summary>
    public static string SiloRevealedAttempt(string runId, int round) =>
        $"private/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/revealed-attempt.txt";

    /// <summary>The secret a silo derives its secure-aggregation key pairs from, inside the silo, outside its outbox.</summary>
    public const string SiloMaskingSecret = "private/masking-secret.bin";

    /// <summary>A silo's masked update for one attempt of a round's secure aggregation, in its outbox.</summary>
    public static string SiloMaskedUpdate(string runId, int round, int attempt) =>
        $"outbox/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/masked-{attempt.ToString("D2", CultureInfo.InvariantCulture)}.safetensors";

    /// <summary>The copy of the pretrained weights a run started from, in its checkpoint container.</summary>
    public static string Pretrained(string runId) => $"{runId}/pretrained.safetensors";

    /// <summary>A silo's partial statistics for one pass of one execution of an analysis, in its outbox.</summary>
    public static string SiloAnalysisPartial(string analysisId, string execution, int pass) =>
        $"outbox/{analysisId}/analysis/{execution}/pass-{pass.ToString("D2", CultureInfo.InvariantCulture)}.json";

    /// <summary>An analysis's result, in the checkpoint container.</summary>
    public static string AnalysisResult(string analysisId) => $"{analysisId}/analysis/result.json";

    /// <summary>An analysis's manifest, in the checkpoint container.</summary>
    public static string AnalysisManifest(string analysisId) => $"{analysisId}/analysis/manifest.json";

    /// <summary>A dataset's privacy budget ledger (the analyses charged to it), in the checkpoint container.</summary>
    public static string PrivacyLedger(string budget) => $"_budgets/{budget}/ledger.json";

    /// <summary>
    /// Part <paramref name="part"/> of the updates of group <paramref name="group"/> of a simulation's round, inside the host's
    /// own container: the group's virtual silos' updates, each a whole safetensors file, one after another, at most
    /// 64 MiB a part (one update at least).
    /// </summary>
    public static string VirtualGroupUpdates(string runId, int round, int group, int part) =>
        $"outbox/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/virtual/group-{group.ToString("D4", CultureInfo.InvariantCulture)}-{part.ToString("D3", CultureInfo.InvariantCulture)}.safetensors-seq";

    /// <summary>The small JSON result beside a silo's update.</summary>
    public static string SiloResult(string runId, int round) =>
        $"outbox/{runId}/round-{round.ToString("D5", CultureInfo.InvariantCulture)}/result.json";
}

/// <summary>Metadata keys a silo puts in its update's safetensors header.</summary>
/// <remarks>
/// In eyes-off mode the silo reports its example count and loss only here, inside the update it sends to the
/// aggregator, never to the orchestrator; the aggregator returns aggregates over at least the configured number of silos.
/// </remarks>
public static class UpdateMetadata
{
    /// <summary>Training examples the update was computed on (decimal integer).</summary>
    public const string Examples = "examples";

    /// <summary>Mean train loss of the last local epoch: the 16 hex digits of its IEEE-754 bits (<see cref="FormatLoss"/>).</summary>
    public const string Loss = "loss";

    /// <summary>A loss as 16 hex digits of its bits: exact, and always the same length, so the update's size says nothing about it.</summary>
    public static string FormatLoss(double loss) =>
        BitConverter.DoubleToInt64Bits(loss).ToString("X16", CultureInfo.InvariantCulture);

    /// <summary>Reads <see cref="FormatLoss"/>'s output; false for anything else or a non-finite value.</summary>
    public static bool TryParseLoss(string? text, out double loss)
    {
        loss = 0;
        if (text is not { Length: 16 } || !long.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var bits))
        {
            return false;
        }

        loss = BitConverter.Int64BitsToDouble(bits);
        return double.IsFinite(loss);
    }
}
