namespace FederatedFunctions.Core.Tensors;

/// <summary>The contents of one safetensors file: its tensors and its <c>__metadata__</c> map.</summary>
/// <remarks>
/// As returned by <see cref="Safetensors.Parse"/>, <see cref="Tensors"/> are in data-offset order and their
/// <see cref="NamedTensor.Data"/> are slices of the parsed buffer, which must therefore stay alive and unchanged
/// while they are used. <see cref="Metadata"/> is empty, never null, when the file has none.
/// </remarks>
/// <param name="Tensors">The tensors, in data-offset order.</param>
/// <param name="Metadata">The free-form string-to-string <c>__metadata__</c> map.</param>
public sealed record SafetensorsFile(IReadOnlyList<NamedTensor> Tensors, IReadOnlyDictionary<string, string> Metadata);

/// <summary>Where each tensor of a safetensors file lies, read from its header alone (<see cref="Safetensors.ParseLayout"/>).</summary>
/// <param name="Tensors">The tensors in data-offset order; together they tile the buffer that follows the header.</param>
/// <param name="Metadata">The <c>__metadata__</c> map; empty, never null, when the file has none.</param>
/// <param name="DataStart">Where the tensors' buffer starts in the file: 8 plus the header's length.</param>
public sealed record SafetensorsLayout(IReadOnlyList<TensorSlot> Tensors, IReadOnlyDictionary<string, string> Metadata, long DataStart)
{
    /// <summary>Whether <paramref name="other"/> puts the same tensors (names, dtypes, shapes) at the same offsets of its buffer; the metadata, and so where the buffer starts, may differ.</summary>
    public bool SameTensors(SafetensorsLayout other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Tensors.Count != Tensors.Count)
        {
            return false;
        }

        for (var i = 0; i < Tensors.Count; i++)
        {
            var (a, b) = (Tensors[i], other.Tensors[i]);
            if (a.Name != b.Name || a.DType != b.DType || a.Begin != b.Begin || a.End != b.End || !a.Shape.AsSpan().SequenceEqual(b.Shape))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>One tensor's entry in a safetensors header: its bytes are <c>[Begin, End)</c> of the buffer after the header.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its dtype.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Begin">Offset of its first byte in the buffer.</param>
/// <param name="End">Offset just past its last byte.</param>
public sealed record TensorSlot(string Name, TensorDType DType, long[] Shape, long Begin, long End);
