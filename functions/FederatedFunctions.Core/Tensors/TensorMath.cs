using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FederatedFunctions.Core.Tensors;

/// <summary>Checks and measures over raw <see cref="NamedTensor"/> data, without a tensor library.</summary>
/// <remarks>
/// These run on every update a silo sends, before it may enter an aggregate, so they read the little-endian
/// bytes in place (no copy, no allocation). <see cref="NamedTensor.Data"/> need not be aligned.
/// </remarks>
public static class TensorMath
{
    private const uint F32ExponentMask = 0x7F80_0000;
    private const ulong F64ExponentMask = 0x7FF0_0000_0000_0000;

    /// <summary>True when no element of <paramref name="tensor"/> is NaN or infinite. Integer tensors are always finite.</summary>
    /// <remarks>A float is non-finite exactly when all its exponent bits are set, so the test runs on the raw bits, vectorised.</remarks>
    /// <exception cref="ArgumentException">The data length does not match the dtype and shape.</exception>
    public static bool AllFinite(NamedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckLength(tensor);
        var bytes = tensor.Data.Span;
        return tensor.DType switch
        {
            TensorDType.F32 => NoneHasAllBits(bytes, F32ExponentMask),
            TensorDType.F64 => NoneHasAllBits(bytes, F64ExponentMask),
            _ => true,
        };
    }

    /// <summary>The Euclidean norm of all floating-point elements of <paramref name="tensors"/> taken together; integer tensors are skipped.</summary>
    /// <remarks>
    /// Squares are summed in double precision in a fixed order (element <c>i</c> of each tensor goes to partial sum
    /// <c>i % 4</c>; the four sums are combined pairwise at the end), with no fused multiply-add and no hardware-width
    /// vectors, so the result is bit-identical on every machine: it may decide whether an update is clipped or refused,
    /// and those decisions must replay. NaN when any element is NaN; infinity when any is infinite.
    /// </remarks>
    /// <exception cref="ArgumentException">A tensor's data length does not match its dtype and shape.</exception>
    public static double L2Norm(IReadOnlyList<NamedTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        foreach (var tensor in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor, nameof(tensors));
            CheckLength(tensor);
            switch (tensor.DType)
            {
                case TensorDType.F32:
                    SumSquaresF32(tensor.Data.Span, default, ref s0, ref s1, ref s2, ref s3);
                    break;
                case TensorDType.F64:
                    SumSquaresF64(tensor.Data.Span, default, ref s0, ref s1, ref s2, ref s3);
                    break;
                default:
                    break;
            }
        }

