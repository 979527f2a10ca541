using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>The silo's side of secure aggregation: publish an attempt's public key, mask the update against the attempt's keys, reveal the self-mask.</summary>
/// <remarks>
/// <para>
/// Both steps derive the attempt's key pair from the silo's secret (<see cref="MaskingKeys.Derive"/>), so they may run in
/// different processes, and any number of times, and still agree; the private key exists only during a call.
/// </para>
/// <para>
/// A silo must mask at most one vector per attempt (a mask is a one-time pad). The caller enforces that by writing the
/// masked update under a name fixed by the attempt, first writer wins, and refusing a second call for the same attempt
/// with another key exchange (<see cref="MaskedUpdateFile.KeyExchangeSha256"/>).
/// </para>
/// </remarks>
public static class SiloMasking
{
    private const string SelfMaskLabel = "FederatedFunctions/secure-aggregation/self-mask/v1";

    /// <summary>The silo's public key for an attempt (SubjectPublicKeyInfo DER): what it sends to the key exchange.</summary>
    /// <exception cref="ArgumentException">See <see cref="MaskingKeys.Derive"/>.</exception>
    public static byte[] PublicKey(ReadOnlySpan<byte> siloSecret, string siloId, MaskingContext context)
    {
        using var keys = MaskingKeys.Derive(siloSecret, siloId, context);
        return keys.PublicKey;
    }

    /// <summary>
    /// The seed of the silo's self-mask for an attempt: added to its masked update, and revealed to the aggregator only
    /// once every masked update of the attempt has arrived and been checked, so that a masked update can be unmasked
    /// only as part of that attempt's sum.
    /// </summary>
    /// <remarks>
    /// Without a self-mask, a silo that is late rather than gone would let the aggregator difference two attempts: the
    /// late update completes the abandoned attempt's sum, and the redo's sum over the others subtracts from it. With it,
    /// an attempt's sum is readable only if every contributor revealed its seed for that attempt, and a silo reveals for
    /// at most one attempt per round (the caller enforces that), so no two readable sums of a round share a silo.
    /// <c>seed = HKDF-SHA256(ikm = secret, salt = UTF-8(label), info = label, siloId, runId, round, attempt)</c>, 32 bytes.
    /// </remarks>
    public static byte[] SelfMaskSeed(ReadOnlySpan<byte> siloSecret, string siloId, MaskingContext context)
    {
        var seed = new byte[PairwiseSeed.Length];
        PairwiseSeed.FromSiloSecret(siloSecret, SelfMaskLabel, siloId, context, counter: null, seed);
        return seed;
    }

    /// <summary>Removes the revealed self-masks from the sum of an attempt's masked updates.</summary>
    public static void RemoveSelfMasks(Span<uint> sum, IEnumerable<byte[]> seeds)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        foreach (var seed in seeds)
        {
            AesCtrPrg.SubtractFrom(seed, sum);
        }
    }

    /// <summary>A silo's weight: its example count over the run's cap, at most 1; or 1 for every silo when weights are equal (differential privacy).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count or cap that is not positive.</exception>
    public static double Weight(long examples, long maxExamples, bool equalWeights)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(examples);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExamples);
        return equalWeights ? 1.0 : Math.Min(examples, maxExamples) / (double)maxExamples;
    }

    /// <summary>Clips, weights, quantizes and masks the silo's update (pairwise masks and its self-mask); returns the masked update file for its outbox.</summary>
    /// <param name="siloSecret">The silo's masking secret.</param>
    /// <param name="siloId">The silo.</param>
    /// <param name="context">The attempt.</param>
    /// <param name="keyExchange">Every public key of the attempt by silo id, this silo's own included.</param>
    /// <param name="update">The silo's trained model.</param>
    /// <param name="global">The round's global model.</param>
    /// <param name="weight">The silo's weight (<see cref="Weight"/>).</param>
    /// <param name="loss">The silo's train loss.</param>
    /// <param name="clipNorm">The clipping norm.</param>
    /// <param name="encoding">The round's encoding (<see cref="MaskedUpdateCodec.Encoding"/>).</param>
    /// <exception cref="ArgumentException">
    /// The key exchange lacks this silo, lists a key for it that is not its own, or has no other silo; or the update does
    /// not fit the global model (see <see cref="MaskedUpdateCodec.Quantize"/>).
    /// </exception>
    public static byte[] Mask(
        ReadOnlySpan<byte> siloSecret,
        string siloId,
        MaskingContext context,
        IReadOnlyDictionary<string, byte[]> keyExchange,
        IReadOnlyList<NamedTensor> update,
        IReadOnlyList<NamedTensor> global,
        double weight,
        double loss,
        double clipNorm,
        FixedPoint encoding)
    {
        ArgumentNullException.ThrowIfNull(keyExchange);
        if (!keyExchange.ContainsKey(siloId))
        {
            throw new ArgumentException($"The key exchange does not list silo '{siloId}': it would mask against silos that do not mask against it.", nameof(keyExchange));
        }

        return MaskVector(siloSecret, siloId, context, keyExchange, MaskedUpdateCodec.Quantize(update, global, weight, loss, clipNorm, encoding));
    }

    /// <summary>Masks a vector of ring elements in place (pairwise masks and the self-mask); returns the masked file for the silo's outbox.</summary>
    /// <param name="siloSecret">The silo's masking secret.</param>
    /// <param name="siloId">The silo.</param>
    /// <param name="context">The attempt.</param>
    /// <param name="keyExchange">Every public key of the attempt by silo id, this silo's own included.</param>
    /// <param name="vector">The encoded values; masked in place.</param>
    /// <exception cref="ArgumentException">The key exchange lacks this silo, lists a key for it that is not its own, or has no other silo.</exception>
    public static byte[] MaskVector(ReadOnlySpan<byte> siloSecret, string siloId, MaskingContext context, IReadOnlyDictionary<string, byte[]> keyExchange, uint[] vector)
    {
        ArgumentNullException.ThrowIfNull(keyExchange);
        ArgumentNullException.ThrowIfNull(vector);
        if (!keyExchange.ContainsKey(siloId))
        {
            throw new ArgumentException($"The key exchange does not list silo '{siloId}': it would mask against silos that do not mask against it.", nameof(keyExchange));
        }

        using var keys = MaskingKeys.Derive(siloSecret, siloId, context);
        Masking.MaskInPlace(vector, siloId, keyExchange, keys, context);
        var self = SelfMaskSeed(siloSecret, siloId, context);
        try
        {
            AesCtrPrg.AddTo(self, vector);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(self);
        }

        return MaskedUpdateCodec.Serialize(vector, context, siloId, MaskedUpdateCodec.KeyExchangeSha256(keyExchange));
    }
}
