using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class SiloMaskingTests
{
    private static readonly MaskingContext Context = new("run-a", 3, 0);

    private static byte[] Secret(string label) => SHA256.HashData(Encoding.UTF8.GetBytes(label));

    private static NamedTensor F32(string name, float[] values, params long[] shape) =>
        new(name, TensorDType.F32, shape.Length == 0 ? [values.Length] : shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static float[] Random(int seed, int n, double scale)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() - 0.5) * 2 * scale)).ToArray();
    }

    private static IReadOnlyList<NamedTensor> Model(float[] weight, float[] bias) => [F32("w", weight, 4, weight.Length / 4), F32("b", bias)];

    [Fact]
    public void Derive_SameSecretSiloAndAttempt_SamePublicKey()
    {
        Assert.Equal(SiloMasking.PublicKey(Secret("s"), "silo-1", Context), SiloMasking.PublicKey(Secret("s"), "silo-1", Context));
    }

    [Fact]
    public void Derive_AnyInputChanged_AnotherKey()
    {
        var key = SiloMasking.PublicKey(Secret("s"), "silo-1", Context);
        Assert.NotEqual(key, SiloMasking.PublicKey(Secret("t"), "silo-1", Context));
        Assert.NotEqual(key, SiloMasking.PublicKey(Secret("s"), "silo-2", Context));
        Assert.NotEqual(key, SiloMasking.PublicKey(Secret("s"), "silo-1", Context.NextAttempt()));
        Assert.NotEqual(key, SiloMasking.PublicKey(Secret("s"), "silo-1", new MaskingContext("run-a", 4, 0)));
        Assert.NotEqual(key, SiloMasking.PublicKey(Secret("s"), "silo-1", new MaskingContext("run-b", 3, 0)));
    }

    [Fact]
    public void SelfMaskSeed_DiffersPerAttemptAndFromThePairwiseKeys()
    {
        var seed = SiloMasking.SelfMaskSeed(Secret("s"), "silo-1", Context);
        Assert.Equal(seed, SiloMasking.SelfMaskSeed(Secret("s"), "silo-1", Context));
        Assert.NotEqual(seed, SiloMasking.SelfMaskSeed(Secret("s"), "silo-1", Context.NextAttempt()));
        Assert.NotEqual(seed, SiloMasking.SelfMaskSeed(Secret("s"), "silo-2", Context));
        Assert.Throws<ArgumentException>(() => SiloMasking.SelfMaskSeed(new byte[16], "silo-1", Context));
    }

    [Fact]
    public void Derive_ShortSecret_Throws()
    {
        Assert.Throws<ArgumentException>(() => MaskingKeys.Derive(new byte[31], "silo-1", Context));
    }

    [Fact]
    public void Derive_KeyIsBoundToItsSiloAndAttempt()
    {
        using var keys = MaskingKeys.Derive(Secret("s"), "silo-1", Context);
        var peer = new Dictionary<string, byte[]> { ["silo-2"] = SiloMasking.PublicKey(Secret("p"), "silo-2", Context.NextAttempt()) };
        Assert.Throws<InvalidOperationException>(() => Masking.MaskInPlace(new uint[4], "silo-1", peer, keys, Context.NextAttempt()));
        Assert.Throws<InvalidOperationException>(() => Masking.MaskInPlace(new uint[4], "silo-9", peer, keys, Context));
    }

    [Fact]
    public void Mask_ThreeSilos_DecodedSumIsTheWeightedMeanOfTheClippedChangesWithinTheBound()
    {
        string[] silos = ["a", "b", "c"];
        var global = Model(Random(1, 64, 1), Random(2, 4, 1));
        var keys = silos.ToDictionary(s => s, s => SiloMasking.PublicKey(Secret(s), s, Context), StringComparer.Ordinal);
        var encoding = MaskedUpdateCodec.Encoding(silos.Length);
        double[] weights = [0.2, 0.5, 1.0];
        var sum = new uint[MaskedUpdateCodec.VectorLength(global)];
        var expected = new double[68];
        var g = Flat(global);
        for (var i = 0; i < silos.Length; i++)
        {
            // Changes of norm about 0.3 (not clipped) and one of norm about 2.3 (clipped to 1).
            var scale = i == 2 ? 0.5 : 0.06;
            var update = Model(Add(global[0], Random(10 + i, 64, scale)), Add(global[1], Random(20 + i, 4, scale)));
            var file = MaskedUpdateCodec.Parse(SiloMasking.Mask(Secret(silos[i]), silos[i], Context, keys, update, global, weights[i], 0.5 + i, 1.0, encoding));
            Assert.Equal((silos[i], Context), (file.Update.SiloId, file.Update.Context));
            for (var k = 0; k < sum.Length; k++)
            {
                sum[k] = unchecked(sum[k] + file.Update.Values[k]);
            }

            var delta = Flat(update).Zip(g, (u, v) => u - v).ToArray();
            var norm = Math.Sqrt(delta.Sum(d => d * d));
            var clip = Math.Min(1, 1.0 / norm);
            Assert.True(i != 2 || clip < 1, "the third change is clipped");
            for (var k = 0; k < expected.Length; k++)
            {
                expected[k] += weights[i] * clip * delta[k];
            }
        }

        // Until every self-mask is removed, the sum is noise; once they are, it decodes.
        Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Decode(sum, global, encoding, 1.0));
        SiloMasking.RemoveSelfMasks(sum, silos.Select(s => SiloMasking.SelfMaskSeed(Secret(s), s, Context)));
        var decoded = MaskedUpdateCodec.Decode(sum, global, encoding, 1.0);
        var total = weights.Sum();
        Assert.Equal(total, decoded.TotalWeight, 6);
        Assert.Equal(((0.2 * 0.5) + (0.5 * 1.5) + (1.0 * 2.5)) / total, decoded.Loss, 4);
        var actual = Flat(decoded.Model);
        var bound = (encoding.MaxSumError / total) + 1e-6;
        for (var k = 0; k < expected.Length; k++)
        {
            Assert.True(Math.Abs(g[k] + (expected[k] / total) - actual[k]) <= bound, $"coordinate {k}");
        }
    }

    [Fact]
    public void Decode_SumMissingOneSilo_RefusedAsOutsideTheHeadroom()
    {
        string[] silos = ["a", "b", "c"];
        var global = Model(Random(1, 64, 1), Random(2, 4, 1));
        var keys = silos.ToDictionary(s => s, s => SiloMasking.PublicKey(Secret(s), s, Context), StringComparer.Ordinal);
        var encoding = MaskedUpdateCodec.Encoding(silos.Length);
        var sum = new uint[MaskedUpdateCodec.VectorLength(global)];
        foreach (var s in silos.Take(2))
        {
            var values = MaskedUpdateCodec.Parse(SiloMasking.Mask(Secret(s), s, Context, keys, global, global, 1, 0, 1.0, encoding)).Update.Values;
            for (var k = 0; k < sum.Length; k++)
            {
                sum[k] = unchecked(sum[k] + values[k]);
            }
        }

        SiloMasking.RemoveSelfMasks(sum, silos.Take(2).Select(s => SiloMasking.SelfMaskSeed(Secret(s), s, Context)));
        var ex = Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Decode(sum, global, encoding, 1.0));
        Assert.Contains("did not cancel", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mask_OneMaskedUpdate_IsUniformOnTheRing()
    {
        // χ² on the top 8 bits of 16 384 masked elements of an all-zero change: 255 degrees of freedom, 0.1% critical value 330.5.
        var global = new[] { F32("w", new float[16382]) };
        string[] silos = ["a", "b"];
        var keys = silos.ToDictionary(s => s, s => SiloMasking.PublicKey(Secret(s), s, Context), StringComparer.Ordinal);
        var values = MaskedUpdateCodec.Parse(SiloMasking.Mask(Secret("a"), "a", Context, keys, global, global, 1, 0, 1.0, MaskedUpdateCodec.Encoding(2))).Update.Values;
        var bins = new int[256];
        foreach (var v in values)
        {
            bins[v >> 24]++;
        }

        var expected = values.Length / 256.0;
        var chi2 = bins.Sum(b => (b - expected) * (b - expected) / expected);
        Assert.True(chi2 < 330.5, $"chi2 {chi2}");
    }

    [Fact]
    public void Mask_KeyExchangeWithoutThisSiloOrWithAnotherKeyForIt_Refused()
    {
        var global = Model(Random(1, 8, 1), Random(2, 4, 1));
        var encoding = MaskedUpdateCodec.Encoding(2);
        var without = new Dictionary<string, byte[]> { ["b"] = SiloMasking.PublicKey(Secret("b"), "b", Context) };
        Assert.Throws<ArgumentException>(() => SiloMasking.Mask(Secret("a"), "a", Context, without, global, global, 1, 0, 1, encoding));
        var substituted = new Dictionary<string, byte[]>(without) { ["a"] = SiloMasking.PublicKey(Secret("x"), "a", Context) };
        Assert.Throws<ArgumentException>(() => SiloMasking.Mask(Secret("a"), "a", Context, substituted, global, global, 1, 0, 1, encoding));
    }

    [Fact]
    public void Quantize_UpdateThatDoesNotFitTheModel_RefusedNamingTheTensorNotTheValue()
    {
        var global = Model(Random(1, 8, 1), Random(2, 4, 1));
        var encoding = MaskedUpdateCodec.Encoding(2);
        var nan = Model([.. Random(1, 7, 1), float.NaN], Random(2, 4, 1));
        var ex = Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Quantize(nan, global, 1, 0, 1, encoding));
        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("NaN", ex.Message, StringComparison.Ordinal);

        var reshaped = new[] { F32("w", Random(1, 8, 1), 8), global[1] };
        Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Quantize(reshaped, global, 1, 0, 1, encoding));
        Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Quantize([global[0]], global, 1, 0, 1, encoding));
        var doubles = new[] { new NamedTensor("w", TensorDType.F64, [1], new byte[8]) };
        Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.VectorLength(doubles));
        Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Quantize(global, global, 0, 0, 1, encoding));
        Assert.Throws<ArgumentException>(() => MaskedUpdateCodec.Quantize(global, global, 1.5, 0, 1, encoding));
    }

    [Fact]
    public void Parse_AModelInsteadOfAMaskedUpdate_RefusedAsFormat()
    {
        var model = Safetensors.Serialize(Model(Random(1, 8, 1), Random(2, 4, 1)));
        Assert.Throws<FormatException>(() => MaskedUpdateCodec.Parse(model));
    }

    [Fact]
    public void Serialize_SameSizeWhateverTheValues()
    {
        var a = MaskedUpdateCodec.Serialize(new uint[100], Context, "silo-1", new string('a', 64));
        var b = MaskedUpdateCodec.Serialize(Enumerable.Repeat(uint.MaxValue, 100).ToArray(), Context, "silo-1", new string('b', 64));
        Assert.Equal(a.Length, b.Length);
    }

    [Fact]
    public void Decide_SameSilosAsCombine_SameOutcome()
    {
        var attempt = new SecureAggregationAttempt(Context, ["a", "b", "c", "d"], 2);
        var combined = attempt.Combine(new[] { "a", "c", "d" }.Select(s => new MaskedUpdate(s, Context, new uint[3])));
        var decided = attempt.Decide(["a", "c", "d", "z"]);
        Assert.Equal(combined.Status, decided.Status);
        Assert.Equal(combined.Dropped, decided.Dropped);
        Assert.Equal(combined.NextAttempt!.Participants, decided.NextAttempt!.Participants);
        Assert.Equal(["z"], decided.Ignored);
        Assert.Null(decided.Sum);
        Assert.Throws<ArgumentException>(() => attempt.Decide(["a", "a"]));
    }

    private static float[] Add(NamedTensor t, float[] delta) =>
        MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray().Zip(delta, (a, b) => a + b).ToArray();

    private static double[] Flat(IReadOnlyList<NamedTensor> model) =>
        model.OrderBy(t => t.Name, StringComparer.Ordinal).SelectMany(t => MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray().Select(v => (double)v)).ToArray();
}
