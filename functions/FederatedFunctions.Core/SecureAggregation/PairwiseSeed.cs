using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>HKDF-SHA256 from an ECDH shared secret to the 32-byte seed of one pair's mask.</summary>
/// <remarks>
/// <para>
/// <c>seed = HKDF-SHA256(ikm = raw ECDH secret (the x-coordinate), salt = UTF-8(Label), info, L = 32)</c>, where
/// <c>info</c> is the concatenation of these fields, each string or byte field as a 4-byte big-endian length
/// followed by its bytes (UTF-8 for strings) and each integer as 4 bytes big-endian:
/// <c>Label, runId, round, attempt, lowId, highId, lowPublicKey, highPublicKey</c>.
/// <c>lowId</c> is the ordinally smaller silo id, and the public keys are the two SubjectPublicKeyInfo encodings in
/// the same order, so both sides build the same bytes. Length prefixes make the encoding injective: ids that
/// contain separators cannot collide.
/// </para>
/// <para>Seeds are secrets of the two silos of the pair; nothing outside this assembly can obtain one.</para>
/// </remarks>
internal static class PairwiseSeed
{
    /// <summary>Protocol label, used as HKDF salt and as the first info field.</summary>
    internal const string Label = "FederatedFunctions/secure-aggregation/pairwise-mask-seed/v1";

    /// <summary>Seed length in bytes: an AES-256 key.</summary>
    internal const int Length = 32;

    internal static byte[] FromSharedSecret(
        ReadOnlySpan<byte> sharedSecret,
        MaskingContext context,
        string idA,
        ReadOnlySpan<byte> publicKeyA,
        string idB,
        ReadOnlySpan<byte> publicKeyB)
    {
        ArgumentNullException.ThrowIfNull(context);
        var order = string.CompareOrdinal(idA, idB);
        if (order == 0)
        {
            throw new ArgumentException($"A pair needs two distinct silos; both are '{idA}'.", nameof(idB));
        }

        var lowFirst = order < 0;
        var lowId = lowFirst ? idA : idB;
        var highId = lowFirst ? idB : idA;
        var lowKey = lowFirst ? publicKeyA : publicKeyB;
        var highKey = lowFirst ? publicKeyB : publicKeyA;
        var info = new List<byte>(256);
        AppendBytes(info, Encoding.UTF8.GetBytes(Label));
        AppendBytes(info, Encoding.UTF8.GetBytes(context.RunId));
        AppendInt(info, context.Round);
        AppendInt(info, context.Attempt);
        AppendBytes(info, Encoding.UTF8.GetBytes(lowId));
        AppendBytes(info, Encoding.UTF8.GetBytes(highId));
        AppendBytes(info, lowKey);
        AppendBytes(info, highKey);

        var seed = new byte[Length];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, sharedSecret, seed, Encoding.UTF8.GetBytes(Label), info.ToArray());
        return seed;
    }

    /// <summary>
    /// <c>HKDF-SHA256(ikm = siloSecret, salt = UTF-8(label), info = label, siloId, runId, round, attempt[, counter])</c>
    /// into <paramref name="output"/>: the per-attempt values a silo derives from its own secret.
    /// </summary>
    /// <exception cref="ArgumentException">A secret shorter than <see cref="MaskingKeys.MinSecretBytes"/> or an empty silo id.</exception>
    internal static void FromSiloSecret(ReadOnlySpan<byte> siloSecret, string label, string siloId, MaskingContext context, int? counter, Span<byte> output)
    {
        ArgumentException.ThrowIfNullOrEmpty(siloId);
        ArgumentNullException.ThrowIfNull(context);
        if (siloSecret.Length < MaskingKeys.MinSecretBytes)
        {
            throw new ArgumentException($"A masking secret needs at least {MaskingKeys.MinSecretBytes} bytes; got {siloSecret.Length}.", nameof(siloSecret));
        }

        var salt = Encoding.UTF8.GetBytes(label);
        var info = new List<byte>(128);
        AppendBytes(info, salt);
        AppendBytes(info, Encoding.UTF8.GetBytes(siloId));
        AppendBytes(info, Encoding.UTF8.GetBytes(context.RunId));
        AppendInt(info, context.Round);
        AppendInt(info, context.Attempt);
        if (counter is { } c)
        {
            AppendInt(info, c);
        }

        HKDF.DeriveKey(HashAlgorithmName.SHA256, siloSecret, output, salt, info.ToArray());
    }

    internal static void AppendInt(List<byte> target, int value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(buffer, value);
        target.AddRange(buffer);
    }

    internal static void AppendBytes(List<byte> target, ReadOnlySpan<byte> bytes)
    {
        AppendInt(target, bytes.Length);
        target.AddRange(bytes);
    }
}
