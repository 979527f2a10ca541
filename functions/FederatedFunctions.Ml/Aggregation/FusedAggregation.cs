using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FederatedFunctions.Ml;

/// <summary>A weighted sum of many float vectors in one pass over memory, for in-memory aggregation and the benchmark.</summary>
/// <remarks>
/// <para>
/// <c>destination[i] = Σₖ weights[k]·inputs[k][i]</c>. Streaming adds (<c>acc.add_(t, alpha: w)</c> per input) read and
/// write the whole accumulator once per input; this kernel instead walks the vectors in blocks of
/// <see cref="BlockFloats"/> floats (64 KiB, which stays in L1/L2), computes each destination block completely, two
/// inputs per pass, with <see cref="Vector{T}"/>, and writes it once. Memory traffic is thus one read of every input and
/// one write of the result, the lower bound.
/// </para>
/// <para>
/// Parallelism: two workers share the blocks through an atomic counter. Because a <see cref="Span{T}"/> may not leave
/// its thread (and this assembly uses no unsafe code to pin it), only the calling thread writes the destination: the helper computes its blocks into a small ring of pooled block buffers, and the
/// caller copies each finished block into place between its own blocks (a 64 KiB copy from cache, cheap next to reading
/// the inputs). If the thread pool is slow to start the helper, the caller does all blocks itself. Results are
/// identical whatever the split, since every element is computed by the same sequence of operations; they may differ
/// from a naive left-to-right sum in the last bit (inputs are combined pairwise).
/// </para>
/// </remarks>
public static class FusedAggregation
{
    /// <summary>Floats per block (64 KiB).</summary>
    public const int BlockFloats = 16 * 1024;

    private const int RingSlots = 4;
    private const int MinBlocksForHelper = 8;
    private const int HelperNotStarted = 0;
    private const int HelperRunning = 1;
    private const int HelperCancelled = 2;

    /// <summary>Writes <c>Σₖ weights[k]·inputs[k]</c> into <paramref name="destination"/>, overwriting it.</summary>
    /// <param name="destination">Receives the sum; must not overlap any input.</param>
    /// <param name="inputs">At least one vector, each as long as <paramref name="destination"/>.</param>
    /// <param name="weights">One weight per input (not normalised here).</param>
    /// <exception cref="ArgumentException">Counts or lengths differ, no input, or an input overlaps the destination.</exception>
    public static void WeightedSumInto(Span<float> destination, IReadOnlyList<ReadOnlyMemory<float>> inputs, IReadOnlyList<float> weights)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(weights);
        if (inputs.Count == 0)
        {
            throw new ArgumentException("At least one input is needed.", nameof(inputs));
        }

        if (inputs.Count != weights.Count)
        {
            throw new ArgumentException($"{inputs.Count} inputs but {weights.Count} weights.", nameof(weights));
        }

        var sources = inputs.ToArray();
        var factors = weights.ToArray();
        for (var k = 0; k < sources.Length; k++)
        {
            if (sources[k].Length != destination.Length)
            {
                throw new ArgumentException($"Input {k} has {sources[k].Length} elements; the destination has {destination.Length}.", nameof(inputs));
            }

            if (destination.Overlaps(sources[k].Span))
            {
                throw new ArgumentException($"Input {k} overlaps the destination.", nameof(inputs));
            }
        }

        var blocks = (destination.Length + BlockFloats - 1) / BlockFloats;
        if (Environment.ProcessorCount < 2 || blocks < MinBlocksForHelper)
        {
            for (var b = 0; b < blocks; b++)
            {
                var start = b * BlockFloats;
                Kernel(destination.Slice(start, Math.Min(BlockFloats, destination.Length - start)), sources, factors, start);
            }

            return;
        }

