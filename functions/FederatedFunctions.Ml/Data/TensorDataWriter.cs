using System.IO.Compression;
using System.Runtime.InteropServices;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Ml;

/// <summary>Writes a <see cref="TabularData"/> as a safetensors file or an <c>.npz</c> archive that <see cref="TensorDataReader"/> reads back exactly.</summary>
/// <remarks>
/// Both hold <c>x</c>, float32 of shape <c>[rows, …exampleShape]</c> (by default <c>[rows, columns]</c>), and <c>y</c>, int64 of
/// shape <c>[rows]</c>; the feature names are not kept (the reader names them <c>p0</c>, <c>p1</c>, …). The safetensors file is
/// canonical (<see cref="Safetensors.Serialize"/>); the archive's entries are <c>x.npy</c> and <c>y.npy</c>, as
/// <c>numpy.savez</c> names them, stored or deflated.
/// </remarks>
public static class TensorDataWriter
{
    /// <summary>A safetensors file with tensors <c>x</c> (F32) and <c>y</c> (I64).</summary>
    /// <exception cref="ArgumentException">An inconsistent table, or an example shape whose product is not the column count.</exception>
    public static byte[] ToSafetensors(TabularData data, IReadOnlyList<long>? exampleShape = null)
    {
        var shape = Shape(data, exampleShape);
        return Safetensors.Serialize(
        [
            new NamedTensor(TensorDataReader.FeaturesName, TensorDType.F32, shape, MemoryMarshal.AsBytes(data.Features.AsSpan()).ToArray()),
            new NamedTensor(TensorDataReader.LabelsName, TensorDType.I64, [data.Rows], MemoryMarshal.AsBytes(data.Labels.AsSpan()).ToArray()),
        ]);
    }

    /// <summary>An <c>.npz</c> archive with arrays <c>x</c> (<c>&lt;f4</c>) and <c>y</c> (<c>&lt;i8</c>).</summary>
    /// <param name="data">The table.</param>
    /// <param name="exampleShape">The shape of one example; its product must be the column count. Default <c>[columns]</c>.</param>
    /// <param name="compressed">Deflate the entries, as <c>numpy.savez_compressed</c>; otherwise store them, as <c>numpy.savez</c>.</param>
    /// <exception cref="ArgumentException">An inconsistent table, or an example shape whose product is not the column count.</exception>
    public static byte[] ToNpz(TabularData data, IReadOnlyList<long>? exampleShape = null, bool compressed = false)
    {
        var shape = Shape(data, exampleShape);
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            var level = compressed ? CompressionLevel.Optimal : CompressionLevel.NoCompression;
            foreach (var (name, bytes) in new[]
            {
                (TensorDataReader.FeaturesName, Npy.Serialize("<f4", shape, MemoryMarshal.AsBytes(data.Features.AsSpan()))),
                (TensorDataReader.LabelsName, Npy.Serialize("<i8", [data.Rows], MemoryMarshal.AsBytes(data.Labels.AsSpan()))),
            })
            {
                using var entry = zip.CreateEntry(name + ".npy", level).Open();
                entry.Write(bytes);
            }
        }

        return buffer.ToArray();
    }

    private static long[] Shape(TabularData data, IReadOnlyList<long>? exampleShape)
    {
        ArgumentNullException.ThrowIfNull(data);
        data.EnsureConsistent();
        var example = exampleShape?.ToArray() ?? [data.Columns];
        if (example.Any(d => d < 1) || example.Aggregate(1L, (p, d) => p * d) != data.Columns)
        {
            throw new ArgumentException($"An example of shape {DataArray.FormatShape(example)} does not hold the table's {data.Columns} columns.", nameof(exampleShape));
        }

        return [data.Rows, .. example];
    }
}
