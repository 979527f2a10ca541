namespace FederatedFunctions.Ml;

/// <summary>Element types of the arrays a data file may hold (<see cref="Npy"/>, and the safetensors dtypes the product reads).</summary>
public enum ArrayElementType
{
    /// <summary>NumPy <c>|b1</c>: one byte, 0 or 1.</summary>
    Bool,

    /// <summary><c>|u1</c>: unsigned byte. As features, divided by 255 (the image convention).</summary>
    UInt8,

    /// <summary><c>|i1</c>: signed byte.</summary>
    Int8,

    /// <summary><c>&lt;u2</c>.</summary>
    UInt16,

    /// <summary><c>&lt;i2</c>.</summary>
    Int16,

    /// <summary><c>&lt;u4</c>.</summary>
    UInt32,

    /// <summary><c>&lt;i4</c>, safetensors <c>I32</c>.</summary>
    Int32,

    /// <summary><c>&lt;u8</c>.</summary>
    UInt64,

    /// <summary><c>&lt;i8</c>, safetensors <c>I64</c>.</summary>
    Int64,

    /// <summary><c>&lt;f2</c>: IEEE 754 binary16.</summary>
    Float16,

    /// <summary><c>&lt;f4</c>, safetensors <c>F32</c>.</summary>
    Float32,

    /// <summary><c>&lt;f8</c>, safetensors <c>F64</c>.</summary>
    Float64,
}

/// <summary>A dense, row-major (C order) array read from a data file: its name, element type, shape and little-endian bytes.</summary>
/// <remarks>
/// Readers guarantee that <see cref="Data"/> holds exactly <c>product(Shape) × ElementSize(Type)</c> bytes. The array does not
/// copy: <see cref="Data"/> may be a slice of the file it was read from.
/// </remarks>
/// <param name="Name">The array's name in its file (<c>x</c>, <c>y</c>).</param>
/// <param name="Type">Its element type.</param>
/// <param name="Shape">Its dimensions, outermost first; empty for a scalar.</param>
/// <param name="Data">Its elements, little-endian, in C order.</param>
public sealed record DataArray(string Name, ArrayElementType Type, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>The number of elements: the product of <see cref="Shape"/> (1 for a scalar).</summary>
    public long Count => Shape.Aggregate(1L, (n, d) => checked(n * d));

    /// <summary>Size of one element in bytes.</summary>
    public static int ElementSize(ArrayElementType type) => type switch
    {
        ArrayElementType.Bool or ArrayElementType.UInt8 or ArrayElementType.Int8 => 1,
        ArrayElementType.UInt16 or ArrayElementType.Int16 or ArrayElementType.Float16 => 2,
        ArrayElementType.UInt32 or ArrayElementType.Int32 or ArrayElementType.Float32 => 4,
        ArrayElementType.UInt64 or ArrayElementType.Int64 or ArrayElementType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown element type."),
    };

    /// <summary>True for the floating-point types.</summary>
    public static bool IsFloat(ArrayElementType type) => type is ArrayElementType.Float16 or ArrayElementType.Float32 or ArrayElementType.Float64;

    /// <summary>The shape as text, <c>[1437, 1, 8, 8]</c>.</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
