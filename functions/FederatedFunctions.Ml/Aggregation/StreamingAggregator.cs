using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FederatedFunctions.Core.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>A weighted average of model updates, computed one update at a time.</summary>
/// <remarks>
/// <para>
/// The aggregator holds one accumulator per template tensor, <c>acc = Σ wᵢ·updateᵢ</c>, and <see cref="Result"/> is
/// <c>acc / Σ wᵢ</c>. The accumulators are TorchSharp tensors. Each <see cref="Add"/> adds a float32 tensor straight from
/// the caller's bytes into a second buffer, checking every value as it reads it, and swaps the two once the whole update
/// has passed (a vectorized loop, in parts on up to four cores for large tensors: see <c>SumChecked</c>); other
/// dtypes are checked, copied into a reused staging buffer and added with <c>acc.add_(t, alpha: w)</c> under
/// <c>torch.no_grad()</c>. Peak memory is therefore two float32 sums, plus one staging buffer the size of the largest
/// non-float32 tensor, plus the caller's copy of the update being added, however many updates are aggregated: an
/// aggregation activity can stream updates from storage one at a time. <see cref="TryAddAll"/> adds several updates that
/// are in memory at once with one pass over the sum, where one at a time takes a pass each; <c>TryAddStreamedAsync</c> does
/// the same for updates read as streams, a piece of each at a time, holding two pieces per update instead of the updates.
/// </para>
/// <para>
/// Accumulators are float32 for F32 tensors (every trained parameter), float64 for F64 and integer tensors; the
/// result has the template's dtypes, integers rounded to nearest. Addition in float32 is not associative, so results for
/// different add orders agree to rounding (about 1e-7 relative), not bit for bit; add in a fixed order (e.g. sorted silo
/// ids) for reproducible bytes. Updates are validated first (<see cref="Validate"/>): a rejected update changes nothing.
/// Not thread-safe: add from one thread.
/// </para>
/// </remarks>
public sealed class StreamingAggregator : IModelAccumulator
{
    private readonly TemplateEntry[] entries;
    private readonly Dictionary<string, int> index;
    private readonly Tensor[] accumulators;
    private readonly Tensor?[] spares;
    private readonly Dictionary<ScalarType, Tensor> staging = [];
    private readonly List<TensorMemory> lent = [];
    private IReadOnlyList<NamedTensor>? mean;
    private bool divided;
    private bool disposed;
    private bool broken;

    /// <summary>Creates an aggregator shaped like <paramref name="template"/> (only names, shapes and dtypes are kept).</summary>
    /// <exception cref="ArgumentException">An empty template, or one with a duplicate name or a negative dimension.</exception>
    public StreamingAggregator(IReadOnlyList<NamedTensor> template)
    {
        ArgumentNullException.ThrowIfNull(template);
        if (template.Count == 0)
        {
            throw new ArgumentException("The template has no tensors.", nameof(template));
        }

        entries = template
            .Select(t => new TemplateEntry(t.Name, t.DType, t.Shape.ToArray()))
            .OrderBy(e => e.Name, StringComparer.Ordinal)
            .ToArray();
        index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Length; i++)
        {
            if (!index.TryAdd(entries[i].Name, i))
            {
                throw new ArgumentException($"The template holds tensor '{entries[i].Name}' twice.", nameof(template));
            }

            if (entries[i].Shape.Any(d => d < 0))
            {
                throw new ArgumentException($"Template tensor '{entries[i].Name}' has a negative dimension.", nameof(template));
            }
        }

        TorchRuntime.EnsureInitialized();
        accumulators = new Tensor[entries.Length];
        spares = new Tensor?[entries.Length];

