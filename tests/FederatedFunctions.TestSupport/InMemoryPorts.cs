using System.Collections.Concurrent;
using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Silo;
using Microsoft.Extensions.DependencyInjection;

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

    public Task<BlobRef> PutStrategyStateAsync(string container, string runId, int round, ReadOnlyMemory<byte> safetensors, bool firstWriterWins, CancellationToken cancellationToken)
    {
        var uri = $"mem://orchestrator/{container}/{BlobLayout.StrategyState(runId, round)}";
        return Task.FromResult(firstWriterWins && blobs.Items.TryGetValue(uri, out var existing) ? new BlobRef(uri, Hashing.Sha256Hex(existing), existing.Length) : blobs.Put(uri, safetensors.ToArray()));
    }

    /// <summary>Awaited at the start of every model read (e.g. to hold one while the test watches what else runs).</summary>
    public Func<BlobRef, Task>? BeforeReadModel { get; set; }

    // This store keeps nothing beside its blobs: what it reads is what they hold now.
    public Task<ReadOnlyMemory<byte>> ReadStoredModelAsync(BlobRef model, CancellationToken cancellationToken) => ReadModelAsync(model, cancellationToken);

    public async Task<ReadOnlyMemory<byte>> ReadModelAsync(BlobRef model, CancellationToken cancellationToken)
    {
        if (BeforeReadModel is { } before)
        {
            await before(model);
        }

        if (!blobs.Items.TryGetValue(model.Uri, out var bytes) || Hashing.Sha256Hex(bytes) != model.Sha256)
        {
            throw new IntegrityException("missing or altered " + model.Uri);
        }

        return bytes;
    }

    /// <summary>Awaited at the start of every commit (e.g. to hold one while the test watches what else runs).</summary>
    public Func<RoundManifest, Task>? BeforeCommit { get; set; }

    public async Task<BlobRef> CommitRoundAsync(string container, RoundManifest manifest, CancellationToken cancellationToken)
    {
        if (BeforeCommit is { } before)
        {
            await before(manifest);
        }

        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest);
        var manifestRef = blobs.Put($"mem://orchestrator/{container}/{BlobLayout.Manifest(manifest.RunId, manifest.Round)}", bytes);
        manifests[(container, manifest.RunId, manifest.Round)] = manifest;
        latest.AddOrUpdate((container, manifest.RunId), _ => new LatestPointer(manifest.RunId, manifest.Round, manifest.Model, manifestRef),
            (_, old) => old.Round <= manifest.Round ? new LatestPointer(manifest.RunId, manifest.Round, manifest.Model, manifestRef) : old);
        return manifestRef;
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

    public Task<BlobRef> PutJobRequestAsync(string container, string runId, int round, string jobName, ReadOnlyMemory<byte> document, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Put($"mem://orchestrator/{container}/{BlobLayout.SiloJobRequest(runId, round, jobName)}", document.ToArray()));

    public Task<BlobRef> PutDocumentAsync(string container, string path, ReadOnlyMemory<byte> document, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Put($"mem://orchestrator/{container}/{path}", document.ToArray()));

    public Task<byte[]?> GetDocumentAsync(string container, string path, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Items.TryGetValue($"mem://orchestrator/{container}/{path}", out var b) ? b : null);

    /// <summary>Writes of versioned documents that fail as if another writer had got there first, before the real attempt.</summary>
    public ConcurrentDictionary<string, int> Conflicts { get; } = new(StringComparer.Ordinal);

    // The version of a document is the SHA-256 of its bytes, with a counter so that rewriting the same bytes changes it.
    private readonly ConcurrentDictionary<string, long> writes = new(StringComparer.Ordinal);
    private readonly object versionLock = new();

    public Task<VersionedDocument?> GetVersionedDocumentAsync(string container, string path, CancellationToken cancellationToken)
    {
        var uri = $"mem://orchestrator/{container}/{path}";
        lock (versionLock)
        {
            return Task.FromResult(blobs.Items.TryGetValue(uri, out var b) ? new VersionedDocument(b, Version(uri, b)) : null);
        }
    }

    public Task<BlobRef?> TryPutDocumentAsync(string container, string path, ReadOnlyMemory<byte> document, string? ifMatch, CancellationToken cancellationToken)
    {
        var uri = $"mem://orchestrator/{container}/{path}";
        lock (versionLock)
        {
            if (Conflicts.TryGetValue(path, out var left) && left > 0)
            {
                // Another writer changes the document in between: the caller's version is stale.
                Conflicts[path] = left - 1;
                writes.AddOrUpdate(uri, 1, (_, n) => n + 1);
                return Task.FromResult<BlobRef?>(null);
            }

            var current = blobs.Items.TryGetValue(uri, out var b) ? Version(uri, b) : null;
            if (current != ifMatch)
            {
                return Task.FromResult<BlobRef?>(null);
            }

            var written = blobs.Put(uri, document.ToArray());
            writes.AddOrUpdate(uri, 1, (_, n) => n + 1);
            return Task.FromResult<BlobRef?>(written);
        }
    }

    private string Version(string uri, byte[] bytes) => $"{writes.GetValueOrDefault(uri)}-{Hashing.Sha256Hex(bytes)[..16]}";

    public Task SetCancelledAsync(string container, string runId, bool cancelled, CancellationToken cancellationToken)
    {
        var uri = $"mem://orchestrator/{container}/{BlobLayout.Cancelled(runId)}";
        if (cancelled)
        {
            blobs.Put(uri, "{}"u8.ToArray());
        }
        else
        {
            blobs.Items.TryRemove(uri, out _);
        }

        return Task.CompletedTask;
    }

    public Task<bool> IsCancelledAsync(string container, string runId, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Items.ContainsKey($"mem://orchestrator/{container}/{BlobLayout.Cancelled(runId)}"));

    public Task<byte[]?> GetSpecAsync(string container, string runId, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Items.TryGetValue($"mem://orchestrator/{container}/{BlobLayout.Spec(runId)}", out var b) ? b : null);
}

