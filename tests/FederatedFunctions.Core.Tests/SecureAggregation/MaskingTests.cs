using FederatedFunctions.Core.SecureAggregation;
using Xunit.Abstractions;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class MaskingTests(ITestOutputHelper output)
{
    /// <summary>Chi-square critical value, 255 degrees of freedom (256 buckets), upper tail p = 0.001.</summary>
    private const double ChiSquare255At0001 = 330.52;

    /// <summary>Chi-square critical value, 15 degrees of freedom (16 buckets), upper tail p = 0.001.</summary>
    private const double ChiSquare15At0001 = 37.70;

    private static readonly string[] FiveSilos = ["silo-1", "silo-2", "silo-3", "silo-4", "silo-5"];

    [Fact]
    public void MaskInPlace_FiveWeightedSilos_UnmaskedSumWithinQuantizationBound()
    {
        const int length = 20_000;
        long[] examples = [120, 80, 200, 50, 550];
        var total = (double)examples.Sum();
        var fp = FixedPoint.ForSilos(FiveSilos.Length, range: 1.0);
        var random = new Random(20170101);
        var inputs = FiveSilos.Select(_ => Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray()).ToArray();
        var weights = examples.Select(n => n / total).ToArray();
        using var silos = SecAggTestSilos.Random(new MaskingContext("run-a", 1, 0), FiveSilos);

        var quantized = FiveSilos.Select((_, i) => fp.Quantize(inputs[i], weights[i])).ToArray();
        var masked = FiveSilos.Select((id, i) => silos.Mask(id, quantized[i])).ToArray();
        var outcome = new SecureAggregationAttempt(silos.Context, FiveSilos).Combine(masked);

        Assert.Equal(SecureAggregationStatus.Complete, outcome.Status);

        Assert.NotNull(outcome.Sum);
        Assert.All(masked, (m, i) => Assert.NotEqual(quantized[i], m.Values));
        Assert.Equal(SumMod32(quantized), outcome.Sum);

        var decoded = fp.Dequantize(outcome.Sum);
        var maxError = 0.0;
        for (var k = 0; k < length; k++)
        {
            var exact = 0.0;
            for (var i = 0; i < FiveSilos.Length; i++)
            {
                exact += weights[i] * inputs[i][k];
            }

            maxError = Math.Max(maxError, Math.Abs(decoded[k] - exact));
        }

        // Bound n · 0.5 / scale; the 1e-15 covers the double rounding of the reference sum itself.
        var bound = FiveSilos.Length * 0.5 / fp.Scale;
        output.WriteLine($"scale = 2^{Math.Log2(fp.Scale)}, max |error| = {maxError:E3}, bound n·0.5/scale = {bound:E3}");
        Assert.Equal(bound, fp.MaxSumError);
        Assert.InRange(maxError, 0, bound + 1e-15);
        Assert.True(maxError > 0, "Inputs that are not multiples of 1/scale must show some rounding.");
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.5f)]
    [InlineData(-1f)]
    public void MaskInPlace_ConstantInput_MaskedUpdateIsUniformOnUInt32(float constant)
    {
        const int length = 1 << 20;
        var fp = FixedPoint.ForSilos(FiveSilos.Length, range: 1.0);
        var context = new MaskingContext("run-uniform", 2, 0);
        using var silos = SecAggTestSilos.Deterministic(context, $"uniform/{constant}", FiveSilos);
        var values = new float[length];
        Array.Fill(values, constant);
        var quantized = fp.Quantize(values);

        var masked = silos.Mask("silo-3", quantized).Values;

        var highByte = ChiSquare(masked, v => (int)(v >> 24), 256);
        var lowByte = ChiSquare(masked, v => (int)(v & 0xFF), 256);
        var highNibble = ChiSquare(masked, v => (int)(v >> 28), 16);
        var unmaskedHighByte = ChiSquare(quantized, v => (int)(v >> 24), 256);
        output.WriteLine(
            $"input {constant}: chi2(high byte, df 255) = {highByte:F1}, chi2(low byte, df 255) = {lowByte:F1}, " +
            $"chi2(high nibble, df 15) = {highNibble:F1}; unmasked high byte = {unmaskedHighByte:E2}");

        Assert.InRange(highByte, 0, ChiSquare255At0001);
        Assert.InRange(lowByte, 0, ChiSquare255At0001);
        Assert.InRange(highNibble, 0, ChiSquare15At0001);
        Assert.True(unmaskedHighByte > 100 * ChiSquare255At0001, "Control: the unmasked constant vector is far from uniform.");
    }

    [Fact]
    public void MaskInPlace_VaryingInput_MaskedUpdateUncorrelatedWithInput()
    {
        const int length = 1 << 20;
        var fp = FixedPoint.ForSilos(FiveSilos.Length, range: 1.0);
        var context = new MaskingContext("run-correlation", 2, 0);
        using var silos = SecAggTestSilos.Deterministic(context, "correlation", FiveSilos);
        var random = new Random(42);
        var values = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var quantized = fp.Quantize(values);

        var masked = silos.Mask("silo-1", quantized).Values;

        var r = Pearson(values.Select(v => (double)v).ToArray(), masked.Select(v => (double)v).ToArray());
        var unmaskedR = Pearson(values.Select(v => (double)v).ToArray(), quantized.Select(v => (double)unchecked((int)v)).ToArray());
        output.WriteLine($"Pearson r(input, masked) = {r:E3}; 4/sqrt(N) = {4 / Math.Sqrt(length):E3}; control r(input, quantized) = {unmaskedR:F6}");

        Assert.InRange(Math.Abs(r), 0, 4 / Math.Sqrt(length));
        Assert.True(unmaskedR > 0.999, "Control: the unmasked quantized vector is the input.");
    }

    [Fact]
    public void MaskInPlace_TamperedPeerPublicKey_SumIsWrongAndFailsHeadroomCheck()
    {
        const int length = 256;
        var fp = FixedPoint.ForSilos(FiveSilos.Length, range: 1.0);
        using var silos = SecAggTestSilos.Random(new MaskingContext("run-tamper", 1, 0), FiveSilos);
        using var attacker = MaskingKeys.Generate();
        var quantized = FiveSilos.Select(_ => fp.Quantize(Enumerable.Repeat(0.25f, length).ToArray())).ToArray();

        // silo-2 is handed the attacker's key in place of silo-4's; everyone else sees the true keys.
        var forgedView = new Dictionary<string, byte[]>(silos.PublicKeys, StringComparer.Ordinal) { ["silo-4"] = attacker.PublicKey };
        var masked = FiveSilos.Select((id, i) => id == "silo-2"
            ? Masking.Mask(quantized[i], id, forgedView, silos.Keys[id], silos.Context)
            : silos.Mask(id, quantized[i])).ToArray();
        var outcome = new SecureAggregationAttempt(silos.Context, FiveSilos).Combine(masked);

        Assert.Equal(SecureAggregationStatus.Complete, outcome.Status);

        Assert.NotNull(outcome.Sum);
        Assert.NotEqual(SumMod32(quantized), outcome.Sum);
        Assert.False(fp.IsWithinHeadroom(outcome.Sum));
        Assert.True(fp.IsWithinHeadroom(SumMod32(quantized)));
    }

    [Fact]
    public void MaskInPlace_OwnEntryIsNotOwnKey_Throws()
    {
        using var silos = SecAggTestSilos.Random(new MaskingContext("run-x", 1, 0), "a", "b");
        var view = new Dictionary<string, byte[]>(silos.PublicKeys, StringComparer.Ordinal) { ["a"] = silos.PublicKeys["b"] };

        Assert.Throws<ArgumentException>(() => Masking.MaskInPlace(new uint[4], "a", view, silos.Keys["a"], silos.Context));
    }

    [Fact]
    public void MaskInPlace_NoPeers_ThrowsRatherThanSendInTheClear()
    {
        using var silos = SecAggTestSilos.Random(new MaskingContext("run-x", 1, 0), "a");
        var values = new uint[] { 1, 2, 3 };

        Assert.Throws<ArgumentException>(() => Masking.MaskInPlace(values, "a", silos.PublicKeys, silos.Keys["a"], silos.Context));
        Assert.Equal([1u, 2u, 3u], values);
    }

    [Fact]
    public void MaskInPlace_TwoSilos_OpposedSignsCancelExactly()
    {
        using var silos = SecAggTestSilos.Random(new MaskingContext("run-x", 1, 0), "b", "a");
        uint[] qa = [10, uint.MaxValue, 0];
        uint[] qb = [5, 1, 7];

        var ya = silos.Mask("a", qa).Values;
        var yb = silos.Mask("b", qb).Values;

        // a < b ordinally: a adds PRG(s_ab), b subtracts it.
        var maskA = ya.Zip(qa, (y, q) => unchecked(y - q)).ToArray();
        var maskB = yb.Zip(qb, (y, q) => unchecked(q - y)).ToArray();
        Assert.Equal(maskA, maskB);
        Assert.NotEqual(new uint[3], maskA);
    }

    internal static uint[] SumMod32(IEnumerable<uint[]> vectors)
    {
        uint[]? sum = null;
        foreach (var v in vectors)
        {
            sum ??= new uint[v.Length];
            for (var k = 0; k < v.Length; k++)
            {
                sum[k] = unchecked(sum[k] + v[k]);
            }
        }

        return sum ?? [];
    }

    private static double ChiSquare(uint[] values, Func<uint, int> bucket, int buckets)
    {
        var counts = new long[buckets];
        foreach (var v in values)
        {
            counts[bucket(v)]++;
        }

        var expected = (double)values.Length / buckets;
        return counts.Sum(c => (c - expected) * (c - expected) / expected);
    }

    private static double Pearson(double[] x, double[] y)
    {
        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }

        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }
}
