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
/// <para>Each update goes to the host's outbox under the virtual silo's own name, first writer wins, as a silo's does; the
/// group's result (every update's reference and scalars) is written beside them, and a re-executed step whose updates are
/// already there returns the result recorded with them. A virtual silo whose part is empty has no update and is left out
/// of the result; the orchestrator reports it.</para>
/// </remarks>
internal static class SiloVirtualTraining
{
    /// <summary>Most update writes a step keeps going while it trains the next virtual silos: each holds one serialized update in memory.</summary>
    private const int MaxWritesInFlight = 4;

    private static readonly ConditionalWeakTable<TabularData, ConcurrentDictionary<(SimulationSpec Simulation, int Classes), int[][]>> Partitions = new();

    /// <summary>Trains the group's virtual silos and returns their updates, in the group's order.</summary>
    public static async Task<SiloStepResult> TrainAsync(SiloDataCache cache, ISiloStorage storage, TrainRequest request, VirtualBatch batch, CancellationToken cancellationToken)
    {
        if (request.Privacy != PrivacyModes.EyesOn || request.SecureAggregation)
        {
            throw new InvalidOperationException("Virtual silos train eyes-on only, without secure aggregation: they are parts of one host's data.");
        }

        var data = await cache.ReadAsync(storage, request.Data, request.Data.Train, request.Inputs, cancellationToken).ConfigureAwait(false);
        var parts = Partitions.GetOrCreateValue(data).GetOrAdd((batch.Simulation, request.Data.Classes), key => VirtualPartition.Split(data.Labels, key.Classes, key.Simulation));
        var resultPath = BlobLayout.VirtualBatchResult(request.RunId, request.Round, batch.Batch);
        var global = Safetensors.Parse(await storage.ReadOrchestratorBlobAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false)).Tensors;
        var script = request.Script is { } file ? await storage.ReadOrchestratorBlobAsync(file, cancellationToken).ConfigureAwait(false) : null;
        // Training is sequential (it uses every core); each update's write overlaps the next trainings, a few at a time.
        var writes = new List<Task<(SiloUpdate Update, bool Existed)>>(batch.Indices.Count);
        var inFlight = new Queue<Task<(SiloUpdate Update, bool Existed)>>();
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
                if (inFlight.Count == MaxWritesInFlight)
                {
                    await inFlight.Dequeue().ConfigureAwait(false);
                }

                var write = WriteAsync(storage, request, index, id, result, cancellationToken);
                inFlight.Enqueue(write);
                writes.Add(write);
            }
        }
        finally
        {
            // Leaving early (a failed training, cancellation): no write is left running unobserved.
            await Task.WhenAll(inFlight.Select(t => t.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default))).ConfigureAwait(false);
        }

        var written = await Task.WhenAll(writes).ConfigureAwait(false);
        var updates = written.Select(w => w.Update).ToArray();

        // A re-execution found earlier updates: the result recorded with them carries their own losses and metrics.
        if (written.Any(w => w.Existed) && await storage.ReadAsync(SiloArea.Outbox, resultPath, cancellationToken).ConfigureAwait(false) is { } recordedBytes
            && JsonSerializer.Deserialize<IReadOnlyList<SiloUpdate>>(recordedBytes, JsonDefaults.Documents) is { } recorded
            && recorded.Select(u => u.Update).SequenceEqual(updates.Select(u => u.Update)))
        {
            return new SiloStepResult(Updates: recorded);
        }

        await storage.WriteAsync(SiloArea.Outbox, resultPath, JsonSerializer.SerializeToUtf8Bytes(updates, JsonDefaults.Documents), cancellationToken).ConfigureAwait(false);
        return new SiloStepResult(Updates: updates);
    }

    // First writer wins, as for a silo's own update: a hash already recorded must keep matching the stored blob.
    private static async Task<(SiloUpdate Update, bool Existed)> WriteAsync(ISiloStorage storage, TrainRequest request, int index, string id, LocalTrainResult result, CancellationToken cancellationToken)
    {
        var bytes = Safetensors.Serialize(result.State);
        var path = BlobLayout.VirtualSiloUpdate(request.RunId, request.Round, index);
        var existing = await storage.WriteIfAbsentAsync(SiloArea.Outbox, path, bytes, cancellationToken).ConfigureAwait(false);
        bytes = existing ?? bytes;
        var update = new BlobRef(storage.Uri(SiloArea.Outbox, path), Hashing.Sha256Hex(bytes), bytes.Length);
        return (new SiloUpdate(id, request.Round, update, result.Examples, result.Loss, result.Metrics, request.SiloId), existing is not null);
    }
}
