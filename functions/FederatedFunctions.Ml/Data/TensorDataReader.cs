using System.Globalization;
using System.Runtime.InteropServices;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Ml;

/// <summary>One split read from an array or image format: its table, the shape of one example, and the features' stored type.</summary>
/// <param name="Data">One row per example, the example's values flattened in C order (channel, then row, then column for an image).</param>
/// <param name="ExampleShape">The shape of one example (<c>x</c>'s shape without its first dimension, or <c>[channels, height, width]</c>).</param>
/// <param name="FeatureType">How the features were stored.</param>
public sealed record ArraySplit(TabularData Data, long[] ExampleShape, ArrayElementType FeatureType);

/// <summary>Reads a split stored as arrays: one safetensors file, or one NumPy <c>.npz</c> archive, holding <c>x</c> and <c>y</c>.</summary>
/// <remarks>
/// <para>
/// <c>x</c> has shape <c>[N, …]</c>: its first dimension counts the examples, and each example's values, flattened in C order
/// (row-major; an image stored <c>[N, C, H, W]</c> gives its channels one after the other, each row by row), are one row of
/// the table, columns <c>p0</c>, <c>p1</c>, …. <c>y</c> has shape <c>[N]</c> and holds integer class ids in <c>[0, classes)</c>
/// (a float <c>y</c> is accepted when every value is integral). Other tensors or arrays in the file are ignored.
/// </para>
/// <para>
/// Values are converted to float32 as stored, with one exception: <c>uint8</c> features (<c>|u1</c>, only possible in an
/// <c>.npz</c>) are divided by 255, the usual encoding of image pixels (as torchvision's <c>ToTensor</c>). Every feature must
/// be finite and within float32's range. Safetensors data is read by the product's safetensors parser, so its dtypes are
/// F32, F64, I32 and I64; an <c>.npz</c> may hold any of <see cref="Npy.SupportedDescrs"/>.
/// </para>
/// <para>
/// Bounds: a file of at most <see cref="MaxFileBytes"/> (and, in an <c>.npz</c>, arrays of at most as much uncompressed), at
/// most <see cref="TabularReader.MaxRows"/> examples. The number of values per example must equal the model's inputs. Every
/// error is a <see cref="DataValidationException"/> naming the silo, the array and the example, never a value.
/// </para>
/// </remarks>
public static class TensorDataReader
{
    /// <summary>Largest accepted file (and, in an <c>.npz</c>, largest array uncompressed): 1 GiB.</summary>
    public const long MaxFileBytes = 1L << 30;

    /// <summary>The name of the examples' array or tensor.</summary>
    public const string FeaturesName = "x";

    /// <summary>The name of the labels' array or tensor.</summary>
    public const string LabelsName = "y";

    private static readonly float[] Unit = [.. Enumerable.Range(0, 256).Select(b => b / 255f)];

    /// <summary>Reads and validates a split in the spec's format (<c>safetensors</c> or <c>npz</c>) from a stream.</summary>
    /// <exception cref="DataValidationException">The file is malformed, too large, or does not fit the model or the classes.</exception>
    /// <exception cref="ArgumentException">The format is not one of these two.</exception>
    public static async Task<TabularData> ReadAsync(Stream stream, DataSpec data, int expectedInputs, string? siloId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedInputs, 1);
        if (data.Format is not (DataFormats.Safetensors or DataFormats.Npz))
        {
            throw new ArgumentException($"Format '{data.Format}' is not an array format (safetensors, npz).", nameof(data));
        }

