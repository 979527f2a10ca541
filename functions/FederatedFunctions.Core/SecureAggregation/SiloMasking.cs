using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>The silo's side of secure aggregation: publish an attempt's public key, then mask the update against the attempt's keys.</summary>
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
    /// <summary>The silo's public key for an attempt (SubjectPublicKeyInfo DER): what it sends to the key exchange.</summary>
    /// <exception cref="ArgumentException">See <see cref="MaskingKeys.Derive"/>.</exception>
    public static byte[] PublicKey(ReadOnlySpan<byte> siloSecret, string siloId, MaskingContext context)
    {
        using var keys = MaskingKeys.Derive(siloSecret, siloId, context);
        return keys.PublicKey;
    }

    /// <summary>A silo's weight: its example count over the run's cap, at most 1; or 1 for every silo when weights are equal (differential privacy).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count or cap that is not positive.</exception>
    public static double Weight(long examples, long maxExamples, bool equalWeights)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(examples);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExamples);
        return equalWeights ? 1.0 : Math.Min(examples, maxExamples) / (double)maxExamples;
    }

    /// <summary>Clips, weights, quantizes and masks the silo's update; returns the masked update file for its outbox.</summary>
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

        using var keys = MaskingKeys.Derive(siloSecret, siloId, context);
        var vector = MaskedUpdateCodec.Quantize(update, global, weight, loss, clipNorm, encoding);
        Masking.MaskInPlace(vector, siloId, keyExchange, keys, context);
        return MaskedUpdateCodec.Serialize(vector, context, siloId, MaskedUpdateCodec.KeyExchangeSha256(keyExchange));
    }
}
