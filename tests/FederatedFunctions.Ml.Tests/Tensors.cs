using System.Runtime.InteropServices;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Ml.Tests;

/// <summary>Builders for small hand-written state dicts.</summary>
internal static class Tensors
{
    public static NamedTensor F32(string name, float[] values, params long[] shape) =>
        new(name, TensorDType.F32, shape.Length == 0 && values.Length != 1 ? [values.Length] : shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public static NamedTensor F64(string name, double[] values, params long[] shape) =>
        new(name, TensorDType.F64, shape.Length == 0 ? [values.Length] : shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public static float[] Floats(NamedTensor tensor) => MemoryMarshal.Cast<byte, float>(tensor.Data.Span).ToArray();

    public static NamedTensor Find(this IReadOnlyList<NamedTensor> state, string name) => state.Single(t => t.Name == name);

    public static byte[] Concat(IReadOnlyList<NamedTensor> state) => state.SelectMany(t => t.Data.ToArray()).ToArray();
}
