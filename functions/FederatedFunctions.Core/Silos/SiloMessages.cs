using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.Silos;

// The messages of the silo protocol: what the orchestrator asks of a silo and what the silo answers. They cross the silo
// boundary (in history, in job requests, in job outcomes), so they hold ids, references and scalars, never data or credentials.

/// <summary>Input of the train activity: one silo, one round.</summary>
/// <remarks>
/// Carries the silo id only; the activity resolves the silo's storage and credential from the registry. In
/// <c>eyes-off</c> mode (<paramref name="Privacy"/>) the silo returns no per-silo value: its example count and loss
/// travel inside the update blob, to the aggregator only.
/// With <paramref name="SecureAggregation"/> the trained model stays in the silo (<see cref="BlobLayout.SiloPrivateUpdate"/>),
/// the returned reference names it for integrity only, and only a masked update (<see cref="MaskUpdateRequest"/>) leaves the silo.
/// <paramref name="Fit"/> is what the strategy tells this silo for this fit (FedProx's μ); null is plain local training.
/// <paramref name="Script"/> is a torchscript model's module file, which the silo loads.
/// <paramref name="Virtual"/>, in a simulation, names the virtual silos of the silo (the host) that this step trains, one
/// update each (<see cref="SiloStepResult.Updates"/>); null trains the silo itself.
/// </remarks>
public sealed record TrainRequest(string RunId, int Round, string SiloId, BlobRef GlobalModel, ModelSpec Model, DataSpec Data, TrainingSpec Training, int Inputs, string Privacy = PrivacyModes.EyesOn, bool SecureAggregation = false, FitConfig? Fit = null, BlobRef? Script = null, VirtualBatch? Virtual = null);

/// <summary>Output of the train activity: a reference to the silo's update and its scalar results.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Round">The round.</param>
/// <param name="Update">The update blob in the silo's outbox (no credential in the URI).</param>
/// <param name="Examples">Training examples; null in eyes-off mode (then in the update's metadata).</param>
/// <param name="Loss">Mean train loss of the last local epoch; null in eyes-off mode.</param>
/// <param name="Metrics">Other scalar metrics; null in eyes-off mode.</param>
/// <param name="Host">For a virtual silo (<see cref="VirtualSilos"/>), the silo whose outbox holds its update; null for a silo's own update.</param>
/// <param name="Offset">
/// Where the update starts in the blob <see cref="BlobRef.Uri"/> names, when several virtual silos' updates share one blob
/// (each a whole safetensors file, one after another); <see cref="BlobRef.Bytes"/> and <see cref="BlobRef.Sha256"/> are
/// then the update's own. Null for an update that is a blob of its own.
/// </param>
public sealed record SiloUpdate(string SiloId, int Round, BlobRef Update, long? Examples, double? Loss, IReadOnlyDictionary<string, double>? Metrics, string? Host = null, long? Offset = null);

/// <summary>What one silo's evaluation returns to the orchestrator.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Outcome">The silo's metrics, in eyes-on mode only.</param>
/// <param name="Report">In eyes-off mode: the silo's metrics blob in its outbox, read only by <c>SummarizeEvaluationActivity</c>.</param>
public sealed record SiloEvaluation(string SiloId, EvaluateOutcome? Outcome, BlobRef? Report);

/// <summary>Input of the evaluate activity: score a model on one silo's test split.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Round">The round whose model is scored.</param>
/// <param name="SiloId">The silo whose test split scores it.</param>
/// <param name="Model">The model, in the orchestrator's checkpoints.</param>
/// <param name="ModelSpec">Its architecture.</param>
/// <param name="Data">The data schema and the test split's path.</param>
/// <param name="Inputs">The model's input width.</param>
/// <param name="Privacy">The run's privacy mode: eyes-off keeps the metrics in the silo's outbox.</param>
/// <param name="Of">Cross-site evaluation: whose model it is, a silo id for that silo's local model, or empty for the global model; null for the round's own evaluation of the global model.</param>
/// <param name="Script">A torchscript model's module file, which the silo loads.</param>
/// <param name="Masking">With secure aggregation, the attempt of the round's secure sum to mask the evaluation for: the silo keeps its evaluation inside and writes only the masked vector (<see cref="SecureAggregation.SecureEvaluationVector"/>) to its outbox.</param>
public sealed record EvaluateRequest(string RunId, int Round, string SiloId, BlobRef Model, ModelSpec ModelSpec, DataSpec Data, int Inputs, string Privacy = PrivacyModes.EyesOn, string? Of = null, BlobRef? Script = null, MaskingAttempt? Masking = null);