        return Math.Sqrt((s0 + s1) + (s2 + s3));
    }

    /// <summary>The Euclidean distance between two models with the same tensors: the L2 norm of <c>a − b</c> over their floating-point elements.</summary>
    /// <remarks>
    /// Tensors are matched by name; the differences are taken in double precision and summed in the fixed order of
    /// <see cref="L2Norm"/>, in the order of <paramref name="a"/>, so the result is bit-identical on every machine.
    /// It measures how far a silo's update moved from the round's global model, for the norm screen and for clipping.
    /// </remarks>
    /// <exception cref="ArgumentException">The two do not have the same names, dtypes and shapes, or a data length is wrong.</exception>
    public static double L2Distance(IReadOnlyList<NamedTensor> a, IReadOnlyList<NamedTensor> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count)
        {
            throw new ArgumentException($"The models have {a.Count} and {b.Count} tensors.", nameof(b));
        }

        var byName = new Dictionary<string, NamedTensor>(b.Count, StringComparer.Ordinal);
        foreach (var t in b)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(b));
            if (!byName.TryAdd(t.Name, t))
            {
                throw new ArgumentException($"Tensor '{t.Name}' appears twice.", nameof(b));
            }
        }

        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        foreach (var x in a)
        {
            ArgumentNullException.ThrowIfNull(x, nameof(a));
            if (!byName.TryGetValue(x.Name, out var y) || y.DType != x.DType || !y.Shape.SequenceEqual(x.Shape))
            {
                throw new ArgumentException($"Tensor '{x.Name}' does not have the same name, dtype and shape in both models.", nameof(b));
            }

            CheckLength(x);
            CheckLength(y);
            switch (x.DType)
            {
                case TensorDType.F32:
                    SumSquaresF32(x.Data.Span, y.Data.Span, ref s0, ref s1, ref s2, ref s3);
                    break;
                case TensorDType.F64:
                    SumSquaresF64(x.Data.Span, y.Data.Span, ref s0, ref s1, ref s2, ref s3);
                    break;
                default:
                    break;
            }
        }

        return Math.Sqrt((s0 + s1) + (s2 + s3));
    }

    private static void CheckLength(NamedTensor tensor)
    {
        long expected;
        try
        {
            expected = tensor.Shape.Any(d => d < 0) ? -1 : checked(tensor.ElementCount * tensor.DType.ElementSize());
        }
        catch (OverflowException)
        {
            expected = -1;
        }

        if (tensor.Data.Length != expected)
        {
            throw new ArgumentException(
                $"Tensor '{tensor.Name}' has {tensor.Data.Length} bytes, which does not match dtype {tensor.DType} and shape [{string.Join(", ", tensor.Shape)}].",
                nameof(tensor));
        }
    }

    private static bool NoneHasAllBits<T>(ReadOnlySpan<byte> bytes, T mask)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (!BitConverter.IsLittleEndian)
        {
            var size = Unsafe.SizeOf<T>();
            for (var offset = 0; offset < bytes.Length; offset += size)
            {
                if ((T.ReadLittleEndian(bytes.Slice(offset, size), isUnsigned: true) & mask) == mask)
                {
                    return false;
                }
            }

            return true;
        }

        var values = MemoryMarshal.Cast<byte, T>(bytes);

        var i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<T>.Count)
        {
            var maskVector = new Vector<T>(mask);
            for (; i <= values.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                if (Vector.EqualsAny(Vector.BitwiseAnd(new Vector<T>(values[i..]), maskVector), maskVector))
                {
                    return false;
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if ((values[i] & mask) == mask)
            {
                return false;
            }
        }

        return true;
    }

    // `minus` is empty (all zeros) or as long as `bytes`: the squares are of bytes[i] - minus[i], taken in double.
    private static void SumSquaresF32(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> minus, ref double s0, ref double s1, ref double s2, ref double s3)
    {
        var count = bytes.Length / sizeof(float);
        var i = 0;
        for (; i <= count - 4; i += 4)
        {
            double a = Diff(bytes, minus, i), b = Diff(bytes, minus, i + 1), c = Diff(bytes, minus, i + 2), d = Diff(bytes, minus, i + 3);
            s0 += a * a;
            s1 += b * b;
            s2 += c * c;
            s3 += d * d;
        }

        // The last count % 4 elements go to the first lanes.
        for (var lane = 0; i < count; i++, lane++)
        {
            var a = Diff(bytes, minus, i);
            AddToLane(lane, a * a, ref s0, ref s1, ref s2);
        }

        static double Diff(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> minus, int index) =>
            minus.IsEmpty ? Read(bytes, index) : (double)Read(bytes, index) - Read(minus, index);

        static float Read(ReadOnlySpan<byte> bytes, int index) =>
            BinaryPrimitives.ReadSingleLittleEndian(bytes[(index * sizeof(float))..]);
    }

    private static void SumSquaresF64(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> minus, ref double s0, ref double s1, ref double s2, ref double s3)
    {
        var count = bytes.Length / sizeof(double);
        var i = 0;
        for (; i <= count - 4; i += 4)
        {
            double a = Diff(bytes, minus, i), b = Diff(bytes, minus, i + 1), c = Diff(bytes, minus, i + 2), d = Diff(bytes, minus, i + 3);
            s0 += a * a;
            s1 += b * b;
            s2 += c * c;
            s3 += d * d;
        }

        for (var lane = 0; i < count; i++, lane++)
        {
            var a = Diff(bytes, minus, i);
            AddToLane(lane, a * a, ref s0, ref s1, ref s2);
        }

        static double Diff(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> minus, int index) =>
            minus.IsEmpty ? Read(bytes, index) : Read(bytes, index) - Read(minus, index);

        static double Read(ReadOnlySpan<byte> bytes, int index) =>
            BinaryPrimitives.ReadDoubleLittleEndian(bytes[(index * sizeof(double))..]);
    }

    private static void AddToLane(int lane, double square, ref double s0, ref double s1, ref double s2)
    {
        switch (lane)
        {
            case 0:
                s0 += square;
                break;
            case 1:
                s1 += square;
                break;
            default:
                s2 += square;
                break;
        }
    }
}
