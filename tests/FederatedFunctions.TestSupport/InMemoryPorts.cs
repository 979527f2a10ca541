using System.Collections.Concurrent;
using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;

namespace FederatedFunctions.TestSupport;

/// <summary>Blobs in a dictionary, keyed by URI. Used for the orchestration tier; the blob adapters have their own Azurite tests.</summary>
public sealed class InMemoryBlobs
{
    public ConcurrentDictionary<string, byte[]> Items { get; } = new(StringComparer.Ordinal);

    public BlobRef Put(string uri, byte[] bytes)
    {
        Items[uri] = bytes;
        return new BlobRef(uri, Hashing.Sha256Hex(bytes), bytes.Length);
    }
}

public sealed class InMemoryCheckpointStore(InMemoryBlobs blobs) : ICheckpointStore
{
    private readonly ConcurrentDictionary<(string, string), LatestPointer> latest = new();
    private readonly ConcurrentDictionary<(string, string, int), RoundManifest> manifests = new();

    public Task<BlobRef> PutModelAsync(string container, string runId, int round, ReadOnlyMemory<byte> safetensors, bool firstWriterWins, CancellationToken cancellationToken)
    {
        var uri = $"mem://orchestrator/{container}/{BlobLayout.Model(runId, round)}";
        if (firstWriterWins && blobs.Items.TryGetValue(uri, out var existing))
        {
            return Task.FromResult(new BlobRef(uri, Hashing.Sha256Hex(existing), existing.Length));
        }

        return Task.FromResult(blobs.Put(uri, safetensors.ToArray()));
    }

    public Task<ReadOnlyMemory<byte>> ReadModelAsync(BlobRef model, CancellationToken cancellationToken)
    {
        if (!blobs.Items.TryGetValue(model.Uri, out var bytes) || Hashing.Sha256Hex(bytes) != model.Sha256)
        {
            throw new IntegrityException("missing or altered " + model.Uri);
        }

        return Task.FromResult<ReadOnlyMemory<byte>>(bytes);
    }

    public Task<BlobRef> CommitRoundAsync(string container, RoundManifest manifest, CancellationToken cancellationToken)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest);
        var manifestRef = blobs.Put($"mem://orchestrator/{container}/{BlobLayout.Manifest(manifest.RunId, manifest.Round)}", bytes);
        manifests[(container, manifest.RunId, manifest.Round)] = manifest;
        latest.AddOrUpdate((container, manifest.RunId), _ => new LatestPointer(manifest.RunId, manifest.Round, manifest.Model, manifestRef),
            (_, old) => old.Round <= manifest.Round ? new LatestPointer(manifest.RunId, manifest.Round, manifest.Model, manifestRef) : old);
        return Task.FromResult(manifestRef);
    }

    public Task<LatestPointer?> GetLatestAsync(string container, string runId, CancellationToken cancellationToken) =>
        Task.FromResult(latest.TryGetValue((container, runId), out var p) ? p : null);

    public Task<IReadOnlyList<RoundManifest>> ListAsync(string container, string runId, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<RoundManifest>>(manifests.Where(kv => kv.Key.Item1 == container && kv.Key.Item2 == runId).OrderBy(kv => kv.Key.Item3).Select(kv => kv.Value).ToArray());

    public Task<RoundManifest?> GetManifestAsync(string container, string runId, int round, CancellationToken cancellationToken) =>
        Task.FromResult(manifests.TryGetValue((container, runId, round), out var m) ? m : null);

    public Task PutSpecAsync(string container, string runId, ReadOnlyMemory<byte> specJson, CancellationToken cancellationToken)
    {
        blobs.Put($"mem://orchestrator/{container}/{BlobLayout.Spec(runId)}", specJson.ToArray());
        return Task.CompletedTask;
    }

    public Task PutAuditAsync(string container, string runId, int round, ReadOnlyMemory<byte> jsonLines, CancellationToken cancellationToken)
    {
        blobs.Items[$"mem://orchestrator/{container}/{BlobLayout.Audit(runId, round)}"] = jsonLines.ToArray();
        return Task.CompletedTask;
    }

    public Task<byte[]> ReadAuditAsync(string container, string runId, int throughRound, CancellationToken cancellationToken)
    {
        var prefix = $"mem://orchestrator/{container}/{BlobLayout.AuditPrefix(runId)}";
        var last = $"mem://orchestrator/{container}/{BlobLayout.Audit(runId, throughRound)}";
        return Task.FromResult(blobs.Items.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal) && string.CompareOrdinal(kv.Key, last) <= 0).OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value).ToArray());
    }

    public Task<byte[]?> GetSpecAsync(string container, string runId, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Items.TryGetValue($"mem://orchestrator/{container}/{BlobLayout.Spec(runId)}", out var b) ? b : null);
}