        var bytes = await ReadBoundedAsync(stream, MaxFileBytes, siloId, cancellationToken).ConfigureAwait(false);
        return Read(bytes, data.Format, data.Classes, expectedInputs, siloId).Data;
    }

    /// <summary>Reads a split from a whole file.</summary>
    /// <param name="file">The file's bytes.</param>
    /// <param name="format"><c>safetensors</c> or <c>npz</c>.</param>
    /// <param name="classes">The number of classes, or null to accept any non-negative integer label (to describe a file).</param>
    /// <param name="expectedInputs">The model's inputs, or null to accept any example size.</param>
    /// <param name="siloId">The silo, for error messages.</param>
    /// <exception cref="DataValidationException">The file is malformed, or does not fit the model or the classes.</exception>
    public static ArraySplit Read(byte[] file, string format, int? classes, int? expectedInputs, string? siloId)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.LongLength > MaxFileBytes)
        {
            throw new DataValidationException(siloId, "file", $"the file is {file.LongLength} bytes, more than {MaxFileBytes}");
        }

        var (x, y, kind) = format switch
        {
            DataFormats.Safetensors => FromSafetensors(file, siloId),
            DataFormats.Npz => FromNpz(file, siloId),
            _ => throw new ArgumentException($"Format '{format}' is not an array format (safetensors, npz).", nameof(format)),
        };
        return Build(x, y, classes, expectedInputs, siloId, kind);
    }

    /// <summary>The table of examples <paramref name="x"/> (<c>[N, …]</c>) and labels <paramref name="y"/> (<c>[N]</c>), checked.</summary>
    /// <param name="x">The examples.</param>
    /// <param name="y">The labels.</param>
    /// <param name="classes">The number of classes, or null to accept any non-negative integer label.</param>
    /// <param name="expectedInputs">The model's inputs, or null to accept any example size.</param>
    /// <param name="siloId">The silo, for error messages.</param>
    /// <param name="kind">What the file calls its arrays (<c>tensor</c>, <c>array</c>), for messages.</param>
    internal static ArraySplit Build(DataArray x, DataArray y, int? classes, int? expectedInputs, string? siloId, string kind)
    {
        var xField = $"{kind} '{x.Name}'";
        if (x.Shape.Length == 0)
        {
            throw new DataValidationException(siloId, xField, "is a scalar; it must have shape [N, …], one example per entry of its first dimension");
        }

        var n = x.Shape[0];
        if (n == 0)
        {
            throw new DataValidationException(siloId, xField, "holds no examples (its first dimension is 0)");
        }

        if (n > TabularReader.MaxRows)
        {
            throw new DataValidationException(siloId, xField, $"holds {n} examples, more than {TabularReader.MaxRows}");
        }

        var exampleShape = x.Shape[1..];
        var features = exampleShape.Aggregate(1L, (p, d) => p * d);
        if (features == 0)
        {
            throw new DataValidationException(siloId, xField, $"each example has no values (shape {DataArray.FormatShape(x.Shape)})");
        }

        if (expectedInputs is { } inputs && features != inputs)
        {
            throw new DataValidationException(siloId, xField, $"each example has {features} values (shape {DataArray.FormatShape(exampleShape)}), but the model expects {inputs} inputs");
        }

        if (n * features > Array.MaxLength)
        {
            throw new DataValidationException(siloId, xField, $"too many values: {n} examples × {features} exceed {Array.MaxLength}");
        }

        if (y.Shape is not [var labelCount] || labelCount != n)
        {
            throw new DataValidationException(siloId, $"{kind} '{y.Name}'", $"has shape {DataArray.FormatShape(y.Shape)}; it must be [{n}], one integer label per example of '{x.Name}'");
        }

        var values = Features(x, (int)features, siloId, xField);
        var labels = Labels(y, classes, siloId, $"{kind} '{y.Name}'");
        var data = new TabularData(values, labels, (int)n, (int)features, FeatureNames((int)features));
        return new ArraySplit(data, exampleShape, x.Type);
    }

    /// <summary>Generated column names, <c>p0</c> … <c>p{count-1}</c>: the names of the array and image formats' features.</summary>
    public static IReadOnlyList<string> FeatureNames(int count) =>
        [.. Enumerable.Range(0, count).Select(i => "p" + i.ToString(CultureInfo.InvariantCulture))];

    /// <summary>Reads a stream to its end into one array, refusing more than <paramref name="maxBytes"/>.</summary>
    /// <exception cref="DataValidationException">The stream holds more.</exception>
    public static async Task<byte[]> ReadBoundedAsync(Stream stream, long maxBytes, string? siloId, CancellationToken cancellationToken)
    {
        if (stream.CanSeek && stream.Length - stream.Position > maxBytes)
        {
            throw new DataValidationException(siloId, "file", $"the file is {stream.Length - stream.Position} bytes, more than {maxBytes}");
        }

        using var buffer = stream.CanSeek ? new MemoryStream((int)(stream.Length - stream.Position)) : new MemoryStream();
        var chunk = new byte[1 << 16];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw new DataValidationException(siloId, "file", $"the file is more than {maxBytes} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static (DataArray X, DataArray Y, string Kind) FromSafetensors(byte[] file, string? siloId)
    {
        SafetensorsFile parsed;
        try
        {
            parsed = Safetensors.Parse(file);
        }
        catch (SafetensorsFormatException ex)
        {
            var hint = ex.Message.Contains("dtype", StringComparison.Ordinal)
                ? " (uint8 images: store them as F32, e.g. x.float() / 255, or in an .npz, where uint8 is read as value / 255)"
                : string.Empty;
            throw new DataValidationException(siloId, "file", $"not a valid safetensors file: {ex.Message}{hint}", ex);
        }

        DataArray Find(string name, string what)
        {
            var tensor = parsed.Tensors.FirstOrDefault(t => t.Name == name)
                ?? throw new DataValidationException(siloId, "file", $"has no tensor '{name}' ({what}); a split holds tensors '{FeaturesName}' and '{LabelsName}'");
            var type = tensor.DType switch
            {
                TensorDType.F32 => ArrayElementType.Float32,
                TensorDType.F64 => ArrayElementType.Float64,
                TensorDType.I32 => ArrayElementType.Int32,
                TensorDType.I64 => ArrayElementType.Int64,
                _ => throw new DataValidationException(siloId, $"tensor '{name}'", $"has dtype {tensor.DType}, which data cannot have"),
            };
            return new DataArray(name, type, tensor.Shape, tensor.Data);
        }

        return (Find(FeaturesName, "the examples, [N, …]"), Find(LabelsName, "the labels, [N]"), "tensor");
    }

    private static (DataArray X, DataArray Y, string Kind) FromNpz(byte[] file, string? siloId)
    {
        IReadOnlyDictionary<string, DataArray> arrays;
        try
        {
            arrays = Npy.ReadNpz(file, [FeaturesName, LabelsName], MaxFileBytes);
        }
        catch (InvalidDataException ex)
        {
            throw new DataValidationException(siloId, "file", ex.Message, ex);
        }

        DataArray Find(string name, string what) => arrays.TryGetValue(name, out var array)
            ? array
            : throw new DataValidationException(siloId, "file", $"has no array '{name}' ({what}, entry {name}.npy); numpy.savez(file, {FeaturesName}=examples, {LabelsName}=labels) writes both");
        return (Find(FeaturesName, "the examples, [N, …]"), Find(LabelsName, "the labels, [N]"), "array");
    }

    private static float[] Features(DataArray x, int columns, string? siloId, string field)
    {
        var span = x.Data.Span;
        var values = new float[x.Count];
        switch (x.Type)
        {
            case ArrayElementType.Bool:
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = span[i] switch
                    {
                        0 => 0f,
                        1 => 1f,
                        _ => throw new DataValidationException(siloId, $"{field} example {(i / columns) + 1}", "a bool that is neither 0 nor 1"),
                    };
                }

                break;
            case ArrayElementType.UInt8:
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = Unit[span[i]];
                }

                break;
            case ArrayElementType.Int8:
                Widen(MemoryMarshal.Cast<byte, sbyte>(span), values);
                break;
            case ArrayElementType.UInt16:
                Widen(MemoryMarshal.Cast<byte, ushort>(span), values);
                break;
            case ArrayElementType.Int16:
                Widen(MemoryMarshal.Cast<byte, short>(span), values);
                break;
            case ArrayElementType.UInt32:
                Widen(MemoryMarshal.Cast<byte, uint>(span), values);
                break;
            case ArrayElementType.Int32:
                Widen(MemoryMarshal.Cast<byte, int>(span), values);
                break;
            case ArrayElementType.UInt64:
                Widen(MemoryMarshal.Cast<byte, ulong>(span), values);
                break;
            case ArrayElementType.Int64:
                Widen(MemoryMarshal.Cast<byte, long>(span), values);
                break;
            case ArrayElementType.Float16:
                var halves = MemoryMarshal.Cast<byte, Half>(span);
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = (float)halves[i];
                }

                CheckFinite(values, default, columns, siloId, field);
                break;
            case ArrayElementType.Float32:
                MemoryMarshal.Cast<byte, float>(span).CopyTo(values);
                CheckFinite(values, default, columns, siloId, field);
                break;
            case ArrayElementType.Float64:
                var doubles = MemoryMarshal.Cast<byte, double>(span);
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = (float)doubles[i];
                }

                CheckFinite(values, doubles, columns, siloId, field);
                break;
            default:
                throw new DataValidationException(siloId, field, $"has element type {x.Type}, which features cannot have");
        }

        return values;
    }

    private static void Widen<T>(ReadOnlySpan<T> source, float[] values)
        where T : struct, System.Numerics.INumberBase<T>
    {
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = float.CreateSaturating(source[i]);
        }
    }

    private static void CheckFinite(float[] values, ReadOnlySpan<double> source, int columns, string? siloId, string field)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                var problem = !source.IsEmpty && double.IsFinite(source[i]) ? "a value outside the float32 range" : "a value that is not a finite number";
                throw new DataValidationException(siloId, $"{field} example {(i / columns) + 1}", problem);
            }
        }
    }

    private static long[] Labels(DataArray y, int? classes, string? siloId, string field)
    {
        var span = y.Data.Span;
        var labels = new long[y.Count];
        for (var i = 0; i < labels.Length; i++)
        {
            double value = y.Type switch
            {
                ArrayElementType.Bool or ArrayElementType.UInt8 => span[i],
                ArrayElementType.Int8 => (sbyte)span[i],
                ArrayElementType.UInt16 => MemoryMarshal.Cast<byte, ushort>(span)[i],
                ArrayElementType.Int16 => MemoryMarshal.Cast<byte, short>(span)[i],
                ArrayElementType.UInt32 => MemoryMarshal.Cast<byte, uint>(span)[i],
                ArrayElementType.Int32 => MemoryMarshal.Cast<byte, int>(span)[i],
                ArrayElementType.UInt64 => MemoryMarshal.Cast<byte, ulong>(span)[i],
                ArrayElementType.Int64 => MemoryMarshal.Cast<byte, long>(span)[i],
                ArrayElementType.Float16 => (double)MemoryMarshal.Cast<byte, Half>(span)[i],
                ArrayElementType.Float32 => MemoryMarshal.Cast<byte, float>(span)[i],
                _ => MemoryMarshal.Cast<byte, double>(span)[i],
            };

            // The offending value itself is silo data: errors name the array, the example and the rule, never the value.
            var limit = classes ?? (double)int.MaxValue;
            if (!double.IsFinite(value) || !double.IsInteger(value) || value < 0 || value >= limit)
            {
                var problem = !double.IsFinite(value) ? "not a finite number"
                    : !double.IsInteger(value) ? "not an integer class id"
                    : classes is { } c ? $"a class id outside [0, {c})" : "a negative or too large class id";
                throw new DataValidationException(siloId, $"{field} example {i + 1}", problem);
            }

            labels[i] = (long)value;
        }

        return labels;
    }
}