        // The accumulators live as long as the aggregator, whatever dispose scope the caller is in. A float32 one is not
        // zeroed: the first accepted update writes it whole.
        try
        {
            for (var i = 0; i < entries.Length; i++)
            {
                accumulators[i] = entries[i].DType == TensorDType.F32
                    ? SumBuffers.Rent(entries[i].ElementCount)
                    : torch.zeros(entries[i].Shape, ScalarType.Float64).DetachFromDisposeScope();
            }
        }
        catch
        {
            // Out of memory halfway: what was made goes back, and nothing is left for a finalizer.
            ReleaseSums();
            throw;
        }
    }

    /// <summary>Number of updates added.</summary>
    public int Count { get; private set; }

    /// <summary>Sum of the weights of the updates added.</summary>
    public double TotalWeight { get; private set; }

    /// <summary>Checks an update against the template without changing anything.</summary>
    /// <remarks>
    /// Checks, in order: every template tensor is present, no other tensor is (names are case-sensitive, each at most once),
    /// then per tensor in name order the dtype, the shape (and that the byte length matches it), and that every value is
    /// finite. The first failure is returned.
    /// </remarks>
    public UpdateCheck Validate(IReadOnlyList<NamedTensor> update) => Check(update, finite: true);

    // Validate's checks; finiteness only when asked (TryAdd checks it tensor by tensor, folded into the float32 adds).
    private UpdateCheck Check(IReadOnlyList<NamedTensor> update, bool finite)
    {
        ArgumentNullException.ThrowIfNull(update);
        ObjectDisposedException.ThrowIf(disposed, this);
        var byName = new Dictionary<string, NamedTensor>(StringComparer.Ordinal);
        foreach (var tensor in update)
        {
            if (tensor is null)
            {
                return UpdateCheck.Reject(UpdateRejections.UnexpectedTensor, "the update holds a null tensor");
            }

            if (!byName.TryAdd(tensor.Name, tensor))
            {
                return UpdateCheck.Reject(UpdateRejections.UnexpectedTensor, $"tensor '{tensor.Name}' appears more than once");
            }
        }

        foreach (var entry in entries)
        {
            if (!byName.ContainsKey(entry.Name))
            {
                return UpdateCheck.Reject(UpdateRejections.MissingTensor, $"tensor '{entry.Name}' is missing");
            }
        }

        foreach (var name in byName.Keys.Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(name))
            {
                return UpdateCheck.Reject(UpdateRejections.UnexpectedTensor, $"tensor '{name}' is not in the model");
            }
        }

        foreach (var entry in entries)
        {
            var tensor = byName[entry.Name];
            if (tensor.DType != entry.DType)
            {
                return UpdateCheck.Reject(UpdateRejections.DTypeMismatch, $"tensor '{entry.Name}' is {tensor.DType}, expected {entry.DType}");
            }

            if (tensor.Shape is null || !tensor.Shape.AsSpan().SequenceEqual(entry.Shape))
            {
                return UpdateCheck.Reject(
                    UpdateRejections.ShapeMismatch,
                    $"tensor '{entry.Name}' has shape {StateDicts.FormatShape(tensor.Shape ?? [])}, expected {StateDicts.FormatShape(entry.Shape)}");
            }

            var bytes = entry.ElementCount * entry.DType.ElementSize();
            if (tensor.Data.Length != bytes)
            {
                return UpdateCheck.Reject(UpdateRejections.ShapeMismatch, $"tensor '{entry.Name}' holds {tensor.Data.Length} bytes, its shape needs {bytes}");
            }

            var bad = finite ? FirstNonFinite(tensor.DType, tensor.Data.Span) : -1;
            if (bad >= 0)
            {
                return NonFinite(entry.Name, bad);
            }
        }

        return UpdateCheck.Ok;
    }

    private static UpdateCheck NonFinite(string tensor, long element) =>
        UpdateCheck.Reject(UpdateRejections.NonFinite, $"tensor '{tensor}' has a NaN or infinite value at element {element}");

    /// <summary>Adds <c>weight · update</c> to the accumulator.</summary>
    /// <param name="update">A state dict shaped like the template.</param>
    /// <param name="weight">Its weight, typically its example count; positive and finite.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is not positive and finite.</exception>
    /// <exception cref="ArgumentException"><see cref="Validate"/> rejects the update; the message holds its reason code and detail.</exception>
    public void Add(IReadOnlyList<NamedTensor> update, double weight)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!(double.IsFinite(weight) && weight > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, "The weight must be a positive finite number.");
        }

        var check = TryAdd(update, weight);
        if (!check.Accepted)
        {
            throw new ArgumentException($"The update was rejected ({check.Reason}): {check.Detail}.", nameof(update));
        }
    }

    /// <summary>Validates and, if accepted, adds <c>weight · update</c>, reading the update once: its check is folded into the add.</summary>
    /// <returns>The verdict of <see cref="Validate"/>; nothing is added unless it is accepted.</returns>
    /// <remarks>
    /// A float32 tensor is added from the caller's bytes into a second buffer, <c>spare = fma(x, w, acc)</c>, checking each
    /// value as it is read; the buffers are swapped only once every tensor of the update has passed, so a value found NaN or
    /// infinite halfway leaves the sum as it was. The first accepted update is written (<c>fma(x, w, 0)</c>) rather than
    /// added to zeros. Either way each update costs one read of it, one of the sum and one write, where a separate check
    /// read it twice; memory holds two float32 sums instead of one, whatever the number of updates.
    /// <see cref="TryAddAll"/> adds several updates for one read and one write of the sum.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is not positive and finite.</exception>
    public UpdateCheck TryAdd(IReadOnlyList<NamedTensor> update, double weight)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!(double.IsFinite(weight) && weight > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, "The weight must be a positive finite number.");
        }

        ArgumentNullException.ThrowIfNull(update);
        return TryAddAll([new WeightedUpdate(update, weight)])[0];
    }

    /// <summary>
    /// Validates and adds several updates with one read and one write of the sum: the same verdicts, in order, and the same
    /// sum, bit for bit, as <see cref="TryAdd"/> on each in turn.
    /// </summary>
    /// <remarks>
    /// The float32 tensors are summed in blocks of <see cref="Block"/> floats: a block of the sum is read once, every
    /// update's block is added into it in the caller's order (<c>fma(x, w, acc)</c>, one rounding each, as one update at a
    /// time computes it) while it stays in the cache, and it is written once. A streaming sum of K updates one at a time
    /// reads and writes the whole sum K times; in windows of W it does so K / W times, and at W = K the adds read each
    /// update and the sum once and write the sum once. Every value is checked as it is loaded. When one is NaN or
    /// infinite, the pass is abandoned (its output is the spare buffer's, which nothing reads), each update's first such
    /// value is found as <see cref="Validate"/> finds it, and the others are summed again without the refused ones.
    /// Memory: the caller's updates and the two sums.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">A weight is not positive and finite; nothing is added.</exception>
    /// <exception cref="InvalidOperationException">An earlier add failed halfway (libtorch ran out of memory, say): the sums are no longer consistent.</exception>
    public IReadOnlyList<UpdateCheck> TryAddAll(IReadOnlyList<WeightedUpdate> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        ThrowIfUnusable();
        CheckWeights(updates, u => u.Weight);

        var verdicts = new UpdateCheck[updates.Count];
        var taken = new List<int>(updates.Count);
        for (var j = 0; j < updates.Count; j++)
        {
            var check = Check(updates[j].Tensors, finite: false);
            if (check.Accepted)
            {
                taken.Add(j);
            }
            else
            {
                verdicts[j] = check;
            }
        }

        if (!AddTogether(updates, taken))
        {
            // A NaN or infinity in one of them: each one's first, in name order, then the finite ones together.
            var finite = new List<int>(taken.Count);
            foreach (var j in taken)
            {
                var check = Check(updates[j].Tensors, finite: true);
                if (check.Accepted)
                {
                    finite.Add(j);
                }
                else
                {
                    verdicts[j] = check;
                }
            }

            taken = finite;
            if (!AddTogether(updates, taken))
            {
                throw new InvalidOperationException("An update checked finite held a NaN or infinity when added: its bytes changed while it was being added.");
            }
        }

        foreach (var j in taken)
        {
            verdicts[j] = UpdateCheck.Ok;
        }

        return verdicts;
    }

    /// <summary>Bytes of each update read at a time by <c>TryAddStreamedAsync</c>: 256 KiB (two sets of eight updates' pieces: 4 MiB); 16 and 64 KiB were slower here, by the per-piece work.</summary>
    internal const int StreamPieceBytes = 256 * 1024;

    /// <inheritdoc />
    /// <remarks>
    /// The tensors' buffers are read in pieces of up to <see cref="StreamPieceBytes"/> of every update at once, the next piece
    /// reading while this one is added (<see cref="LockstepReads"/>). A float32 piece is added block by block into the spare
    /// buffer (into the accumulator before the first update) with the <c>fma</c> chain of <see cref="TryAddAll"/>, each value
    /// checked as it is loaded; tensors of other dtypes are kept whole per update (counters and integer buffers: small in every
    /// model kind here, but not bounded by the pieces) and added once every update has passed.
    /// The buffers swap only after <paramref name="confirm"/>, so a window refused at any point leaves the sum as it was.
    /// With <paramref name="last"/>, each block of the sum is divided by the total weight as soon as every update is in it,
    /// with <see cref="Result"/>'s division, so a window that counts writes the mean: a model's worth of reads and writes
    /// less than dividing afterwards. The aggregator is then finished (<see cref="MeanInPlace"/> lends the mean); a last
    /// window refused leaves it as it was, still taking updates.
    /// Memory: the two sums, two pieces per update and the updates' tensors that are not float32, whatever the updates' sizes.
    /// Streams that are plain <see cref="MemoryStream"/>s over an exposed buffer (updates already in memory: tests and
    /// <c>scripts/bench.sh</c>) are read where they are, without copying pieces.
    /// </remarks>
    public Task<bool> TryAddStreamedAsync(SafetensorsLayout layout, IReadOnlyList<StreamedUpdate> updates, Func<CancellationToken, ValueTask<bool>> confirm, bool last, CancellationToken cancellationToken) =>
        TryAddStreamedAsync(layout, updates, confirm, last, StreamPieceBytes, cancellationToken);

    /// <summary><see cref="TryAddStreamedAsync(SafetensorsLayout, IReadOnlyList{StreamedUpdate}, Func{CancellationToken, ValueTask{bool}}, bool, CancellationToken)"/> in pieces of at most <paramref name="pieceBytes"/>.</summary>
    internal async Task<bool> TryAddStreamedAsync(SafetensorsLayout layout, IReadOnlyList<StreamedUpdate> updates, Func<CancellationToken, ValueTask<bool>> confirm, bool last, int pieceBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(updates);
        ArgumentNullException.ThrowIfNull(confirm);
        ThrowIfUnusable();
        CheckWeights(updates, u => u.Weight);

        if (updates.Count == 0)
        {
            return true;
        }

        if (!Matches(layout))
        {
            return false;
        }

        var first = Count == 0;
        var weights = updates.Select(u => (float)u.Weight).ToArray();
        // The last window divides each block of the sum by the total weight once every update is in it (while the block is
        // still in the cache), as Mean would, with the total Commit will count.
        float? divisor = null;
        if (last)
        {
            var total = TotalWeight;
            foreach (var update in updates)
            {
                total += update.Weight;
            }

            divisor = (float)total;
        }

        var slots = layout.Tensors.Select(t => index[t.Name]).ToArray();
        // The small tensors that are not float32, kept per update until every update has passed.
        var others = updates.Select(_ => layout.Tensors
            .Select((t, s) => (t, s))
            .Where(x => entries[slots[x.s]].DType != TensorDType.F32)
            .ToDictionary(x => slots[x.s], x => new byte[x.t.End - x.t.Begin])).ToArray();
        for (var i = 0; i < entries.Length && !first; i++)
        {
            if (entries[i].DType == TensorDType.F32)
            {
                _ = Spare(i);
            }
        }

        var pieces = PlanPieces(layout, pieceBytes);
        var lengths = pieces.Select(p => p.Length).ToArray();

        // The next piece reads while this one is added.
        await using (var reads = new LockstepReads([.. updates.Select(u => u.Data)], lengths, 2, cancellationToken))
        {
            while (await reads.NextAsync().ConfigureAwait(false) is { } piece)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!AddPiece(layout, slots, piece, first, weights, divisor, others))
                {
                    return false;
                }

                reads.Release(piece);
            }

            if (!reads.Complete)
            {
                return false;
            }
        }

        if (!await confirm(cancellationToken).ConfigureAwait(false)
            || others.Any(o => o.Any(kv => FirstNonFinite(entries[kv.Key].DType, kv.Value) >= 0)))
        {
            return false;
        }

        Commit(first, [.. Enumerable.Range(0, updates.Count).Select(j => (others[j].Select(kv => new NamedTensor(entries[kv.Key].Name, entries[kv.Key].DType, entries[kv.Key].Shape, kv.Value)).ToArray(), updates[j].Weight))]);
        divided = last;
        return true;
    }

    // Every update of a window present, each weight positive and finite; checked before anything is added.
    private static void CheckWeights<T>(IReadOnlyList<T> updates, Func<T, double> weight)
    {
        foreach (var update in updates)
        {
            ArgumentNullException.ThrowIfNull(update);
            if (!(double.IsFinite(weight(update)) && weight(update) > 0))
            {
                throw new ArgumentOutOfRangeException(nameof(updates), weight(update), "Every weight must be a positive finite number.");
            }
        }
    }

    // One piece of every update of a window: each float32 part added block by block into its target, the others kept; false at a NaN or infinity.
    private bool AddPiece(SafetensorsLayout layout, int[] slots, LockstepReads.Piece piece, bool first, float[] weights, float? divisor, Dictionary<int, byte[]>[] others)
    {
        var (start, length) = (piece.Start, piece.Data[0].Length);
        // The tensors the piece covers: whole small ones, or a part of a large one that ends on an element.
        var t = FirstEndingAfter(layout, start);
        for (; t < layout.Tensors.Count && layout.Tensors[t].Begin < start + length; t++)
        {
            var tensor = layout.Tensors[t];
            var (from, to) = (Math.Max(start, tensor.Begin), Math.Min(start + length, tensor.End));
            if (from >= to)
            {
                continue;
            }

            var i = slots[t];
            var at = (int)(from - start);
            var n = (int)(to - from);
            if (entries[i].DType == TensorDType.F32)
            {
                var element = (int)((from - tensor.Begin) / sizeof(float));
                var target = MemoryMarshal.Cast<byte, float>((first ? accumulators[i] : Spare(i)).bytes).Slice(element, n / sizeof(float));
                var sum = first ? default : MemoryMarshal.Cast<byte, float>(accumulators[i].bytes).Slice(element, n / sizeof(float));
                if (!SumBlocks(sum, target, [.. piece.Data.Select(p => p.Slice(at, n))], weights, first, divisor))
                {
                    return false;
                }
            }
            else
            {
                for (var j = 0; j < piece.Data.Length; j++)
                {
                    piece.Data[j].Span.Slice(at, n).CopyTo(others[j][i].AsSpan((int)(from - tensor.Begin)));
                }
            }
        }

        return true;
    }

    // Index of the first tensor (in offset order) that ends after `offset`.
    private static int FirstEndingAfter(SafetensorsLayout layout, long offset)
    {
        var (lo, hi) = (0, layout.Tensors.Count);
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (layout.Tensors[mid].End <= offset)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    // The layout holds the template's tensors exactly: each name once, with its dtype and shape.
    private bool Matches(SafetensorsLayout layout)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in layout.Tensors)
        {
            if (!seen.Add(tensor.Name) || !index.TryGetValue(tensor.Name, out var i) || tensor.DType != entries[i].DType
                || !tensor.Shape.AsSpan().SequenceEqual(entries[i].Shape) || tensor.End - tensor.Begin != entries[i].ElementCount * entries[i].DType.ElementSize())
            {
                return false;
            }
        }

        return seen.Count == entries.Length;
    }

    // Consecutive pieces of the tensors' buffer, each at most `most` bytes (or one element, if larger): small tensors share a
    // piece, a large one is cut into pieces that end on its elements, so no value straddles two pieces.
    internal static List<(long Start, int Length)> PlanPieces(SafetensorsLayout layout, int most)
    {
        var pieces = new List<(long Start, int Length)>();
        var (start, length) = (0L, 0L);
        foreach (var tensor in layout.Tensors)
        {
            var size = tensor.End - tensor.Begin;
            if (length + size <= most)
            {
                length += size;
                continue;
            }

            if (length > 0)
            {
                pieces.Add((start, (int)length));
            }

            var element = Math.Max(1, tensor.DType.ElementSize());
            var step = Math.Max(element, most / element * element);
            var offset = 0L;
            for (; size - offset > step; offset += step)
            {
                pieces.Add((tensor.Begin + offset, (int)step));
            }

            (start, length) = (tensor.Begin + offset, size - offset);
        }

        if (length > 0)
        {
            pieces.Add((start, (int)length));
        }

        return pieces;
    }

    // target = fma(xₘ, wₘ, … fma(x₁, w₁, sum)) block by block (from 0 without a sum), as SumChecked computes each element, then
    // divided by `divisor` if there is one; false at a NaN or infinity.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool SumBlocks(ReadOnlySpan<float> sum, Span<float> target, ReadOnlyMemory<byte>[] updates, float[] weights, bool first, float? divisor)
    {
        for (var b = 0; b < target.Length; b += Block)
        {
            var n = Math.Min(Block, target.Length - b);
            var block = target.Slice(b, n);
            for (var j = 0; j < updates.Length; j++)
            {
                var x = MemoryMarshal.Cast<byte, float>(updates[j].Span).Slice(b, n);
                var added = j > 0
                    ? AddScaledChecked(block, block, x, weights[j], first: false)
                    : AddScaledChecked(first ? default : sum.Slice(b, n), block, x, weights[j], first);
                if (added >= 0)
                {
                    return false;
                }
            }

            if (divisor is { } total)
            {
                DivideInto(block, block, total);
            }
        }

        return true;
    }

    // Adds updates whose keys, dtypes and shapes passed, in order; false, with nothing added, when a value is NaN or infinite.
    private bool AddTogether(IReadOnlyList<WeightedUpdate> updates, List<int> taken)
    {
        if (taken.Count == 0)
        {
            return true;
        }

        var byName = taken.Select(j => updates[j].Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal)).ToArray();
        for (var i = 0; i < entries.Length; i++)
        {
            if (entries[i].DType != TensorDType.F32 && byName.Any(u => FirstNonFinite(entries[i].DType, u[entries[i].Name].Data.Span) >= 0))
            {
                return false;
            }
        }

        // Each float32 tensor into its spare (or, when nothing was accepted yet, into its accumulator, which no update has
        // filled), checked as it is added; the buffers swap only once every tensor has passed.
        var first = Count == 0;
        var weights = taken.Select(j => (float)updates[j].Weight).ToArray();
        for (var i = 0; i < entries.Length; i++)
        {
            if (entries[i].DType == TensorDType.F32
                && !SumChecked(first ? null : accumulators[i], first ? accumulators[i] : Spare(i), byName.Select(u => u[entries[i].Name].Data).ToArray(), weights))
            {
                return false;
            }
        }

        Commit(first, [.. taken.Select(j => (updates[j].Tensors, updates[j].Weight))]);
        return true;
    }

    // A window whose float32 tensors are summed into the spares (into the accumulators, before the first update) counts:
    // the buffers swap, then each update's other tensors are added and it is counted.
    private void Commit(bool first, IReadOnlyList<(IReadOnlyList<NamedTensor> Tensors, double Weight)> window)
    {
        if (!first)
        {
            for (var i = 0; i < entries.Length; i++)
            {
                if (entries[i].DType == TensorDType.F32)
                {
                    (accumulators[i], spares[i]) = (spares[i]!, accumulators[i]);
                }
            }
        }

        try
        {
            foreach (var (tensors, weight) in window)
            {
                AddOthers(tensors, weight);
                Count++;
                TotalWeight += weight;
            }
        }
        catch
        {
            // The float32 sums hold every update of the window already, the others and the counts not all of them.
            broken = true;
            throw;
        }
    }

    // The tensors that are not float32 (few and small: counters, integer buffers), added with libtorch.
    private void AddOthers(IReadOnlyList<NamedTensor> update, double weight)
    {
        using (torch.no_grad())
        {
            foreach (var tensor in update)
            {
                if (tensor.DType == TensorDType.F32)
                {
                    continue;
                }

                using var scope = torch.NewDisposeScope();
                var i = index[tensor.Name];
                var accumulator = accumulators[i];
                Tensor source;
                if (accumulator.dtype == StateDicts.ToScalarType(tensor.DType))
                {
                    source = StagingView(i);
                    if (tensor.Data.Length > 0)
                    {
                        tensor.Data.Span.CopyTo(source.bytes);
                    }
                }
                else
                {
                    // Integer tensors accumulate in float64: convert after copying.
                    source = StateDicts.ToTensor(tensor).to_type(accumulator.dtype);
                }

                accumulator.add_(source.view(entries[i].Shape), alpha: weight);
            }
        }
    }

    /// <summary>The weighted average so far, sorted by name, in the template's dtypes, in fresh arrays. Can be called repeatedly.</summary>
    /// <exception cref="InvalidOperationException">No update was accepted yet, an earlier add failed halfway, or the mean was taken in place.</exception>
    public IReadOnlyList<NamedTensor> Result()
    {
        ThrowIfUnusable();
        ThrowIfEmpty();
        return Mean(lend: false);
    }

    /// <summary>
    /// The weighted average, the same bytes as <see cref="Result"/>, but with the float32 tensors divided in place in the sums
    /// and lent, not copied into fresh arrays; the aggregator is then finished. Calling it again returns the same tensors.
    /// </summary>
    /// <remarks>
    /// Saves the result's memory (one model) and its first write into fresh pages: a fresh 40 MB array costs about 10,000
    /// page faults, which on this machine could take longer than adding eight updates of that size. The lent tensors are
    /// readable until the aggregator is disposed; after that, reading their bytes throws <see cref="ObjectDisposedException"/>
    /// (the sums go back to a pool that later aggregators write into). Adds and <see cref="Result"/> throw once the mean is taken.
    /// After a last streamed window (<c>TryAddStreamedAsync</c> with <c>last</c>) the float32 sums hold the mean already, and
    /// this only lends them.
    /// </remarks>
    /// <exception cref="InvalidOperationException">No update was accepted yet, or an earlier add failed halfway.</exception>
    public IReadOnlyList<NamedTensor> MeanInPlace()
    {
        ThrowIfBroken();
        ThrowIfEmpty();
        try
        {
            mean ??= Mean(lend: true);
        }
        catch
        {
            // Some float32 sums may be divided already: neither they nor a second try could be trusted.
            broken = true;
            throw;
        }

        return mean;
    }

    // The sums divided by the total weight: float32 ones into fresh arrays, or in place and lent (TensorMemory).
    private NamedTensor[] Mean(bool lend)
    {
        var result = new NamedTensor[entries.Length];
        using (torch.no_grad())
        {
            for (var i = 0; i < entries.Length; i++)
            {
                using var scope = torch.NewDisposeScope();
                var entry = entries[i];
                if (entry.DType is TensorDType.F32)
                {
                    // Divided straight into the result's bytes (or over the sum): one read of the accumulator, one write. A last
                    // streamed window divided it already (lend is then the only way here: Result throws).
                    Memory<byte> bytes;
                    if (lend)
                    {
                        var memory = new TensorMemory(accumulators[i]);
                        lent.Add(memory);
                        bytes = memory.Memory;
                    }
                    else
                    {
                        bytes = GC.AllocateUninitializedArray<byte>(checked((int)(entry.ElementCount * sizeof(float))));
                    }

                    if (!divided)
                    {
                        DivideInto(accumulators[i], bytes, (float)TotalWeight);
                    }

                    result[i] = new NamedTensor(entry.Name, entry.DType, entry.Shape.ToArray(), bytes);
                }
                else if (entry.DType is TensorDType.F64)
                {
                    // Divide into the staging buffer, whose pages are already mapped, rather than a fresh tensor.
                    var average = StagingView(i).view(entry.Shape);
                    average.copy_(accumulators[i]).div_(TotalWeight);
                    result[i] = StateDicts.FromTensor(entry.Name, average);
                }
                else
                {
                    result[i] = StateDicts.FromTensor(entry.Name, accumulators[i].div(TotalWeight).round().to_type(StateDicts.ToScalarType(entry.DType)));
                }
            }
        }

        return result;
    }

    // Before an add or Result: the sums are sums, and consistent.
    private void ThrowIfUnusable()
    {
        ThrowIfBroken();
        if (mean is not null || divided)
        {
            throw new InvalidOperationException("The sums hold the mean now (taken by MeanInPlace, or written by a last streamed window), so this aggregator takes no more updates and gives the mean only through MeanInPlace.");
        }
    }

    private void ThrowIfEmpty()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("No update was accepted, so there is nothing to average.");
        }
    }

    private void ThrowIfBroken()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (broken)
        {
            throw new InvalidOperationException("An earlier add failed halfway through, so this aggregator's sums are no longer consistent; aggregate again with a new one.");
        }
    }

    /// <summary>Frees the accumulators and the staging buffers.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        foreach (var memory in lent)
        {
            memory.Release();
        }

        ReleaseSums();

        foreach (var buffer in staging.Values)
        {
            buffer.Dispose();
        }
    }

    // Float32 sums back to the pool, the others freed; each slot once.
    private void ReleaseSums()
    {
        for (var i = 0; i < entries.Length; i++)
        {
            if (accumulators[i] is { } accumulator)
            {
                if (entries[i].DType == TensorDType.F32)
                {
                    SumBuffers.Return(accumulator);
                }
                else
                {
                    accumulator.Dispose();
                }

                accumulators[i] = null!;
            }

            if (spares[i] is { } spare)
            {
                SumBuffers.Return(spare);
                spares[i] = null;
            }
        }
    }

    /// <summary>The second float32 buffer of entry <paramref name="i"/>, allocated at the first add that needs it and kept.</summary>
    private Tensor Spare(int i) => spares[i] ??= SumBuffers.Rent(entries[i].ElementCount);

    /// <summary>A flat view of the first elements of the staging buffer of entry <paramref name="i"/>'s accumulator type, in the current dispose scope.</summary>
    /// <remarks>
    /// Copying an update into a fresh tensor costs a page fault per 4 KiB, several times the cost of the copy itself;
    /// one buffer per accumulator type, as large as the largest tensor, is allocated on first use and reused.
    /// </remarks>
    private Tensor StagingView(int i)
    {
        var type = accumulators[i].dtype;
        if (!staging.TryGetValue(type, out var buffer))
        {
            var largest = entries.Where((_, j) => accumulators[j].dtype == type).Max(e => e.ElementCount);


            // Owned by this aggregator, not by whatever dispose scope the caller is in.
            buffer = torch.empty(largest, type).DetachFromDisposeScope();
            staging[type] = buffer;
        }

        return buffer.narrow(0, 0, entries[i].ElementCount);
    }

    // Tensors at least this large are added and divided in parts, one per core up to four.
    private const int ParallelFloats = 1 << 20;

    // The loops over the sums and the updates (SumChecked's parts, SumBlocks, AddScaledChecked, DivideInto, FirstNonFinite)
    // are compiled optimized at their first call (AggressiveOptimization) rather than tiered: a host aggregates once a
    // round, too rarely for the runtime to promote them from its unoptimized first tier, where they ran about 5x slower
    // (scripts/bench.sh, P = 1 M: 25-43 ms against 5 ms for 32 updates one at a time).

    /// <summary>Floats of the sum kept in the cache while every update of a window is added into them: 16 KiB.</summary>
    internal const int Block = 4096;

    /// <summary>
    /// <c>target = fma(xₘ, wₘ, … fma(x₁, w₁, accumulator))</c> (from 0 without an accumulator), float32, read straight from the
    /// updates' bytes, block by block; false when a value of an update is NaN or infinite (what was written is then garbage,
    /// which the caller discards).
    /// </summary>
    /// <remarks>
    /// libtorch has no tensor over a slice of a managed byte array, so going through <c>add_</c> meant copying every update
    /// into a staging tensor first (two extra passes over it). This reads each update once and the sum once,
    /// <see cref="Vector{T}"/> at a time, in parts on up to four threads for large tensors; every element gets the same
    /// chain of <c>fma</c>s (one rounding each, as libtorch's vectorized <c>add_</c> computes it) whatever the block or
    /// the split between threads, so the result depends neither on the core count nor on how the updates were windowed.
    /// </remarks>
    private static bool SumChecked(Tensor? accumulator, Tensor target, ReadOnlyMemory<byte>[] updates, float[] weights)
    {
        var count = updates[0].Length / sizeof(float);
        var bad = 0;
        InParts(count, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, length) =>
        {
            var sum = MemoryMarshal.Cast<byte, float>(target.bytes).Slice(start, length);
            var from = accumulator is null ? default : MemoryMarshal.Cast<byte, float>(accumulator.bytes).Slice(start, length);
            for (var b = 0; b < length && Volatile.Read(ref bad) == 0; b += Block)
            {
                var n = Math.Min(Block, length - b);
                var block = sum.Slice(b, n);
                for (var j = 0; j < updates.Length; j++)
                {
                    var x = MemoryMarshal.Cast<byte, float>(updates[j].Span).Slice(start + b, n);
                    var added = j > 0
                        ? AddScaledChecked(block, block, x, weights[j], first: false)
                        : AddScaledChecked(accumulator is null ? default : from.Slice(b, n), block, x, weights[j], first: accumulator is null);
                    if (added >= 0)
                    {
                        Volatile.Write(ref bad, 1);
                        return;
                    }
                }
            }
        });
        return bad == 0;
    }

    /// <summary><c>result = accumulator / total</c>, float32, into the result's bytes (which may be the accumulator's own), in parts like <c>SumChecked</c>.</summary>
    private static void DivideInto(Tensor accumulator, Memory<byte> result, float total) =>
        InParts(result.Length / sizeof(float), (start, length) => DivideInto(
            MemoryMarshal.Cast<byte, float>(accumulator.bytes).Slice(start, length),
            MemoryMarshal.Cast<byte, float>(result.Span).Slice(start, length),
            total));

    /// <summary>Runs <paramref name="body"/>(start, length) over <paramref name="count"/> floats: at once when small, else in parts on up to four threads.</summary>
    /// <remarks>Parts are whole vectors long, so each element is computed the same way however the work is split.</remarks>
    private static void InParts(int count, Action<int, int> body)
    {
        var parts = Math.Min(4, Environment.ProcessorCount);
        if (count < ParallelFloats || parts < 2)
        {
            body(0, count);
            return;
        }

        // Each part is a whole number of vectors, and together they cover every element (the last one is shorter).
        var per = ((count + parts - 1) / parts + Vector<float>.Count - 1) / Vector<float>.Count * Vector<float>.Count;
        Parallel.For(0, parts, part =>
        {
            var start = (int)Math.Min((long)part * per, count);
            var length = Math.Min(per, count - start);
            if (length > 0)
            {
                body(start, length);
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DivideInto(ReadOnlySpan<float> accumulator, Span<float> result, float total)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var t = new Vector<float>(total);
            var acc = MemoryMarshal.Cast<float, Vector<float>>(accumulator);
            var r = MemoryMarshal.Cast<float, Vector<float>>(result);
            for (var v = 0; v < acc.Length; v++)
            {
                r[v] = acc[v] / t;
            }

            i = acc.Length * Vector<float>.Count;
        }

        for (; i < accumulator.Length; i++)
        {
            result[i] = accumulator[i] / total;
        }
    }

    // One part: target = fma(x, w, acc) (acc = 0 when first), stopping at the first non-finite x; its index, or -1.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int AddScaledChecked(ReadOnlySpan<float> accumulator, Span<float> target, ReadOnlySpan<float> update, float weight, bool first)
    {
        const uint Exponent = 0x7F80_0000u;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var w = new Vector<float>(weight);
            var mask = new Vector<uint>(Exponent);
            var acc = MemoryMarshal.Cast<float, Vector<float>>(accumulator);
            var t = MemoryMarshal.Cast<float, Vector<float>>(target);
            var x = MemoryMarshal.Cast<float, Vector<float>>(update);
            for (var v = 0; v < x.Length; v++)
            {
                var xv = x[v];
                if (Vector.EqualsAny(Vector.AsVectorUInt32(xv) & mask, mask))
                {
                    break;
                }

                t[v] = Vector.FusedMultiplyAdd(xv, w, first ? Vector<float>.Zero : acc[v]);
                i += Vector<float>.Count;
            }
        }

        for (; i < update.Length; i++)
        {
            if ((BitConverter.SingleToUInt32Bits(update[i]) & Exponent) == Exponent)
            {
                return i;
            }

            target[i] = MathF.FusedMultiplyAdd(update[i], weight, first ? 0f : accumulator[i]);
        }

        return -1;
    }

    /// <summary>Index of the first NaN or infinity, or -1.</summary>
    internal static long FirstNonFinite(TensorDType dtype, ReadOnlySpan<byte> data) => dtype switch
    {
        TensorDType.F32 => FirstNonFinite(MemoryMarshal.Cast<byte, uint>(data), 0x7F80_0000u),
        TensorDType.F64 => FirstNonFinite(MemoryMarshal.Cast<byte, ulong>(data), 0x7FF0_0000_0000_0000ul),
        _ => -1,
    };

    // A float is NaN or infinite exactly when all its exponent bits are set.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long FirstNonFinite<TBits>(ReadOnlySpan<TBits> bits, TBits exponent)
        where TBits : unmanaged, IBinaryInteger<TBits>
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && bits.Length >= Vector<TBits>.Count)
        {
            var mask = new Vector<TBits>(exponent);
            var vectors = MemoryMarshal.Cast<TBits, Vector<TBits>>(bits);
            for (var v = 0; v < vectors.Length; v++)
            {
                if (Vector.EqualsAny(vectors[v] & mask, mask))
                {
                    break;
                }

                i += Vector<TBits>.Count;
            }
        }

        for (; i < bits.Length; i++)
        {
            if ((bits[i] & exponent) == exponent)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Flat float32 buffers for the sums, kept for the next aggregator of the same sizes (one per round, in a host that aggregates every round).</summary>
    /// <remarks>
    /// A fresh buffer costs a page fault per 4 KiB at its first write: at 10 M parameters about as long as adding two
    /// updates. Buffers come back in the order aggregators end, and are kept while the total stays within
    /// <see cref="MaxKeptBytes"/>; the rest are freed.
    /// </remarks>
    private static class SumBuffers
    {
        public const long MaxKeptBytes = 512L << 20;
        private static readonly Dictionary<long, Stack<Tensor>> Kept = [];
        private static long keptBytes;

        public static Tensor Rent(long elements)
        {
            lock (Kept)
            {
                if (Kept.TryGetValue(elements, out var stack) && stack.TryPop(out var buffer))
                {
                    keptBytes -= elements * sizeof(float);
                    return buffer;
                }
            }

            return torch.empty(elements, ScalarType.Float32).DetachFromDisposeScope();
        }

        public static void Return(Tensor buffer)
        {
            var bytes = buffer.numel() * sizeof(float);
            lock (Kept)
            {
                if (keptBytes + bytes <= MaxKeptBytes)
                {
                    if (!Kept.TryGetValue(buffer.numel(), out var stack))
                    {
                        Kept[buffer.numel()] = stack = new Stack<Tensor>();
                    }

                    stack.Push(buffer);
                    keptBytes += bytes;
                    return;
                }
            }

            buffer.Dispose();
        }
    }

    private sealed record TemplateEntry(string Name, TensorDType DType, long[] Shape)
    {
        public long ElementCount { get; } = NamedTensor.ShapeElementCount(Shape);
    }
}