/// <summary>A silo's storage in memory: every area under <c>mem://{silo}/</c>, the orchestrator's blobs through the checkpoint store.</summary>
public sealed class InMemorySiloStorage(InMemoryBlobs blobs, string siloId, ICheckpointStore checkpoints) : ISiloStorage
{
    public string SiloId => siloId;

    public string Uri(SiloArea area, string path) => $"mem://{siloId}/{path}";

    public Task<string?> GetVersionAsync(SiloArea area, string path, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Items.TryGetValue(Uri(area, path), out var b) ? Hashing.Sha256Hex(b) : null);

    public Task<Stream?> OpenReadAsync(SiloArea area, string path, CancellationToken cancellationToken) =>
        Task.FromResult<Stream?>(blobs.Items.TryGetValue(Uri(area, path), out var b) ? new MemoryStream(b, writable: false) : null);

    public Task<byte[]?> ReadAsync(SiloArea area, string path, CancellationToken cancellationToken) =>
        Task.FromResult(blobs.Items.TryGetValue(Uri(area, path), out var b) ? b : null);

    public async IAsyncEnumerable<SiloBlobInfo> ListAsync(SiloArea area, string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = Uri(area, string.Empty);
        foreach (var (uri, bytes) in blobs.Items.Where(kv => kv.Key.StartsWith(root + prefix, StringComparison.Ordinal)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray())
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return new SiloBlobInfo(uri[root.Length..], bytes.Length, Hashing.Sha256Hex(bytes));
        }

        await Task.CompletedTask;
    }

    public Task<byte[]?> WriteIfAbsentAsync(SiloArea area, string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var fresh = bytes.ToArray();
        var stored = blobs.Items.GetOrAdd(Uri(area, path), fresh);
        return Task.FromResult(ReferenceEquals(stored, fresh) ? null : stored);
    }

    public Task WriteAsync(SiloArea area, string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        blobs.Items[Uri(area, path)] = bytes.ToArray();
        return Task.CompletedTask;
    }

    public async Task<byte[]> ReadOrchestratorBlobAsync(BlobRef blob, CancellationToken cancellationToken) =>
        (await checkpoints.ReadModelAsync(blob, cancellationToken)).ToArray();
}

