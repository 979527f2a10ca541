using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Workflow.Services;

/// <summary>
/// Reads the updates of one pass over a round's updates, each checked against its own reference as
/// <see cref="VerifiedReads"/> checks it, with one range read for each run of slices of one blob: the updates of a virtual
/// silo group share a blob (<see cref="SiloUpdate.Offset"/>), and ten updates of 31 KB cost ten round trips read one by one.
/// </summary>
/// <remarks>
/// A run is a sequence of updates, next to one another in the pass, that are slices of the same blob of the same outbox,
/// spanning at most <see cref="RunBytes"/> and at most twice their own bytes (so a gap of other slices is not read for
/// nothing). Its bytes are kept until its last slice is taken, so a pass in order holds one run beyond what it prefetches.
/// A failed run read refuses each of its slices as <c>missing</c>, as their own reads would have; a short one, each slice
/// it does not cover as <c>truncated</c>. Each pass makes its own reads: nothing is kept from one pass to the next.
/// </remarks>
internal sealed class UpdateReads
{
    /// <summary>Most bytes one run read covers.</summary>
    public const long RunBytes = 32L * 1024 * 1024;

    private readonly IUpdateStore updates;
    private readonly IReadOnlyList<SiloUpdate> pass;
    private readonly int[] runStart;
    private readonly long[] runOffset;
    private readonly long[] runLength;
    private readonly int[] slicesLeft;
    private readonly Task<(ReadOnlyMemory<byte> Bytes, string? Failure)>?[] runReads;
    private readonly CancellationToken cancellationToken;

    /// <summary>Plans the reads of <paramref name="pass"/>, in that order.</summary>
    public UpdateReads(IUpdateStore updates, IReadOnlyList<SiloUpdate> pass, CancellationToken cancellationToken)
    {
        this.updates = updates;
        this.pass = pass;
        this.cancellationToken = cancellationToken;
        runStart = new int[pass.Count];
        runOffset = new long[pass.Count];
        runLength = new long[pass.Count];
        slicesLeft = new int[pass.Count];
        runReads = new Task<(ReadOnlyMemory<byte>, string?)>?[pass.Count];
        for (var i = 0; i < pass.Count;)
        {
            var (end, from, to, bytes) = (i + 1, Start(pass[i]), Start(pass[i]) + pass[i].Update.Bytes, pass[i].Update.Bytes);
            while (pass[i].Offset is >= 0 && end < pass.Count && SameBlob(pass[i], pass[end]))
            {
                var (f, t) = (Math.Min(from, Start(pass[end])), Math.Max(to, Start(pass[end]) + pass[end].Update.Bytes));
                if (t - f > RunBytes || t - f > 2 * (bytes + pass[end].Update.Bytes))
                {
                    break;
                }

                (from, to, bytes, end) = (f, t, bytes + pass[end].Update.Bytes, end + 1);
            }

            for (var k = i; k < end; k++)
            {
                runStart[k] = i;
            }

            (runOffset[i], runLength[i], slicesLeft[i]) = (from, to - from, end - i);
            i = end;
        }
    }

    /// <summary>The silo (or virtual silo) of update <paramref name="index"/>, which a refusal names.</summary>
    public string SiloId(int index) => pass[index].SiloId;

    /// <summary>Update <paramref name="index"/> of the pass, checked, or the refusal that names its silo.</summary>
    public async Task<(ReadOnlyMemory<byte>? Bytes, RejectedUpdate? Refusal)> ReadAsync(int index)
    {
        var update = pass[index];
        var first = runStart[index];
        // A run of one slice is read alone. Decided from the plan, not from slicesLeft: the slices of a run may be asked for
        // in any order and at once.
        if (first == index && (index + 1 == pass.Count || runStart[index + 1] != first))
        {
            return await VerifiedReads.ReadAsync(updates, update.SiloId, update.Update, cancellationToken, update.Host, update.Offset).ConfigureAwait(false);
        }

        Task<(ReadOnlyMemory<byte> Bytes, string? Failure)> read;
        lock (runReads)
        {
            read = runReads[first] ??= ReadRunAsync(first);
            if (--slicesLeft[first] == 0)
            {
                runReads[first] = null;
            }
        }

        var (bytes, failure) = await read.ConfigureAwait(false);
        if (failure is not null)
        {
            return (null, new RejectedUpdate(update.SiloId, "missing", failure));
        }

        var at = update.Offset!.Value - runOffset[first];
        var slice = at >= bytes.Length ? ReadOnlyMemory<byte>.Empty : bytes.Slice((int)at, (int)Math.Min(update.Update.Bytes, bytes.Length - at));
        return VerifiedReads.Check(update.SiloId, update.Update, slice);
    }

    // The run's covering range: the range read names the blob and a length only; each slice is then checked on its own.
    private async Task<(ReadOnlyMemory<byte> Bytes, string? Failure)> ReadRunAsync(int first)
    {
        var update = pass[first];
        try
        {
            var range = update.Update with { Sha256 = string.Empty, Bytes = runLength[first] };
            return (await updates.ReadUpdateRangeAsync(update.Host ?? update.SiloId, range, runOffset[first], cancellationToken).ConfigureAwait(false), null);
        }
        catch (UpdateUnavailableException ex)
        {
            return (ReadOnlyMemory<byte>.Empty, ex.Message);
        }
    }

    private static long Start(SiloUpdate update) => update.Offset ?? 0;

    private static bool SameBlob(SiloUpdate a, SiloUpdate b) =>
        b.Offset is >= 0 && b.Update.Bytes > 0 && a.Update.Bytes > 0
        && string.Equals(a.Host ?? a.SiloId, b.Host ?? b.SiloId, StringComparison.Ordinal)
        && string.Equals(a.Update.Uri, b.Update.Uri, StringComparison.Ordinal);
}
