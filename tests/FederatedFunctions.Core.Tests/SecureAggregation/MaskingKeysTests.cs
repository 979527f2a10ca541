using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using FederatedFunctions.Core.SecureAggregation;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class MaskingKeysTests
{
    private static readonly MaskingContext Context = new("run-1", 3, 0);

    [Fact]
    public void DerivePairwiseSeed_BothSidesOfPair_SameThirtyTwoBytes()
    {
        using var a = MaskingKeys.Generate();
        using var b = MaskingKeys.Generate();

        var seedAb = a.DerivePairwiseSeed("silo-a", "silo-b", b.PublicKey, Context);
        var seedBa = b.DerivePairwiseSeed("silo-b", "silo-a", a.PublicKey, Context);

        Assert.Equal(32, seedAb.Length);
        Assert.Equal(seedAb, seedBa);
        Assert.NotEqual(new byte[32], seedAb);
    }

    [Fact]
    public void DerivePairwiseSeed_DifferentPeers_DifferentSeeds()
    {
        using var a = MaskingKeys.Generate();
        using var b = MaskingKeys.Generate();
        using var c = MaskingKeys.Generate();

        var ab = a.DerivePairwiseSeed("silo-a", "silo-b", b.PublicKey, Context);
        var ac = a.DerivePairwiseSeed("silo-a", "silo-c", c.PublicKey, Context);
        var bc = b.DerivePairwiseSeed("silo-b", "silo-c", c.PublicKey, Context);

        Assert.NotEqual(ab, ac);
        Assert.NotEqual(ab, bc);
        Assert.NotEqual(ac, bc);
    }

    [Fact]
    public void FromSharedSecret_ArgumentOrderOfPair_DoesNotMatter()
    {
        var secret = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        byte[] keyA = [1, 2, 3];
        byte[] keyB = [4, 5, 6];

        Assert.Equal(
            PairwiseSeed.FromSharedSecret(secret, Context, "silo-a", keyA, "silo-b", keyB),
            PairwiseSeed.FromSharedSecret(secret, Context, "silo-b", keyB, "silo-a", keyA));
    }

    public static TheoryData<string, MaskingContext, string, string> Variations => new()
    {
        { "other round", new MaskingContext("run-1", 4, 0), "silo-a", "silo-b" },
        { "other attempt", new MaskingContext("run-1", 3, 1), "silo-a", "silo-b" },
        { "other run", new MaskingContext("run-2", 3, 0), "silo-a", "silo-b" },
        { "other pair", Context, "silo-a", "silo-c" },
    };

    [Theory]
    [MemberData(nameof(Variations))]
    public void FromSharedSecret_SameSecretOtherContextOrPair_DifferentSeed(string what, MaskingContext context, string idA, string idB)
    {
        var secret = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        byte[] keyA = [1, 2, 3];
        byte[] keyB = [4, 5, 6];
        var baseline = PairwiseSeed.FromSharedSecret(secret, Context, "silo-a", keyA, "silo-b", keyB);

        var varied = PairwiseSeed.FromSharedSecret(secret, context, idA, keyA, idB, keyB);

        Assert.False(baseline.AsSpan().SequenceEqual(varied), what);
    }

    [Fact]
    public void DerivePairwiseSeed_SameKeyPairForNextAttempt_Throws()
    {
        using var a = MaskingKeys.Generate();
        using var b = MaskingKeys.Generate();
        a.DerivePairwiseSeed("silo-a", "silo-b", b.PublicKey, Context);

        var e = Assert.Throws<InvalidOperationException>(() => a.DerivePairwiseSeed("silo-a", "silo-b", b.PublicKey, Context.NextAttempt()));

        Assert.Contains("exactly one silo in one attempt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DerivePairwiseSeed_SameKeyPairForOtherSilo_Throws()
    {
        using var a = MaskingKeys.Generate();
        using var b = MaskingKeys.Generate();
        a.DerivePairwiseSeed("silo-a", "silo-b", b.PublicKey, Context);

        Assert.Throws<InvalidOperationException>(() => a.DerivePairwiseSeed("silo-x", "silo-b", b.PublicKey, Context));
    }

    [Fact]
    public void DerivePairwiseSeed_MalformedOrWrongCurvePeerKey_ThrowsArgumentException()
    {
        using var a = MaskingKeys.Generate();
        using var p384 = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP384);
        var truncated = a.PublicKey[..^1];

        Assert.Throws<ArgumentException>(() => a.DerivePairwiseSeed("silo-a", "silo-b", [1, 2, 3], Context));
        Assert.Throws<ArgumentException>(() => a.DerivePairwiseSeed("silo-a", "silo-b", truncated, Context));
        Assert.Throws<ArgumentException>(() => a.DerivePairwiseSeed("silo-a", "silo-b", p384.ExportSubjectPublicKeyInfo(), Context));
    }

    [Fact]
    public void DerivePairwiseSeed_AfterDispose_Throws()
    {
        var a = MaskingKeys.Generate();
        using var b = MaskingKeys.Generate();
        a.Dispose();

        Assert.Throws<ObjectDisposedException>(() => a.DerivePairwiseSeed("silo-a", "silo-b", b.PublicKey, Context));
    }

    [Fact]
    public void PublicKey_IsP256SubjectPublicKeyInfoAndACopy()
    {
        using var keys = MaskingKeys.Generate();
        var exported = keys.PublicKey;
        using var imported = ECDiffieHellman.Create();

        imported.ImportSubjectPublicKeyInfo(exported, out var read);
        exported[^1] ^= 0xFF;

        Assert.Equal(exported.Length, read);
        Assert.Equal(256, imported.KeySize);
        Assert.NotEqual(exported, keys.PublicKey);
    }

    [Fact]
    public void Serialize_MaskingKeysDirectlyOrInsideAnInput_ThrowsNotSupported()
    {
        using var keys = MaskingKeys.Generate();

        Assert.Throws<NotSupportedException>(() => JsonSerializer.Serialize(keys));
        Assert.Throws<NotSupportedException>(() => JsonSerializer.Serialize(new { Silo = "silo-a", Keys = keys }));
        Assert.Throws<NotSupportedException>(() => JsonSerializer.Deserialize<MaskingKeys>("{}"));
    }

    [Fact]
    public void PublicSurface_ExposesNoPrivateKeyMaterial()
    {
        var members = typeof(MaskingKeys)
            .GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Select(m => m.Name)
            .Where(n => !n.StartsWith("get_", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();

        // Derive takes the silo's secret in and gives a key pair out: nothing exports a private key.
        Assert.Equal(["Derive", "Dispose", "Generate", "MinSecretBytes", "PublicKey"], members);
    }
}