/// <summary>The fixed-point encoding of a secure-aggregation round, as numbers (see <see cref="SecureAggregation.FixedPoint"/>).</summary>
/// <param name="Silos">Most silos whose contributions are summed: the round's sampled silos.</param>
/// <param name="Range">Bound on every weighted value.</param>
/// <param name="Scale">Quantization scale.</param>
public sealed record SecureAggregationEncoding(int Silos, double Range, double Scale)
{
    /// <summary>The encoding for a round (<see cref="SecureAggregation.MaskedUpdateCodec.Encoding"/>).</summary>
    public static SecureAggregationEncoding For(int sampled)
    {
        var fp = SecureAggregation.MaskedUpdateCodec.Encoding(sampled);
        return new SecureAggregationEncoding(fp.Silos, fp.Range, fp.Scale);
    }

    /// <summary>The encoding as a <see cref="SecureAggregation.FixedPoint"/>; its constructor checks the headroom.</summary>
    public SecureAggregation.FixedPoint ToFixedPoint() => new(Silos, Range, Scale);
}

/// <summary>Input of the key activity: the silo publishes its public key for one attempt of a round's secure aggregation.</summary>
public sealed record MaskingKeyRequest(string RunId, int Round, int Attempt, string SiloId, string Privacy = PrivacyModes.EyesOn);

/// <summary>A silo's public key for one attempt (SubjectPublicKeyInfo DER). Public keys may pass through history; private keys never do.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Attempt">The attempt the key is for.</param>
/// <param name="PublicKey">The key.</param>
/// <param name="RevealedAttempt">
/// The attempt of this round the silo already revealed its self-mask for, if any (a run resumed after that reveal):
/// the silo takes part in no other attempt of the round.
/// </param>
public sealed record MaskingPublicKey(string SiloId, int Attempt, byte[] PublicKey, int? RevealedAttempt = null);

/// <summary>Helpers for an attempt's key exchange, shared by the orchestrator, the silos and the aggregator.</summary>
public static class KeyExchanges
{
    /// <summary>An attempt's public keys by silo id.</summary>
    /// <exception cref="ArgumentException">A silo listed twice, or a key labelled for another attempt.</exception>
    public static Dictionary<string, byte[]> BySilo(IReadOnlyList<MaskingPublicKey> keyExchange, int attempt)
    {
        ArgumentNullException.ThrowIfNull(keyExchange);
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var k in keyExchange)
        {
            if (k.Attempt != attempt || !keys.TryAdd(k.SiloId, k.PublicKey))
            {
                throw new ArgumentException($"The key exchange of attempt {attempt} lists silo '{k.SiloId}' twice or for another attempt.", nameof(keyExchange));
            }
        }

        return keys;
    }
}

/// <summary>Input of the reveal activity: every masked update of the attempt arrived and was checked; the silo may reveal its self-mask seed.</summary>
public sealed record RevealSelfMaskRequest(string RunId, int Round, int Attempt, string SiloId, string Privacy = PrivacyModes.EyesOn);

/// <summary>A silo's self-mask seed for one attempt, revealed once per round so that the attempt's sum can be unmasked.</summary>
public sealed record SelfMaskReveal(string SiloId, int Attempt, byte[] Seed);

/// <summary>Input of the mask activity: the silo clips, weights, quantizes and masks its update against the attempt's key exchange.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="Round">Round.</param>
/// <param name="Attempt">Attempt of the round's secure aggregation.</param>
/// <param name="SiloId">The silo.</param>
/// <param name="GlobalModel">The round's global model.</param>
/// <param name="Update">The reference the silo's training returned: the silo checks its kept update still matches it.</param>
/// <param name="KeyExchange">The public keys of every silo of the attempt, this one's included.</param>
/// <param name="Encoding">The round's fixed-point encoding.</param>
/// <param name="ClipNorm">Clipping norm of the silo's change.</param>
/// <param name="MaxExamples">Example count at which a silo's weight reaches 1.</param>
/// <param name="EqualWeights">Every silo weighs 1 (differential privacy).</param>
/// <param name="Privacy">Privacy mode, for error reporting.</param>
public sealed record MaskUpdateRequest(
    string RunId,
    int Round,
    int Attempt,
    string SiloId,
    BlobRef GlobalModel,
    BlobRef Update,
    IReadOnlyList<MaskingPublicKey> KeyExchange,
    SecureAggregationEncoding Encoding,
    double ClipNorm,
    long MaxExamples,
    bool EqualWeights,
    string Privacy = PrivacyModes.EyesOn);

/// <summary>A silo's masked update for one attempt, in its outbox.</summary>
public sealed record MaskedUpdateRef(string SiloId, int Round, int Attempt, BlobRef Masked);
