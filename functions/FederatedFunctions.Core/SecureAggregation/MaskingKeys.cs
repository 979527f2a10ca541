using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>One silo's ECDH P-256 key pair for one attempt of secure aggregation.</summary>
/// <remarks>
/// <para>
/// <b>The private key never leaves the silo.</b> The only export is <see cref="PublicKey"/> (SubjectPublicKeyInfo
/// DER), which is what travels through orchestration history. There is no method that exports the private key,
/// and serializing an instance with System.Text.Json (the Durable Task data converter) throws
/// <see cref="NotSupportedException"/>, so a key pair cannot slip into an activity input or output by accident.
/// </para>
/// <para>
/// <b>One key pair, one attempt.</b> The first pairwise seed derived binds the key pair to that silo id and
/// <see cref="MaskingContext"/>; deriving for any other silo id or context throws
/// <see cref="InvalidOperationException"/>. A redo after a dropout must generate fresh key pairs, so masks of
/// different attempts are independent even before the attempt number enters the HKDF info.
/// </para>
/// <para>Dispose the instance when the silo's masked update is written; the key is then gone.</para>
/// </remarks>
[JsonConverter(typeof(NotSerializableConverter))]
public sealed class MaskingKeys : IDisposable
{
    private readonly ECDiffieHellman key;
    private readonly byte[] publicKey;
    private readonly Lock gate = new();
    private MaskingContext? boundContext;
    private string? boundSiloId;
    private bool disposed;

    internal MaskingKeys(ECDiffieHellman key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!IsP256(key))
        {
            throw new ArgumentException("Masking keys must be on the NIST P-256 curve.", nameof(key));
        }

