namespace FederatedFunctions.Core.Tensors;

/// <summary>Element types a model tensor may hold, named as in the safetensors header.</summary>
/// <remarks>Only the types the product trains with are listed; a file with any other dtype is rejected on read.</remarks>
public enum TensorDType
{
    /// <summary>IEEE 754 binary32, little-endian. Every trainable parameter uses it.</summary>
    F32,

    /// <summary>IEEE 754 binary64, little-endian.</summary>
    F64,

    /// <summary>Signed 64-bit integer, little-endian (e.g. batch-norm counters).</summary>
    I64,

    /// <summary>Signed 32-bit integer, little-endian.</summary>
    I32,
}

/// <summary>Helpers for <see cref="TensorDType"/>.</summary>
public static class TensorDTypes
{
    /// <summary>Size of one element in bytes.</summary>
    public static int ElementSize(this TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => 4,
        TensorDType.F64 => 8,
        TensorDType.I64 => 8,
        TensorDType.I32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>The safetensors header name of the dtype (e.g. <c>F32</c>).</summary>
    public static string ToHeaderName(this TensorDType dtype) => dtype.ToString();

    /// <summary>Parses a safetensors dtype name; returns false for types this product does not accept.</summary>
    public static bool TryParseHeaderName(string name, out TensorDType dtype) => name switch
    {
        "F32" => Set(TensorDType.F32, out dtype),
        "F64" => Set(TensorDType.F64, out dtype),
        "I64" => Set(TensorDType.I64, out dtype),
        "I32" => Set(TensorDType.I32, out dtype),
        _ => Set(default, out dtype) && false,
    };

    private static bool Set(TensorDType value, out TensorDType dtype)
    {
        dtype = value;
        return true;
    }
}
