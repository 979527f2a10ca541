using System.Security.Cryptography;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>Pairwise additive masking of quantized updates (Bonawitz et al. 2017, without the secret-sharing layer).</summary>
/// <remarks>
/// <para>
/// Silo <c>i</c> sends <c>y_i = q_i + Σ_{j ≠ i} ±PRG(s_ij) mod 2^32</c>, with <c>+</c> when <c>i &lt; j</c> in ordinal
/// order and <c>−</c> otherwise, where <c>s_ij = s_ji</c> is the pairwise seed both derive by ECDH and HKDF
/// (<see cref="MaskingKeys"/>) and PRG is <see cref="AesCtrPrg"/>. Every pair's mask appears once with each sign,
/// so when every silo of the attempt's key exchange contributes, <c>Σ y_i = Σ q_i mod 2^32</c> exactly, while any
/// single <c>y_i</c> (indeed any strict subset sum) is uniformly distributed to the aggregator.
/// </para>
/// <para>
/// The guarantee needs the same participant set on every side: each silo must be given the public keys of exactly
/// the silos of the attempt, and the aggregator must sum exactly those silos' updates
/// (<see cref="SecureAggregationAttempt"/>). A mask is a one-time pad: a silo must mask only one vector per attempt.
/// </para>
/// </remarks>
public static class Masking
{
    /// <summary>Masks <paramref name="quantized"/> in place for silo <paramref name="selfId"/>.</summary>
    /// <param name="quantized">The silo's quantized (already weighted) update; becomes the masked update.</param>
    /// <param name="selfId">This silo's id.</param>
    /// <param name="peerPublicKeys">
    /// SubjectPublicKeyInfo bytes of every silo of the attempt by silo id. This silo's own entry may be present
    /// (the whole key exchange) and must then equal its own public key.
    /// </param>
    /// <param name="self">This silo's key pair for the attempt.</param>
    /// <param name="context">The attempt.</param>
    /// <exception cref="ArgumentException">No peer, a malformed peer key, or an own entry that is not this silo's key.</exception>
    /// <exception cref="InvalidOperationException">The key pair already served another silo or attempt.</exception>
    public static void MaskInPlace(
        Span<uint> quantized,
        string selfId,
        IReadOnlyDictionary<string, byte[]> peerPublicKeys,
        MaskingKeys self,
        MaskingContext context)
    {
        ArgumentException.ThrowIfNullOrEmpty(selfId);
        ArgumentNullException.ThrowIfNull(peerPublicKeys);
        ArgumentNullException.ThrowIfNull(self);
        ArgumentNullException.ThrowIfNull(context);

        if (peerPublicKeys.TryGetValue(selfId, out var own) && !own.AsSpan().SequenceEqual(self.PublicKey))
        {
            throw new ArgumentException($"The key exchange lists a public key for '{selfId}' that is not this silo's own.", nameof(peerPublicKeys));
        }

        var peers = peerPublicKeys.Keys.Where(id => !string.Equals(id, selfId, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        if (peers.Length == 0)
        {
            throw new ArgumentException("Masking needs at least one peer; a lone update would reach the aggregator in the clear.", nameof(peerPublicKeys));
        }

        foreach (var peerId in peers)
        {
            var seed = self.DerivePairwiseSeed(selfId, peerId, peerPublicKeys[peerId], context);
            try
            {
                if (string.CompareOrdinal(selfId, peerId) < 0)
                {
                    AesCtrPrg.AddTo(seed, quantized);
                }
                else
                {
                    AesCtrPrg.SubtractFrom(seed, quantized);
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(seed);
            }
        }
    }

    /// <summary>Masks a copy of <paramref name="quantized"/> and labels it with its silo and attempt.</summary>
    /// <exception cref="ArgumentException">See <see cref="MaskInPlace"/>.</exception>
    /// <exception cref="InvalidOperationException">See <see cref="MaskInPlace"/>.</exception>
    public static MaskedUpdate Mask(
        ReadOnlySpan<uint> quantized,
        string selfId,
        IReadOnlyDictionary<string, byte[]> peerPublicKeys,
        MaskingKeys self,
        MaskingContext context)
    {
        var values = quantized.ToArray();
        MaskInPlace(values, selfId, peerPublicKeys, self, context);
        return new MaskedUpdate(selfId, context, values);
    }
}

/// <summary>One silo's masked update, labelled with the attempt whose masks it carries.</summary>
/// <remarks>
/// The label lets <see cref="SecureAggregationAttempt.Combine"/> refuse an update masked for another attempt:
/// its masks cancel against nothing in this attempt, so it could only corrupt the sum.
/// </remarks>
/// <param name="SiloId">The silo that masked it.</param>
/// <param name="Context">The attempt whose key exchange produced the masks.</param>
/// <param name="Values">The masked ring elements.</param>
public sealed record MaskedUpdate(string SiloId, MaskingContext Context, uint[] Values);
