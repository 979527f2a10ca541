namespace FederatedFunctions.Core.Tensors;

/// <summary>One named tensor as raw little-endian bytes, the unit a state dict is made of.</summary>
/// <remarks>
/// This is the framework-neutral form that crosses layers: the safetensors codec reads and writes it,
/// and the TorchSharp layer converts it to and from <c>torch.Tensor</c>. <see cref="Data"/> holds exactly
/// <c>product(Shape) * ElementSize(DType)</c> bytes in row-major order.
/// </remarks>
public sealed record NamedTensor(string Name, TensorDType DType, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>Number of elements: the product of <see cref="Shape"/> (1 for a scalar).</summary>
    public long ElementCount => ShapeElementCount(Shape);

    /// <summary>Product of the dimensions of a shape; 1 for a scalar.</summary>
    public static long ShapeElementCount(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            n = checked(n * d);
        }

        return n;
    }
}
