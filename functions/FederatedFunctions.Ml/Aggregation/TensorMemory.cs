using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>The bytes of a flat CPU tensor as <see cref="Memory{T}"/>, lent until <see cref="Release"/>: then every access throws.</summary>
/// <remarks>
/// <see cref="StreamingAggregator.MeanInPlace"/> hands out its sums this way, without copying them. A sum goes back to the
/// aggregators' pool when its aggregator is disposed, and a later aggregator writes into it; so once released, reading the
/// memory (its span, or pinning it) throws <see cref="ObjectDisposedException"/> instead of showing another aggregation's
/// numbers. A pointer pinned before the release is not tracked: keep a pin no longer than the lender.
/// </remarks>
internal sealed class TensorMemory(Tensor tensor) : MemoryManager<byte>
{
    private bool released;

    /// <summary>From now on, the memory is no longer readable.</summary>
    public void Release() => released = true;

    /// <inheritdoc />
    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(released, this);
        return tensor.bytes;
    }

    /// <inheritdoc />
    /// <remarks>The tensor's storage is native memory, which never moves: pinning returns its address.</remarks>
    public override unsafe MemoryHandle Pin(int elementIndex = 0)
    {
        var span = GetSpan();
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, span.Length);
        return new MemoryHandle((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span)) + elementIndex);
    }

    /// <inheritdoc />
    public override void Unpin()
    {
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing) => released = true;
}