/// <summary>
/// Silos in memory, on an in-process compute: their data is written as CSV into in-memory blobs and every step runs the real
/// silo protocol (TorchSharp training, masking, first-writer-wins). Faults are injected around it.
/// </summary>
public sealed class InMemorySiloBackend : ISiloCompute, IUpdateStore, ISiloCatalog
{
    private readonly InMemoryBlobs blobs;
    private readonly IReadOnlyDictionary<string, SiloDataset> silos;
    private readonly SiloProtocol protocol = new(new SiloDataCache());
    private ICheckpointStore? checkpoints;

    public InMemorySiloBackend(InMemoryBlobs blobs, IReadOnlyDictionary<string, SiloDataset> silos)
    {
        this.blobs = blobs;
        this.silos = silos;
        foreach (var (id, data) in silos)
        {
            blobs.Items[$"mem://{id}/data/train.csv"] = Csv(data.Train);
            blobs.Items[$"mem://{id}/data/test.csv"] = Csv(data.Test);
        }
    }

    /// <summary>The checkpoint store global models are read from; the harness sets it.</summary>
    public ICheckpointStore Checkpoints
    {
        get => checkpoints ?? throw new InvalidOperationException("Set Checkpoints first.");
        set => checkpoints = value;
    }

    public bool Contains(string siloId) => silos.ContainsKey(siloId);

    public TrainerIdentity Trainer(string siloId) => LocalTrainerIdentity.Value;

    /// <summary>A remote compute the silos in <see cref="RemoteSilos"/> run on instead of in process.</summary>
    public ISiloCompute? Remote { get; set; }

    /// <summary>Silos whose steps run as jobs on <see cref="Remote"/>.</summary>
    public HashSet<string> RemoteSilos { get; } = new(StringComparer.Ordinal);

    /// <summary>Seconds between reads of a remote job's state (0 in tests: the durable timers still run).</summary>
    public int RemotePollSeconds { get; set; }

    public SiloPlacement Placement(string siloId) =>
        !Contains(siloId) ? throw new ArgumentException($"Silo '{siloId}' is not in the registry.")
        : Remote is not null && RemoteSilos.Contains(siloId) ? new SiloPlacement(siloId, "remote", false, RemotePollSeconds)
        : new SiloPlacement(siloId, "local", true, 1, MinCounts.TryGetValue(siloId, out var k) ? k : null);

    /// <summary>Silos' own minimum counts per reported analysis cell.</summary>
    public Dictionary<string, int> MinCounts { get; } = new(StringComparer.Ordinal);

    public ISiloCompute Compute(string siloId) => Placement(siloId).Inline ? this : Remote!;

    public ConcurrentBag<(string Silo, int Round)> TrainCalls { get; } = [];

    /// <summary>Every train request, as the silo received it (its fit configuration included).</summary>
    public ConcurrentBag<TrainRequest> TrainRequests { get; } = [];

    public ConcurrentBag<(string Silo, int Round)> EvaluateCalls { get; } = [];

    /// <summary>Silos that fail every training call.</summary>
    public HashSet<string> Failing { get; } = new(StringComparer.Ordinal);

    /// <summary>Analysis passes that fail, by silo and pass.</summary>
    public ConcurrentDictionary<(string Silo, int Pass), bool> AnalysisFailures { get; } = new();

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

    /// <summary>Secure aggregation: (silo, attempt) pairs whose key publication fails.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> KeyFailures { get; } = new();

    /// <summary>Secure aggregation: (silo, attempt) pairs that publish a key and then drop out before masking.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> MaskFailures { get; } = new();

    /// <summary>Secure aggregation: (silo, attempt) pairs whose masked update is changed after it is reported.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> TamperedMasks { get; } = new();

    /// <summary>Secure aggregation: every mask call, with its attempt.</summary>
    public ConcurrentBag<(string Silo, int Round, int Attempt)> MaskCalls { get; } = [];

    /// <summary>Secure aggregation: (silo, attempt) pairs whose reveal fails.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> RevealFailures { get; } = new();

