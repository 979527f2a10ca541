using System.Security.Cryptography;
using System.Text;
using FederatedFunctions.Core.SecureAggregation;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

/// <summary>Silos with key pairs for tests: random ones, or deterministic ones so statistical tests are reproducible.</summary>
internal sealed class SecAggTestSilos : IDisposable
{
    private SecAggTestSilos(MaskingContext context, IReadOnlyList<string> ids, IReadOnlyList<MaskingKeys> keys)
    {
        Context = context;
        Ids = ids;
        Keys = ids.Zip(keys).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
        PublicKeys = Keys.ToDictionary(p => p.Key, p => p.Value.PublicKey, StringComparer.Ordinal);
    }

    public MaskingContext Context { get; }

    public IReadOnlyList<string> Ids { get; }

    public Dictionary<string, MaskingKeys> Keys { get; }

    public Dictionary<string, byte[]> PublicKeys { get; }

    /// <summary>Fresh random key pairs for <paramref name="ids"/>.</summary>
    public static SecAggTestSilos Random(MaskingContext context, params string[] ids) =>
        new(context, ids, ids.Select(_ => MaskingKeys.Generate()).ToArray());

    /// <summary>Key pairs whose private scalars are derived from <paramref name="label"/> and the silo id.</summary>
    public static SecAggTestSilos Deterministic(MaskingContext context, string label, params string[] ids) =>
        new(context, ids, ids.Select(id => DeterministicKeys(label + "/" + id)).ToArray());

    public static MaskingKeys DeterministicKeys(string label)
    {
        var parameters = new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            D = SHA256.HashData(Encoding.UTF8.GetBytes(label)),
        };
        return new MaskingKeys(ECDiffieHellman.Create(parameters));
    }

    public MaskedUpdate Mask(string silo, uint[] quantized) =>
        Masking.Mask(quantized, silo, PublicKeys, Keys[silo], Context);

    public void Dispose()
    {
        foreach (var key in Keys.Values)
        {
            key.Dispose();
        }
    }
}
