using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Silo;

/// <summary>A simulation's training step in its host silo: one group of virtual silos, each trained on its part of the host's train split.</summary>
/// <remarks>
/// <para>The host reads its train split once (cached), partitions it with <see cref="VirtualPartition"/> (cached per split
/// and settings), reads the global model once, and trains the group's virtual silos one after another. Each virtual silo
/// trains exactly as a silo does, seeded by its own id and the round (<see cref="LocalTrainer"/>), so its update is the same
/// bytes whichever group, step or process trains it.</para>
/// <para>The group's updates go to the host's outbox in few blobs rather than one each: each blob
/// (<see cref="BlobLayout.VirtualGroupUpdates"/>) holds whole safetensors files one after another, up to
/// <see cref="MaxPartBytes"/> (one update at least), and each virtual silo's <see cref="SiloUpdate"/> names its own slice
/// (offset, length, SHA-256), which the aggregator checks alone. A group whose updates pass that size writes each full blob
/// while its next virtual silos train (a group of small updates writes one blob, after its last training); first writer
/// wins; a re-executed step that finds a blob already there reports the slices of the bytes stored, so a hash in
/// history always matches storage. A virtual silo whose part is empty has no update and is left out of the result; the
/// orchestrator reports it.</para>
/// </remarks>
internal static class SiloVirtualTraining
{
    /// <summary>Most bytes of updates one blob of a group holds (a larger update gets a blob of its own).</summary>
    public const int MaxPartBytes = 64 * 1024 * 1024;

    /// <summary>Most blobs a step keeps writing while it trains the next virtual silos: each holds its bytes in memory.</summary>
    private const int MaxWritesInFlight = 2;

    private static readonly ConditionalWeakTable<TabularData, ConcurrentDictionary<(SimulationSpec Simulation, int Classes), int[][]>> Partitions = new();

    /// <summary>Trains the group's virtual silos and returns their updates, in the group's order.</summary>
    public static async Task<SiloStepResult> TrainAsync(SiloDataCache cache, ISiloStorage storage, TrainRequest request, VirtualBatch batch, CancellationToken cancellationToken)
    {
        if (request.Privacy != PrivacyModes.EyesOn || request.SecureAggregation)
        {
            throw new InvalidOperationException("Virtual silos train eyes-on only, without secure aggregation: they are parts of one host's data.");
        }

        var (data, global) = await cache.ReadWithModelAsync(storage, request.Data, request.Data.Train, request.Inputs, request.GlobalModel, cancellationToken).ConfigureAwait(false);
        // Keyed by what the partition depends on: groups of another size share it.
        var parts = Partitions.GetOrCreateValue(data).GetOrAdd((batch.Simulation with { PerStep = 1 }, request.Data.Classes), key => VirtualPartition.Split(data.Labels, key.Classes, key.Simulation));
        var script = request.Script is { } file ? await storage.ReadOrchestratorBlobAsync(file, cancellationToken).ConfigureAwait(false) : null;

        // Training is sequential (it uses every core); a full blob is written while the next virtual silos train.
        var writes = new List<Task<IReadOnlyList<SiloUpdate>>>();
        var inFlight = new Queue<Task<IReadOnlyList<SiloUpdate>>>();
        var pending = new List<(int Index, LocalTrainResult Result, byte[] Bytes)>();
        var pendingBytes = 0L;
        async Task FlushAsync()
        {
            if (inFlight.Count == MaxWritesInFlight)
            {
                await inFlight.Dequeue().ConfigureAwait(false);
            }

            var write = WriteAsync(storage, request, batch.Batch, writes.Count + 1, [.. pending], cancellationToken);
            inFlight.Enqueue(write);
            writes.Add(write);
            pending.Clear();
            pendingBytes = 0;
        }

        try
        {
            foreach (var index in batch.Indices)
            {
                if (index < 1 || index > parts.Length)
                {
                    throw new ArgumentException($"Virtual silo {index} is outside the simulation's {parts.Length}.", nameof(batch));
                }

                if (parts[index - 1].Length == 0)
                {
                    continue;
                }

                var id = VirtualSilos.Id(request.SiloId, index);
                var result = LocalTrainer.Train(request.Model, request.Training, request.Data.Classes, global, data.Select(parts[index - 1]), request.Round, id, cancellationToken, request.Fit?.ProximalMu ?? 0, script);
                var bytes = Safetensors.Serialize(result.State);
                if (pending.Count > 0 && pendingBytes + bytes.Length > MaxPartBytes)
                {
                    await FlushAsync().ConfigureAwait(false);
                }

                pending.Add((index, result, bytes));
                pendingBytes += bytes.Length;
            }

            if (pending.Count > 0)
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }
        catch
        {
            // Leaving early (a failed training, cancellation): the writes still going end, and their faults are observed,
            // before the step's own exception goes on.
            try
            {
                await Task.WhenAll(inFlight).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The step already fails with its own exception.
            }

            throw;
        }

        return new SiloStepResult(Updates: [.. (await Task.WhenAll(writes).ConfigureAwait(false)).SelectMany(u => u)]);
    }

    // One blob of the group: the updates one after another, first writer wins; each update's slice of what is stored.
    private static async Task<IReadOnlyList<SiloUpdate>> WriteAsync(ISiloStorage storage, TrainRequest request, int group, int part, (int Index, LocalTrainResult Result, byte[] Bytes)[] updates, CancellationToken cancellationToken)
    {
        var blob = new byte[updates.Sum(u => (long)u.Bytes.Length)];
        var offset = 0;
        foreach (var u in updates)
        {
            u.Bytes.CopyTo(blob, offset);
            offset += u.Bytes.Length;
        }

        var path = BlobLayout.VirtualGroupUpdates(request.RunId, request.Round, group, part);
        var stored = await storage.WriteIfAbsentAsync(SiloArea.Outbox, path, blob, cancellationToken).ConfigureAwait(false) ?? blob;
        var lengths = stored.AsSpan().SequenceEqual(blob) ? updates.Select(u => (long)u.Bytes.Length).ToArray() : Lengths(stored, updates.Length);
        var uri = storage.Uri(SiloArea.Outbox, path);
        var result = new SiloUpdate[updates.Length];
        long at = 0;
        for (var i = 0; i < updates.Length; i++)
        {
            var (index, trained, _) = updates[i];
            var slice = stored.AsMemory((int)at, (int)lengths[i]);
            result[i] = new SiloUpdate(VirtualSilos.Id(request.SiloId, index), request.Round, new BlobRef(uri, Hashing.Sha256Hex(slice.Span), slice.Length), trained.Examples, trained.Loss, trained.Metrics, request.SiloId, at);
            at += lengths[i];
        }

        return result;
    }

    // An earlier execution stored other bytes (another CPU, another thread count): its files' lengths, one per update.
    private static long[] Lengths(byte[] stored, int count)
    {
        var lengths = new long[count];
        long at = 0;
        for (var i = 0; i < count; i++)
        {
            lengths[i] = Safetensors.LeadingFileLength(stored.AsMemory((int)at));
            at += lengths[i];
        }

        if (at != stored.Length)
        {
            throw new InvalidOperationException($"The stored blob holds {stored.Length} bytes; its {count} updates end at {at}.");
        }

        return lengths;
    }
}