    /// <summary>Secure aggregation: every reveal call, with its attempt and its masking run (the run id for training).</summary>
    public ConcurrentBag<(string Silo, int Round, int Attempt, string MaskingRun)> RevealCalls { get; } = [];

    /// <summary>Secure evaluation: (silo, attempt) pairs that publish a key and then drop out before masking their evaluation.</summary>
    public ConcurrentDictionary<(string Silo, int Attempt), bool> EvaluationMaskFailures { get; } = new();

    /// <summary>Secure evaluation: (silo, round, attempt) triples whose reveal of the evaluation's self-mask fails.</summary>
    public ConcurrentDictionary<(string Silo, int Round, int Attempt), bool> EvaluationRevealFailures { get; } = new();

    /// <summary>Secure evaluation: every masked evaluation call, with its attempt.</summary>
    public ConcurrentBag<(string Silo, int Round, int Attempt)> MaskedEvaluationCalls { get; } = [];

    /// <summary>
    /// Which masked vectors of a secure sum change once checked (by silo, masking run, round or pass, and attempt): a silo's
    /// vector changes when the silo is asked to reveal its self-mask for it.
    /// </summary>
    public Func<(string Silo, string MaskingRun, int Round, int Attempt), bool> ChangesAfterCheck { get; set; } = _ => false;

    // The masked vector each silo wrote, by masking run, round (or pass) and attempt: what ChangesAfterCheck changes.
    private readonly ConcurrentDictionary<(string Silo, string MaskingRun, int Round, int Attempt), string> maskedVectors = new();

    /// <summary>The storage of one silo, as its steps see it.</summary>
    public InMemorySiloStorage Storage(string siloId) => new(blobs, siloId, Checkpoints);

    public async Task<SiloJobStatus> StartAsync(SiloJob job, BlobRef? request, CancellationToken cancellationToken)
    {
        var step = job.Step;
        var silo = step.SiloId;
        switch (step.Kind)
        {
            case SiloStepKinds.Train:
                var delay = TrainDelay + (SiloDelays.TryGetValue(silo, out var extra) ? extra : TimeSpan.Zero);
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, cancellationToken);
                }

                TrainCalls.Add((silo, step.Round));
                TrainRequests.Add(step.Train!);
                if (Failing.Contains(silo))
                {
                    throw new InvalidOperationException($"silo {silo} is down");
                }

                break;
            case SiloStepKinds.Evaluate:
                EvaluateCalls.Add((silo, step.Round));
                if (step.Evaluate!.Masking is { } masking)
                {
                    MaskedEvaluationCalls.Add((silo, step.Round, masking.Attempt));
                    if (EvaluationMaskFailures.ContainsKey((silo, masking.Attempt)))
                    {
                        throw new InvalidOperationException($"silo {silo} dropped out of the evaluation");
                    }
                }

                break;
            case SiloStepKinds.Analyze when AnalysisFailures.ContainsKey((silo, step.Round)):
                throw new InvalidOperationException($"silo {silo} failed pass {step.Round}");
            case SiloStepKinds.Key when KeyFailures.ContainsKey((silo, step.Key!.Attempt)):
                throw new InvalidOperationException($"silo {silo} is unreachable");
            case SiloStepKinds.Mask:
                MaskCalls.Add((silo, step.Round, step.Mask!.Attempt));
                if (MaskFailures.ContainsKey((silo, step.Mask.Attempt)))
                {
                    throw new InvalidOperationException($"silo {silo} dropped out");
                }

                break;
            case SiloStepKinds.Reveal:
                RevealCalls.Add((silo, step.Round, step.Reveal!.Attempt, step.RunId));
                if (step.RunId.EndsWith("-evaluation-", StringComparison.Ordinal) ? EvaluationRevealFailures.ContainsKey((silo, step.Round, step.Reveal.Attempt)) : RevealFailures.ContainsKey((silo, step.Reveal.Attempt)))
                {
                    throw new InvalidOperationException($"silo {silo} dropped out before revealing");
                }

