using System.Runtime.InteropServices;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Tests.Tensors;

public sealed class TensorMathTests
{
    private static NamedTensor F32(params float[] values) =>
        new("t", TensorDType.F32, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static NamedTensor F64(params double[] values) =>
        new("d", TensorDType.F64, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    [Fact]
    public void AllFinite_FiniteFloats_IsTrue()
    {
        var values = Enumerable.Range(0, 1001).Select(i => (i - 500) * 1e35f).Append(float.MaxValue).Append(float.Epsilon).ToArray();

        Assert.True(TensorMath.AllFinite(F32(values)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    [InlineData(63)]
    [InlineData(1000)] // in the scalar tail after the vectorised part
    public void AllFinite_NaNAnywhere_IsFalse(int position)
    {
        var values = new float[1001];
        values[position] = float.NaN;

        Assert.False(TensorMath.AllFinite(F32(values)));
    }

    [Theory]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void AllFinite_Infinity_IsFalse(float value)
    {
        Assert.False(TensorMath.AllFinite(F32(1f, 2f, value)));
    }

    [Fact]
    public void AllFinite_NaNWithPayload_IsFalse()
    {
        Assert.False(TensorMath.AllFinite(F32(BitConverter.Int32BitsToSingle(unchecked((int)0xFFC0_0001)))));
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void AllFinite_NonFiniteDouble_IsFalse(double value)
    {
        var values = new double[37];
        values[20] = value;

        Assert.False(TensorMath.AllFinite(F64(values)));
    }

    [Fact]
    public void AllFinite_FiniteDoubles_IsTrue()
    {
        Assert.True(TensorMath.AllFinite(F64(double.MaxValue, -double.MaxValue, 0, 1e-310)));
    }

    [Fact]
    public void AllFinite_IntegersWithNaNBitPattern_IsTrue()
    {
        // 0x7FC00000 is a NaN if read as float, but I32 tensors are never non-finite.
        var ints = new[] { 0x7FC0_0000, -1 };
        var tensor = new NamedTensor("i", TensorDType.I32, [2], MemoryMarshal.AsBytes(ints.AsSpan()).ToArray());

        Assert.True(TensorMath.AllFinite(tensor));
    }

    [Fact]
    public void AllFinite_UnalignedData_StillDetectsNaN()
    {
        var values = new float[40];
        values[33] = float.NaN;
        var buffer = new byte[1 + (values.Length * 4)];
        MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(buffer.AsSpan(1));

        var tensor = new NamedTensor("u", TensorDType.F32, [values.Length], buffer.AsMemory(1));

        Assert.False(TensorMath.AllFinite(tensor));
    }

    [Fact]
    public void AllFinite_DataLengthMismatch_Throws()
    {
        Assert.Throws<ArgumentException>(() => TensorMath.AllFinite(new NamedTensor("t", TensorDType.F32, [2], new byte[7])));
    }

    [Fact]
    public void L2Norm_ThreeFour_IsFive()
    {
        Assert.Equal(5.0, TensorMath.L2Norm([F32(3f, 4f)]));
    }

    [Fact]
    public void L2Norm_AcrossTensorsAndDTypes_CombinesAllFloats()
    {
        // sqrt(3^2 + 4^2 + 12^2) = sqrt(169) = 13; the I64 tensor is skipped.
        var counter = new NamedTensor("n", TensorDType.I64, [1], BitConverter.GetBytes(1_000_000L));

        Assert.Equal(13.0, TensorMath.L2Norm([F32(3f), counter, F64(4.0, 12.0)]));
    }

    [Fact]
    public void L2Norm_SquaresOfOneToN_MatchClosedForm()
    {
        // Σ k² for k = 1..1003 = n(n+1)(2n+1)/6, exact in double; 1003 exercises the tail.
        const int n = 1003;
        var values = Enumerable.Range(1, n).Select(k => (float)k).ToArray();

        Assert.Equal(Math.Sqrt(n * (n + 1.0) * ((2 * n) + 1) / 6), TensorMath.L2Norm([F32(values)]));
    }

    [Fact]
    public void L2Norm_LargeFloats_DoNotOverflow()
    {
        // float.MaxValue² overflows float but not double.
        Assert.Equal(float.MaxValue * Math.Sqrt(2), TensorMath.L2Norm([F32(float.MaxValue, float.MaxValue)]), float.MaxValue * 1e-12);
    }

    [Fact]
    public void L2Norm_NaN_IsNaN()
    {
        Assert.True(double.IsNaN(TensorMath.L2Norm([F32(1f, float.NaN)])));
    }

    [Fact]
    public void L2Norm_NoTensors_IsZero()
    {
        Assert.Equal(0.0, TensorMath.L2Norm([]));
    }
}

public sealed class TensorMathDistanceTests
{
    private static NamedTensor F32(string name, params float[] values) =>
        new(name, TensorDType.F32, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    [Fact]
    public void L2Distance_HandComputed_MatchesTheOracle()
    {
        // (4-1, 6-2) = (3, 4) in one tensor and (1-1) in the other: distance 5.
        var a = new[] { F32("w", 4, 6), F32("b", 1) };
        var b = new[] { F32("b", 1), F32("w", 1, 2) };

        Assert.Equal(5.0, TensorMath.L2Distance(a, b));
    }

    [Fact]
    public void L2Distance_SameModel_IsZero()
    {
        var a = new[] { F32("w", Enumerable.Range(0, 1001).Select(i => i * 0.37f).ToArray()) };

        Assert.Equal(0.0, TensorMath.L2Distance(a, a));
    }

    [Fact]
    public void L2Distance_AgainstZeros_EqualsTheNorm()
    {
        var values = Enumerable.Range(0, 1003).Select(i => MathF.Sin(i)).ToArray();
        var a = new[] { F32("w", values) };
        var zeros = new[] { F32("w", new float[values.Length]) };

        Assert.Equal(TensorMath.L2Norm(a), TensorMath.L2Distance(a, zeros));
    }

    [Fact]
    public void L2Distance_DifferentShapesOrNames_Throws()
    {
        Assert.Throws<ArgumentException>(() => TensorMath.L2Distance([F32("w", 1, 2)], [F32("w", 1, 2, 3)]));
        Assert.Throws<ArgumentException>(() => TensorMath.L2Distance([F32("w", 1, 2)], [F32("v", 1, 2)]));
        Assert.Throws<ArgumentException>(() => TensorMath.L2Distance([F32("w", 1, 2)], [F32("w", 1, 2), F32("b", 1)]));
    }
}