/// <summary>Silos whose data is in memory; training and evaluation are the real TorchSharp ones.</summary>
public sealed class InMemorySiloBackend(InMemoryBlobs blobs, IReadOnlyDictionary<string, SiloDataset> silos) : ISiloBackend, IUpdateStore, ISiloCatalog
{
    public bool Contains(string siloId) => silos.ContainsKey(siloId);

    public ConcurrentBag<(string Silo, int Round)> TrainCalls { get; } = [];

    public ConcurrentBag<(string Silo, int Round)> EvaluateCalls { get; } = [];

    /// <summary>Silos that fail every training call.</summary>
    public HashSet<string> Failing { get; } = new(StringComparer.Ordinal);

    /// <summary>Silos that report an update and then change its blob (a tampered upload).</summary>
    public HashSet<string> Tampered { get; } = new(StringComparer.Ordinal);

    /// <summary>Silos whose update holds a NaN (a corrupt trainer).</summary>
    public HashSet<string> Corrupt { get; } = new(StringComparer.Ordinal);

    /// <summary>Silos whose update blob disappears after it is reported.</summary>
    public HashSet<string> Vanishing { get; } = new(StringComparer.Ordinal);

    /// <summary>A delay before each training, to keep runs going while a test acts on them.</summary>
    public TimeSpan TrainDelay { get; set; }

    /// <summary>Extra delays for some silos (stragglers).</summary>
    public ConcurrentDictionary<string, TimeSpan> SiloDelays { get; } = new(StringComparer.Ordinal);