        var work = new SharedWork(sources, factors, destination.Length, blocks);
        var helper = Task.Run(work.RunHelper);
        var helperRuns = true;
        try
        {
            var drained = 0;
            while (true)
            {
                drained = work.Drain(destination, drained);
                var b = work.ClaimBlock();
                if (b < 0)
                {
                    break;
                }

                var start = b * BlockFloats;
                Kernel(destination.Slice(start, Math.Min(BlockFloats, destination.Length - start)), sources, factors, start);
            }

            helperRuns = !work.TryCancelHelper();
            if (helperRuns)
            {
                // The helper started: take every block it produces.
                var spin = default(SpinWait);
                while (work.Produced is not { } produced || drained != produced)
                {
                    var before = drained;
                    drained = work.Drain(destination, drained);
                    if (drained == before)
                    {
                        spin.SpinOnce(sleep1Threshold: -1);
                    }
                }

                helper.GetAwaiter().GetResult();
                helperRuns = false;
            }
        }
        finally
        {
            work.Stop();
            if (helperRuns && !work.TryCancelHelper())
            {
                // Only reached when something threw: let the helper leave its slots before they go back to the pool.
                helper.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();
            }

            work.Dispose();
        }
    }

    /// <summary><c>destination = Σₖ w[k]·inputs[k][start..start+destination.Length]</c>, two inputs per pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(Span<float> destination, ReadOnlyMemory<float>[] inputs, float[] weights, int start)
    {
        var length = destination.Length;
        int k;
        if ((inputs.Length & 1) == 1)
        {
            Scale(destination, inputs[0].Span.Slice(start, length), weights[0]);
            k = 1;
        }
        else
        {
            destination.Clear();
            k = 0;
        }

        for (; k < inputs.Length; k += 2)
        {
            AddPair(destination, inputs[k].Span.Slice(start, length), weights[k], inputs[k + 1].Span.Slice(start, length), weights[k + 1]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(Span<float> destination, ReadOnlySpan<float> a, float wa)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var d = MemoryMarshal.Cast<float, Vector<float>>(destination);
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var w = new Vector<float>(wa);
            for (var v = 0; v < d.Length; v++)
            {
                d[v] = va[v] * w;
            }

            i = d.Length * Vector<float>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] = a[i] * wa;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddPair(Span<float> destination, ReadOnlySpan<float> a, float wa, ReadOnlySpan<float> b, float wb)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var d = MemoryMarshal.Cast<float, Vector<float>>(destination);
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var wva = new Vector<float>(wa);
            var wvb = new Vector<float>(wb);
            for (var v = 0; v < d.Length; v++)
            {
                d[v] += (va[v] * wva) + (vb[v] * wvb);
            }

            i = d.Length * Vector<float>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] += (a[i] * wa) + (b[i] * wb);
        }
    }

    /// <summary>State shared by the caller and the helper: the block counter and the helper's ring of finished blocks.</summary>
    private sealed class SharedWork : IDisposable
    {
        private readonly ReadOnlyMemory<float>[] inputs;
        private readonly float[] weights;
        private readonly int length;
        private readonly int blocks;
        private readonly float[][] slots = new float[RingSlots][];
        private readonly int[] slotBlock = new int[RingSlots];
        private readonly int[] slotFull = new int[RingSlots];
        private int nextBlock;
        private int helperState;
        private int produced = -1;
        private int stopped;

        public SharedWork(ReadOnlyMemory<float>[] inputs, float[] weights, int length, int blocks)
        {
            this.inputs = inputs;
            this.weights = weights;
            this.length = length;
            this.blocks = blocks;
            for (var i = 0; i < RingSlots; i++)
            {
                slots[i] = ArrayPool<float>.Shared.Rent(BlockFloats);
            }
        }

        /// <summary>Blocks the helper finished, once it has stopped; null while it runs.</summary>
        public int? Produced => Volatile.Read(ref produced) is var p && p >= 0 ? p : null;

        /// <summary>The next unclaimed block, or -1 when all are claimed.</summary>
        public int ClaimBlock()
        {
            var b = Interlocked.Increment(ref nextBlock) - 1;
            return b < blocks ? b : -1;
        }

        /// <summary>True when the helper had not started and now never will.</summary>
        public bool TryCancelHelper() => Interlocked.CompareExchange(ref helperState, HelperCancelled, HelperNotStarted) == HelperNotStarted;

        public void Stop() => Volatile.Write(ref stopped, 1);

        public void RunHelper()
        {
            if (Interlocked.CompareExchange(ref helperState, HelperRunning, HelperNotStarted) != HelperNotStarted)
            {
                return;
            }

            var count = 0;
            try
            {
                while (true)
                {
                    var slot = count % RingSlots;
                    var spin = default(SpinWait);
                    while (Volatile.Read(ref slotFull[slot]) != 0)
                    {
                        if (Volatile.Read(ref stopped) != 0)
                        {
                            return;
                        }

                        spin.SpinOnce(sleep1Threshold: -1);
                    }

                    var b = ClaimBlock();
                    if (b < 0)
                    {
                        return;
                    }

                    var start = b * BlockFloats;
                    Kernel(slots[slot].AsSpan(0, Math.Min(BlockFloats, length - start)), inputs, weights, start);
                    slotBlock[slot] = b;
                    Volatile.Write(ref slotFull[slot], 1);
                    count++;
                }
            }
            finally
            {
                Volatile.Write(ref produced, count);
            }
        }

        /// <summary>Copies the helper's finished blocks, in order, into the destination; returns how many were copied in all.</summary>
        public int Drain(Span<float> destination, int drained)
        {
            while (true)
            {
                var slot = drained % RingSlots;
                if (Volatile.Read(ref slotFull[slot]) == 0)
                {
                    return drained;
                }

                var start = slotBlock[slot] * BlockFloats;
                var count = Math.Min(BlockFloats, length - start);
                slots[slot].AsSpan(0, count).CopyTo(destination.Slice(start, count));
                Volatile.Write(ref slotFull[slot], 0);
                drained++;
            }
        }

        public void Dispose()
        {
            foreach (var slot in slots)
            {
                ArrayPool<float>.Shared.Return(slot);
            }
        }
    }
}