        this.key = key;
        publicKey = key.ExportSubjectPublicKeyInfo();
    }

    /// <summary>A copy of the public key as SubjectPublicKeyInfo DER bytes, safe to publish.</summary>
    public byte[] PublicKey => (byte[])publicKey.Clone();

    /// <summary>Generates a fresh key pair from the operating system's random number generator.</summary>
    public static MaskingKeys Generate() => new(ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>The fewest bytes a silo's masking secret may have.</summary>
    public const int MinSecretBytes = 32;

    /// <summary>The key pair of silo <paramref name="siloId"/> for one attempt, derived from a secret the silo keeps.</summary>
    /// <remarks>
    /// <para>
    /// Deterministic, so an activity that runs more than once (at-least-once delivery) publishes the same public key and
    /// later masks with the matching private key, and no private key is ever stored: it exists only while the silo
    /// derives it. The private scalar is <c>d = HKDF-SHA256(ikm = secret, salt = UTF-8(label), info)</c>, 32 bytes, with
    /// <c>info = label, siloId, runId, round, attempt, counter</c> encoded as in <see cref="PairwiseSeed"/>; the counter
    /// starts at 0 and is raised until <c>0 &lt; d &lt; n</c> (the P-256 group order), which the first value satisfies
    /// except with probability about 2⁻³².
    /// </para>
    /// <para>
    /// Different attempts, rounds and runs get independent key pairs, as a fresh <see cref="Generate"/> would give. The
    /// returned instance is already bound to the silo and context: it derives seeds for nothing else.
    /// </para>
    /// </remarks>
    /// <param name="siloSecret">At least <see cref="MinSecretBytes"/> bytes from a CSPRNG, kept inside the silo.</param>
    /// <param name="siloId">The silo.</param>
    /// <param name="context">The attempt.</param>
    /// <exception cref="ArgumentException">A secret shorter than <see cref="MinSecretBytes"/> or an empty silo id.</exception>
    public static MaskingKeys Derive(ReadOnlySpan<byte> siloSecret, string siloId, MaskingContext context)
    {
        var d = new byte[32];
        try
        {
            for (var counter = 0; ; counter++)
            {
                PairwiseSeed.FromSiloSecret(siloSecret, DerivationLabel, siloId, context, counter, d);
                if (IsValidScalar(d))
                {
                    break;
                }
            }

            var key = ECDiffieHellman.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
            return new MaskingKeys(key) { boundContext = context, boundSiloId = siloId };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(d);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            if (!disposed)
            {
                disposed = true;
                key.Dispose();
            }
        }
    }

    /// <summary>The 32-byte seed this silo shares with <paramref name="peerId"/> in <paramref name="context"/>.</summary>
    /// <remarks>Both sides of a pair get the same bytes; see <see cref="PairwiseSeed"/> for the derivation.</remarks>
    /// <exception cref="ArgumentException">The peer id equals the silo id, or the peer key is not a P-256 SubjectPublicKeyInfo.</exception>
    /// <exception cref="InvalidOperationException">The key pair is already bound to another silo id or context.</exception>
    /// <exception cref="ObjectDisposedException">The key pair was disposed.</exception>
    internal byte[] DerivePairwiseSeed(string selfId, string peerId, ReadOnlySpan<byte> peerPublicKey, MaskingContext context)
    {
        ArgumentException.ThrowIfNullOrEmpty(selfId);
        ArgumentException.ThrowIfNullOrEmpty(peerId);
        ArgumentNullException.ThrowIfNull(context);
        if (string.Equals(selfId, peerId, StringComparison.Ordinal))
        {
            throw new ArgumentException($"Silo '{selfId}' cannot mask against itself.", nameof(peerId));
        }

        using var peer = ImportPeer(peerId, peerPublicKey);
        byte[] secret;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (boundContext is null)
            {
                boundContext = context;
                boundSiloId = selfId;
            }
            else if (boundContext != context || !string.Equals(boundSiloId, selfId, StringComparison.Ordinal))
            {
                throw new InvalidOperationException(
                    $"This key pair belongs to silo '{boundSiloId}' in run '{boundContext.RunId}' round {boundContext.Round} attempt {boundContext.Attempt}; " +
                    "a key pair serves exactly one silo in one attempt. Generate a fresh one.");
            }

            secret = key.DeriveRawSecretAgreement(peer.PublicKey);
        }

        try
        {
            return PairwiseSeed.FromSharedSecret(secret, context, selfId, publicKey, peerId, peerPublicKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    private static ECDiffieHellman ImportPeer(string peerId, ReadOnlySpan<byte> peerPublicKey)
    {
        var peer = ECDiffieHellman.Create();
        try
        {
            peer.ImportSubjectPublicKeyInfo(peerPublicKey, out var read);
            if (read != peerPublicKey.Length || !IsP256(peer))
            {
                throw new CryptographicException("Not a single P-256 public key.");
            }

            return peer;
        }
        catch (CryptographicException e)
        {
            peer.Dispose();
            throw new ArgumentException($"The public key of silo '{peerId}' is not a P-256 SubjectPublicKeyInfo.", nameof(peerPublicKey), e);
        }
    }

    // Label of Derive's HKDF; distinct from the pairwise seeds' label, so a scalar is never also a seed.
    private const string DerivationLabel = "FederatedFunctions/secure-aggregation/attempt-key/v1";

    // The order n of the P-256 group, big-endian.
    private static readonly byte[] P256Order = Convert.FromHexString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");

    private static bool IsValidScalar(ReadOnlySpan<byte> d) =>
        d.IndexOfAnyExcept((byte)0) >= 0 && d.SequenceCompareTo(P256Order) < 0;

    private static bool IsP256(ECDiffieHellman key) =>
        key.KeySize == 256 && key.ExportParameters(includePrivateParameters: false).Curve.Oid.Value == ECCurve.NamedCurves.nistP256.Oid.Value;

    /// <summary>Refuses to read or write <see cref="MaskingKeys"/> as JSON.</summary>
    private sealed class NotSerializableConverter : JsonConverter<MaskingKeys>
    {
        public override MaskingKeys Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            throw new NotSupportedException("Masking keys cannot be deserialized: a private key never travels.");

        public override void Write(Utf8JsonWriter writer, MaskingKeys value, JsonSerializerOptions options) =>
            throw new NotSupportedException("Masking keys cannot be serialized: the private key never leaves the silo. Publish MaskingKeys.PublicKey instead.");
    }
}
