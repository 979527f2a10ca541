using System.Threading.Channels;

namespace FederatedFunctions.Ml;

/// <summary>
/// Reads several streams in step, a planned piece of each at a time, for one consumer: piece <c>c</c> of every stream comes
/// out together, while a task reads the pieces after it.
/// </summary>
/// <remarks>
/// The task reads ahead into a few sets of buffers (one buffer per stream, each as long as the longest piece), so memory is
/// that, whatever the streams' lengths; a set comes back for reuse when the consumer releases it. Streams that are plain
/// <see cref="MemoryStream"/>s with an exposed buffer (updates already in memory) are not copied: their pieces are slices
/// of that buffer. A stream that ends before its planned bytes ends the reads, and <see cref="NextAsync"/> returns null
/// from then on, as it does after the last piece ("was every piece read?" is <see cref="Complete"/>). A read that throws
/// ends them too, and <see cref="NextAsync"/> rethrows its exception. Disposing stops the reading task and waits for it.
/// </remarks>
internal sealed class LockstepReads : IAsyncDisposable
{
    private readonly IReadOnlyList<Stream> streams;
    private readonly IReadOnlyList<int> pieces;
    private readonly long[] starts;
    private readonly ArraySegment<byte>[]? inMemory;
    private readonly byte[][][] sets = [];
    private readonly Channel<int> free;
    private readonly Channel<Piece> filled;
    private readonly CancellationTokenSource stop;
    private readonly Task reading;
    private int served;
    private int read;

    /// <summary>Starts reading <paramref name="pieces"/> (lengths in bytes, in order) from every stream, up to <paramref name="ahead"/> pieces ahead.</summary>
    public LockstepReads(IReadOnlyList<Stream> streams, IReadOnlyList<int> pieces, int ahead, CancellationToken cancellationToken)
    {
        this.streams = streams;
        this.pieces = pieces;
        starts = new long[pieces.Count];
        for (var c = 1; c < pieces.Count; c++)
        {
            starts[c] = starts[c - 1] + pieces[c - 1];
        }

        free = Channel.CreateBounded<int>(ahead);
        filled = Channel.CreateBounded<Piece>(ahead);
        stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (streams.All(s => s.GetType() == typeof(MemoryStream) && ((MemoryStream)s).TryGetBuffer(out _)))
        {
            inMemory = [.. streams.Select(s => Remaining((MemoryStream)s))];
            reading = Task.CompletedTask;
            return;
        }

        var longest = pieces.Count == 0 ? 0 : pieces.Max();
        sets = [.. Enumerable.Range(0, ahead).Select(_ => streams.Select(_ => GC.AllocateUninitializedArray<byte>(longest)).ToArray())];
        for (var set = 0; set < ahead; set++)
        {
            free.Writer.TryWrite(set);
        }

        reading = Task.Run(ReadAheadAsync);
    }

    /// <summary>Whether every piece of every stream was read.</summary>
    public bool Complete => Volatile.Read(ref read) == pieces.Count;

    /// <summary>The next piece of every stream, in the streams' order, valid until <see cref="Release"/>; null when there is none (all read, or a stream ended early).</summary>
    public async ValueTask<Piece?> NextAsync()
    {
        if (inMemory is not null)
        {
            var c = served++;
            if (c >= pieces.Count)
            {
                return null;
            }

            if (inMemory.Any(b => b.Count < starts[c] + pieces[c]))
            {
                return null;
            }

            var data = inMemory.Select(b => (ReadOnlyMemory<byte>)b.AsMemory((int)starts[c], pieces[c])).ToArray();
            if (++read == pieces.Count)
            {
                // Read to the end, as a stream read piece by piece would be.
                foreach (var stream in streams)
                {
                    stream.Position += starts[^1] + pieces[^1];
                }
            }

            return new Piece(starts[c], data, -1);
        }

        while (await filled.Reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
        {
            if (filled.Reader.TryRead(out var piece))
            {
                return piece;
            }
        }

        // Ended: every piece was read, a stream came up short, or a read threw (rethrown here).
        await reading.ConfigureAwait(false);
        return null;
    }

    /// <summary>Hands a piece's buffers back for the pieces still to read.</summary>
    public void Release(Piece piece)
    {
        if (piece.Set >= 0)
        {
            free.Writer.TryWrite(piece.Set);
        }
    }

    private async Task ReadAheadAsync()
    {
        try
        {
            for (var c = 0; c < pieces.Count; c++)
            {
                var set = await free.Reader.ReadAsync(stop.Token).ConfigureAwait(false);
                // Every stream's piece at once: downloads arrive side by side, and whatever a stream does with its bytes
                // (hash them, say) runs beside the others.
                var got = await Task.WhenAll(streams.Select((stream, s) => stream.ReadAtLeastAsync(sets[set][s].AsMemory(0, pieces[c]), pieces[c], throwOnEndOfStream: false, stop.Token).AsTask())).ConfigureAwait(false);
                if (got.Any(n => n < pieces[c]))
                {
                    return;
                }

                Interlocked.Increment(ref read);
                await filled.Writer.WriteAsync(new Piece(starts[c], [.. sets[set].Select(b => (ReadOnlyMemory<byte>)b.AsMemory(0, pieces[c]))], set), stop.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            filled.Writer.TryComplete();
        }
    }

    private static ArraySegment<byte> Remaining(MemoryStream stream)
    {
        stream.TryGetBuffer(out var buffer);
        var at = (int)Math.Min(stream.Position, buffer.Count);
        return buffer[at..];
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await reading.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Stopped, or a read failed after the consumers stopped taking pieces: either way the add is already over.
        }

        stop.Dispose();
    }

    /// <summary>A piece of every stream: <paramref name="Data"/>[s] is stream s's bytes from <paramref name="Start"/>, held in buffer set <paramref name="Set"/> (-1: in memory).</summary>
    public sealed record Piece(long Start, ReadOnlyMemory<byte>[] Data, int Set);
}