    public async Task<SiloUpdate> TrainAsync(TrainRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        var delay = TrainDelay + (SiloDelays.TryGetValue(request.SiloId, out var extra) ? extra : TimeSpan.Zero);
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, cancellationToken);
        }

        return Train(request, globalModel, cancellationToken);
    }

    private SiloUpdate Train(TrainRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        TrainCalls.Add((request.SiloId, request.Round));
        if (Failing.Contains(request.SiloId))
        {
            throw new InvalidOperationException($"silo {request.SiloId} is down");
        }

        var result = LocalTrainer.Train(request.Model, request.Training, request.Data.Classes, Safetensors.Parse(globalModel).Tensors, silos[request.SiloId].Train, request.Round, request.SiloId, cancellationToken);
        var state = result.State;
        if (Corrupt.Contains(request.SiloId))
        {
            var first = state[0];
            var data = first.Data.ToArray();
            BitConverter.GetBytes(float.NaN).CopyTo(data, 0);
            state = [first with { Data = data }, .. state.Skip(1)];
        }

        var bytes = request.SecureAggregation
            ? Safetensors.Serialize(state, new Dictionary<string, string> { [UpdateMetadata.Examples] = result.Examples.ToString(System.Globalization.CultureInfo.InvariantCulture), [UpdateMetadata.Loss] = UpdateMetadata.FormatLoss(result.Loss) })
            : Safetensors.Serialize(state);
        var uri = $"mem://{request.SiloId}/{(request.SecureAggregation ? BlobLayout.SiloPrivateUpdate(request.RunId, request.Round) : BlobLayout.SiloUpdate(request.RunId, request.Round))}";
        var update = blobs.Put(uri, bytes);
        if (Tampered.Contains(request.SiloId))
        {
            var changed = bytes.ToArray();
            changed[^1] ^= 0x01;
            blobs.Items[uri] = changed;
        }

        if (Vanishing.Contains(request.SiloId))
        {
            blobs.Items.TryRemove(uri, out _);
        }

        return new SiloUpdate(request.SiloId, request.Round, update, result.Examples, result.Loss, result.Metrics);
    }

    /// <summary>Secure aggregation: (silo, attempt) pairs whose key publication fails.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> KeyFailures { get; } = new();

    /// <summary>Secure aggregation: (silo, attempt) pairs that publish a key and then drop out before masking.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> MaskFailures { get; } = new();

    /// <summary>Secure aggregation: (silo, attempt) pairs whose masked update is changed after it is reported.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> TamperedMasks { get; } = new();

    /// <summary>Secure aggregation: every mask call, with its attempt.</summary>
    public ConcurrentBag<(string Silo, int Round, int Attempt)> MaskCalls { get; } = [];

    private readonly ConcurrentDictionary<string, byte[]> secrets = new(StringComparer.Ordinal);

    private byte[] Secret(string silo) => secrets.GetOrAdd(silo, _ => System.Security.Cryptography.RandomNumberGenerator.GetBytes(MaskingKeys.MinSecretBytes));

    public Task<MaskingPublicKey> PublishMaskingKeyAsync(MaskingKeyRequest request, CancellationToken cancellationToken)
    {
        if (KeyFailures.ContainsKey((request.SiloId, request.Attempt)))
        {
            throw new InvalidOperationException($"silo {request.SiloId} is unreachable");
        }

        return Task.FromResult(new MaskingPublicKey(request.SiloId, request.Attempt, SiloMasking.PublicKey(Secret(request.SiloId), request.SiloId, new MaskingContext(request.RunId, request.Round, request.Attempt)), Revealed(request.SiloId, request.RunId, request.Round)));
    }

    public Task<MaskedUpdateRef> MaskUpdateAsync(MaskUpdateRequest request, ReadOnlyMemory<byte> globalModel, CancellationToken cancellationToken)
    {
        MaskCalls.Add((request.SiloId, request.Round, request.Attempt));
        if (MaskFailures.ContainsKey((request.SiloId, request.Attempt)))
        {
            throw new InvalidOperationException($"silo {request.SiloId} dropped out");
        }

        var kept = blobs.Items[$"mem://{request.SiloId}/{BlobLayout.SiloPrivateUpdate(request.RunId, request.Round)}"];
        var masked = SiloMaskingStep.Mask(request, kept, globalModel, Secret(request.SiloId), Revealed(request.SiloId, request.RunId, request.Round));
        var uri = $"mem://{request.SiloId}/{BlobLayout.SiloMaskedUpdate(request.RunId, request.Round, request.Attempt)}";
        if (blobs.Items.TryGetValue(uri, out var existing))
        {
            masked = SiloMaskingStep.KeepFirst(request, masked, existing);
        }

        var reference = blobs.Put(uri, masked);
        if (TamperedMasks.ContainsKey((request.SiloId, request.Attempt)))
        {
            var changed = masked.ToArray();
            changed[^1] ^= 0x01;
            blobs.Items[uri] = changed;
        }

        return Task.FromResult(new MaskedUpdateRef(request.SiloId, request.Round, request.Attempt, reference));
    }

    /// <summary>Secure aggregation: (silo, attempt) pairs whose reveal fails.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> RevealFailures { get; } = new();

    /// <summary>Secure aggregation: every reveal call, with its attempt.</summary>
    public ConcurrentBag<(string Silo, int Round, int Attempt)> RevealCalls { get; } = [];

    public Task<SelfMaskReveal> RevealSelfMaskAsync(RevealSelfMaskRequest request, CancellationToken cancellationToken)
    {
        RevealCalls.Add((request.SiloId, request.Round, request.Attempt));
        if (RevealFailures.ContainsKey((request.SiloId, request.Attempt)))
        {
            throw new InvalidOperationException($"silo {request.SiloId} dropped out before revealing");
        }

        var masked = blobs.Items.ContainsKey($"mem://{request.SiloId}/{BlobLayout.SiloMaskedUpdate(request.RunId, request.Round, request.Attempt)}");
        var seed = SiloMaskingStep.Reveal(request, Secret(request.SiloId), masked, Revealed(request.SiloId, request.RunId, request.Round));
        var record = blobs.Items.GetOrAdd($"mem://{request.SiloId}/{BlobLayout.SiloRevealedAttempt(request.RunId, request.Round)}", SiloMaskingStep.FormatRevealed(request.Attempt));
        seed = SiloMaskingStep.Reveal(request, Secret(request.SiloId), masked, SiloMaskingStep.ParseRevealed(record));
        return Task.FromResult(new SelfMaskReveal(request.SiloId, request.Attempt, seed));
    }

    private int? Revealed(string silo, string runId, int round) =>
        blobs.Items.TryGetValue($"mem://{silo}/{BlobLayout.SiloRevealedAttempt(runId, round)}", out var r) ? SiloMaskingStep.ParseRevealed(r) : null;

    public Task<SiloEvaluation> EvaluateAsync(EvaluateRequest request, ReadOnlyMemory<byte> model, CancellationToken cancellationToken)
    {
        EvaluateCalls.Add((request.SiloId, request.Round));
        var r = LocalTrainer.Evaluate(request.ModelSpec, request.Data.Classes, Safetensors.Parse(model).Tensors, silos[request.SiloId].Test, cancellationToken);
        return Task.FromResult(new SiloEvaluation(request.SiloId, new EvaluateOutcome(request.SiloId, r.Examples, r.Loss, r.Correct), null));
    }

    public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken) =>
        blobs.Items.TryGetValue(update.Uri, out var bytes) && update.Uri.StartsWith($"mem://{siloId}/outbox/", StringComparison.Ordinal)
            ? Task.FromResult<ReadOnlyMemory<byte>>(bytes)
            : throw new UpdateUnavailableException("no such update " + update.Uri);
}

/// <summary>Recurring training's template and state in memory.</summary>
public sealed class InMemoryRecurringStore : IRecurringStore
{
    public byte[]? Template { get; set; }

    public string? LastRunId { get; set; }

    public Task<byte[]?> ReadTemplateAsync(CancellationToken cancellationToken) => Task.FromResult(Template);

    public Task<string?> GetLastRunIdAsync(CancellationToken cancellationToken) => Task.FromResult(LastRunId);

    public Task SetLastRunIdAsync(string runId, CancellationToken cancellationToken)
    {
        LastRunId = runId;
        return Task.CompletedTask;
    }
}