                var revealed = (silo, step.RunId, step.Round, step.Reveal.Attempt);
                if (ChangesAfterCheck(revealed) && maskedVectors.TryGetValue(revealed, out var checkedUri))
                {
                    var changedAfter = blobs.Items[checkedUri].ToArray();
                    changedAfter[^1] ^= 0x01;
                    blobs.Items[checkedUri] = changedAfter;
                }

                break;
        }

        var result = await protocol.RunAsync(Storage(silo), step, cancellationToken);
        if (result.Update is { } update)
        {
            result = result with { Update = Fault(silo, update) };
        }

        if (result.Updates is { } updates)
        {
            // A simulation's virtual silos: faults are set by virtual silo id.
            result = result with { Updates = updates.Select(u => Fault(u.SiloId, u)).ToArray() };
        }

        if (result.Masked is { } written)
        {
            var maskingRun = step.Evaluate?.Masking?.MaskingRun ?? step.Analyze?.Masking?.MaskingRun ?? step.RunId;
            maskedVectors[(silo, maskingRun, step.Round, written.Attempt)] = written.Masked.Uri;
        }

        if (result.Masked is { } masked && TamperedMasks.ContainsKey((silo, masked.Attempt)))
        {
            var changed = blobs.Items[masked.Masked.Uri].ToArray();
            changed[^1] ^= 0x01;
            blobs.Items[masked.Masked.Uri] = changed;
        }

        return new SiloJobStatus(job.Name, SiloJobState.Completed, "local:completed", result);
    }

    private SiloUpdate Fault(string silo, SiloUpdate update)
    {
        var uri = update.Update.Uri;
        if (Corrupt.Contains(silo))
        {
            // A corrupt trainer: it reports, honestly, an update holding a NaN.
            var file = Safetensors.Parse(blobs.Items[uri]);
            var first = file.Tensors[0];
            var data = first.Data.ToArray();
            BitConverter.GetBytes(float.NaN).CopyTo(data, 0);
            var bytes = Safetensors.Serialize([first with { Data = data }, .. file.Tensors.Skip(1)], file.Metadata.Count == 0 ? null : file.Metadata.ToDictionary());
            update = update with { Update = blobs.Put(uri, bytes) };
        }

        if (Tampered.Contains(silo))
        {
            // The update's own last byte, also when it is a slice of a blob shared by several virtual silos.
            var changed = blobs.Items[uri].ToArray();
            changed[(update.Offset ?? 0) + update.Update.Bytes - 1] ^= 0x01;
            blobs.Items[uri] = changed;
        }

        if (Vanishing.Contains(silo))
        {
            blobs.Items.TryRemove(uri, out _);
        }

        return update;
    }

    public Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken) => throw new NotSupportedException("In-process steps complete when started.");

    public Task CancelAsync(SiloJob job, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken) =>
        blobs.Items.TryGetValue(update.Uri, out var bytes) && update.Uri.StartsWith($"mem://{siloId}/outbox/", StringComparison.Ordinal)
            ? Task.FromResult<ReadOnlyMemory<byte>>(bytes)
            : throw new UpdateUnavailableException("no such update " + update.Uri);

    public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) =>
        Task.FromResult(path.StartsWith("outbox/", StringComparison.Ordinal) && blobs.Items.TryGetValue($"mem://{siloId}/{path}", out var b) ? b : null);

    private static byte[] Csv(TabularData table)
    {
        using var ms = new MemoryStream();
        TabularWriter.WriteCsvAsync(ms, table, "label", CancellationToken.None).GetAwaiter().GetResult();
        return ms.ToArray();
    }
}

/// <summary>Registers in-memory silos and the TorchSharp tensor engine for an orchestration-tier test host.</summary>
public static class InMemorySilos
{
    public static IServiceCollection AddInMemorySilos(this IServiceCollection services, InMemorySiloBackend backend, ICheckpointStore checkpoints)
    {
        ArgumentNullException.ThrowIfNull(backend);
        backend.Checkpoints = checkpoints;
        services.AddSingleton(checkpoints);
        services.AddSingleton<ISiloCatalog>(backend);
        services.AddSingleton<IUpdateStore>(backend);
        services.AddSingleton<ITensorEngine, TorchTensorEngine>();
        return services;
    }
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
