using FederatedFunctions.Core.Specs;
using System.Runtime.InteropServices;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

using FederatedFunctions.Ml;

namespace FederatedFunctions.Workflow.Tests.Services;

public sealed class AggregationServiceTests
{
    private readonly InMemoryBlobs blobs = new();
    private readonly InMemoryCheckpointStore store;
    private readonly InMemorySiloBackend silos;
    private readonly AggregationService service;
    private readonly BlobRef global;

    public AggregationServiceTests()
    {
        store = new InMemoryCheckpointStore(blobs);
        silos = new InMemorySiloBackend(blobs, new Dictionary<string, FederatedFunctions.Ml.SiloDataset>());
        service = new AggregationService(store, silos, new TorchTensorEngine(), NullLogger<AggregationService>.Instance);
        global = blobs.Put("mem://orchestrator/checkpoints/r/round-00000/model.safetensors", Model(0, 0));
    }

    private static byte[] Model(float a, float b, string name = "w", long[]? shape = null) =>
        Safetensors.Serialize([new NamedTensor(name, TensorDType.F32, shape ?? [2], MemoryMarshal.AsBytes(new[] { a, b }.AsSpan()).ToArray())]);

    private SiloUpdate Update(string silo, byte[] bytes, long examples) =>
        new(silo, 1, blobs.Put($"mem://{silo}/outbox/r/round-00001/update.safetensors", bytes), examples, 1.0, new Dictionary<string, double>());

    private Task<AggregateResult> AggregateAsync(params SiloUpdate[] updates) =>
        service.AggregateAsync(new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates), default);

    private async Task<float[]> ReadAsync(BlobRef model) =>
        MemoryMarshal.Cast<byte, float>(Safetensors.Parse(await store.ReadModelAsync(model, default)).Tensors[0].Data.Span).ToArray();

    [Fact]
    public async Task AggregateAsync_TwoGoodUpdates_WritesTheExampleWeightedMean()
    {
        var result = await AggregateAsync(Update("silo-a", Model(1, 2), 120), Update("silo-b", Model(3, 4), 80));

        var values = await ReadAsync(result.Model);
        Assert.Equal(1.8f, values[0], 1e-6f);
        Assert.Equal(2.8f, values[1], 1e-6f);
        Assert.Equal([0.6, 0.4], result.Participants.Select(p => Math.Round(p.Weight!.Value, 12)));
        Assert.Empty(result.Rejected);
        Assert.Equal(200, result.Fit!.Examples);
    }

    [Fact]
    public async Task AggregateAsync_TamperedUpdate_IsRejectedAndLeftOut()
    {
        var good = Update("silo-a", Model(1, 2), 100);
        var tampered = Update("silo-b", Model(3, 4), 100);
        blobs.Items[tampered.Update.Uri] = Model(300, 400);

        var result = await AggregateAsync(good, tampered);

        var values = await ReadAsync(result.Model);
        Assert.Equal(new[] { 1f, 2f }, values);
        var rejected = Assert.Single(result.Rejected);
        Assert.Equal(("silo-b", "sha256-mismatch"), (rejected.SiloId, rejected.Reason));
        Assert.Equal(["silo-a"], result.Participants.Select(p => p.SiloId));
        Assert.Equal(1.0, result.Participants[0].Weight);
    }

    [Fact]
    public async Task AggregateAsync_EachKindOfBadUpdate_IsRejectedWithItsReason()
    {
        var truncated = Update("silo-t", Model(1, 1), 10);
        blobs.Items[truncated.Update.Uri] = blobs.Items[truncated.Update.Uri][..^4];
        var missing = Update("silo-m", Model(1, 1), 10);
        blobs.Items.TryRemove(missing.Update.Uri, out _);
        var result = await AggregateAsync(
            Update("silo-ok", Model(5, 6), 10),
            Update("silo-nan", Model(float.NaN, 1), 10),
            Update("silo-inf", Model(float.PositiveInfinity, 1), 10),
            Update("silo-shape", Model(1, 1, shape: [1, 2]), 10),
            Update("silo-key", Model(1, 1, name: "v"), 10),
            Update("silo-garbage", [1, 2, 3, 4, 5, 6, 7, 8, 9], 10),
            Update("silo-zero", Model(1, 1), 0),
            truncated,
            missing);

        var values = await ReadAsync(result.Model);
        Assert.Equal(new[] { 5f, 6f }, values);
        var reasons = result.Rejected.ToDictionary(r => r.SiloId, r => r.Reason);
        Assert.Equal("non-finite", reasons["silo-nan"]);
        Assert.Equal("non-finite", reasons["silo-inf"]);
        Assert.Equal("shape-mismatch", reasons["silo-shape"]);
        Assert.Equal("missing-tensor", reasons["silo-key"]);
        Assert.Equal("malformed", reasons["silo-garbage"]);
        Assert.Equal("bad-example-count", reasons["silo-zero"]);
        Assert.Equal("truncated", reasons["silo-t"]);
        Assert.Equal("missing", reasons["silo-m"]);
        Assert.Equal(8, result.Rejected.Count);
    }

    [Fact]
    public async Task AggregateAsync_NoUpdateSurvives_FailsNamingEverySilo()
    {
        var ex = await Assert.ThrowsAsync<NoAcceptedUpdatesException>(() =>
            AggregateAsync(Update("silo-nan", Model(float.NaN, 1), 10), Update("silo-zero", Model(1, 1), 0)));
        Assert.Contains("silo-nan: non-finite", ex.Message, StringComparison.Ordinal);
        Assert.Contains("silo-zero: bad-example-count", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AggregateAsync_SameInputsInAnyOrder_WritesIdenticalBytes()
    {
        var a = Update("silo-a", Model(1.1f, 2.2f), 33);
        var b = Update("silo-b", Model(3.3f, 4.4f), 77);
        var c = Update("silo-c", Model(-5.5f, 0.1f), 51);

        var first = await AggregateAsync(a, b, c);
        var second = await AggregateAsync(c, a, b);

        Assert.Equal(first.Model, second.Model);
    }

    [Fact]
    public async Task AggregateAsync_ScaledUpdateBeyondTheNormRatio_IsRejectedAndTheRestAveraged()
    {
        // Distances from the global (0, 0): 1, 1.41, 1 and 100 (a silo scaling its update); median 1.21.
        var updates = new[]
        {
            Update("silo-a", Model(1, 0), 100),
            Update("silo-b", Model(1, 1), 100),
            Update("silo-c", Model(0, 1), 100),
            Update("silo-d", Model(60, 80), 100),
        };

        var result = await service.AggregateAsync(new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates, MaxNormRatio: 3), default);

        var rejected = Assert.Single(result.Rejected);
        Assert.Equal(("silo-d", "norm-outlier"), (rejected.SiloId, rejected.Reason));
        Assert.Contains("limit 3", rejected.Detail, StringComparison.Ordinal);
        Assert.Equal(["silo-a", "silo-b", "silo-c"], result.Participants.Select(p => p.SiloId));
        var values = await ReadAsync(result.Model);
        Assert.Equal(2f / 3, values[0], 1e-6f);
        Assert.Equal(2f / 3, values[1], 1e-6f);
    }

    [Fact]
    public async Task AggregateAsync_NoNormRatio_TheScaledUpdateCounts()
    {
        var updates = new[] { Update("silo-a", Model(1, 0), 100), Update("silo-b", Model(1, 1), 100), Update("silo-c", Model(0, 1), 100), Update("silo-d", Model(60, 80), 100) };

        var result = await AggregateAsync(updates);

        Assert.Empty(result.Rejected);
        Assert.Equal(4, result.Participants.Count);
    }

    [Fact]
    public async Task AggregateAsync_NormScreenWithACorruptUpdate_RejectsEachForItsOwnReason()
    {
        var corrupt = Update("silo-c", Model(float.NaN, 1), 100);
        var missing = Update("silo-e", Model(1, 1), 100);
        blobs.Items.TryRemove(missing.Update.Uri, out _);
        var updates = new[] { Update("silo-a", Model(1, 0), 100), Update("silo-b", Model(1, 1), 100), corrupt, Update("silo-d", Model(0, 1), 100), missing, Update("silo-f", Model(-500, 0), 100) };

        var result = await service.AggregateAsync(new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates, MaxNormRatio: 5), default);

        Assert.Equal(
            [("silo-c", "non-finite"), ("silo-e", "missing"), ("silo-f", "norm-outlier")],
            result.Rejected.Select(r => (r.SiloId, r.Reason)).OrderBy(r => r.SiloId));
        Assert.Equal(["silo-a", "silo-b", "silo-d"], result.Participants.Select(p => p.SiloId));
    }

    [Fact]
    public async Task AggregateAsync_UpdateChangedBetweenScreenAndAggregation_IsRejected()
    {
        // The screening pass reads every update; a silo that swaps its blob afterwards fails the second read's hash check.
        var swapped = Update("silo-b", Model(1, 1), 100);
        var reads = 0;
        var store2 = new SwappingUpdates(silos, swapped.Update.Uri, () => ++reads == 2 ? Model(9, 9) : null);
        var service2 = new AggregationService(store, store2, new TorchTensorEngine(), NullLogger<AggregationService>.Instance);
        var updates = new[] { Update("silo-a", Model(1, 0), 100), swapped, Update("silo-c", Model(0, 1), 100) };

        var result = await service2.AggregateAsync(new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates, MaxNormRatio: 3), default);

        var rejected = Assert.Single(result.Rejected);
        Assert.Equal(("silo-b", "sha256-mismatch"), (rejected.SiloId, rejected.Reason));
        Assert.Equal(2, reads);
    }

    private sealed class SwappingUpdates(IUpdateStore inner, string uri, Func<byte[]?> replacement) : IUpdateStore
    {
        public async Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
        {
            var bytes = await inner.ReadUpdateAsync(siloId, update, cancellationToken);
            return update.Uri == uri && replacement() is { } other ? other : bytes;
        }

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => inner.ReadOutboxAsync(siloId, path, cancellationToken);
    }

    [Fact]
    public async Task AggregateAsync_NothingToMeasureFirst_DownloadsUpdatesWhileTheGlobalModelDownloads()
    {
        // The global model's read waits (at most 10 s) for the first update's read to end: an aggregation that read the
        // global model before starting any update's download would wait it out.
        var first = Update("silo-a", Model(1, 2), 120);
        var read = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watched = new SwappingUpdates(silos, first.Update.Uri, () =>
        {
            read.TrySetResult();
            return null;
        });
        var waitedOut = false;
        store.BeforeReadModel = async model => waitedOut |= model == global && await Task.WhenAny(read.Task, Task.Delay(TimeSpan.FromSeconds(10))) != read.Task;
        var streaming = new AggregationService(store, watched, new TorchTensorEngine(), NullLogger<AggregationService>.Instance);

        var result = await streaming.AggregateAsync(new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, [first, Update("silo-b", Model(3, 4), 80)]), default);

        Assert.False(waitedOut, "the global model was read before any update");
        Assert.Equal([1.8f, 2.8f], (await ReadAsync(result.Model)).Select(v => MathF.Round(v, 5)));
    }

    [Fact]
    public async Task AggregateAsync_GlobalModelAlteredWhileUpdatesDownload_FailsWithTheIntegrityErrorAfterStoppingTheDownloads()
    {
        // The updates' reads run until they are cancelled, and the global model's read fails once both have started: the
        // aggregation fails with the integrity error only after it has stopped both (none is left running behind it).
        var (started, ended) = (0, 0);
        var bothStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var endless = new EndlessReads(() =>
        {
            if (Interlocked.Increment(ref started) == 2)
            {
                bothStarted.TrySetResult();
            }
        }, () => Interlocked.Increment(ref ended));
        store.BeforeReadModel = _ => bothStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var streaming = new AggregationService(store, endless, new TorchTensorEngine(), NullLogger<AggregationService>.Instance);
        var altered = global with { Sha256 = new string('0', 64) };

        // Bounded: an aggregation that left the reads running would wait for them forever.
        await Assert.ThrowsAsync<IntegrityException>(() => streaming.AggregateAsync(
            new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), altered, [Update("silo-a", Model(1, 2), 120), Update("silo-b", Model(3, 4), 80)]), default).WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.Equal(2, Volatile.Read(ref ended));
    }

    private sealed class EndlessReads(Action started, Action ended) : IUpdateStore
    {
        public async Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
        {
            started();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
                throw new InvalidOperationException("unreachable");
            }
            finally
            {
                ended();
            }
        }

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => Task.FromResult<byte[]?>(null);
    }

    [Fact]
    public async Task AggregateAsync_UpdatesAddedTogetherOrOneAtATime_WriteTheSameBytesAndRefuseTheSameUpdates()
    {
        // Together: the first update's read ends only after every other has, so the others are ready when it is added. One
        // at a time: each read starts only after the one before it has ended and the aggregation has had 100 ms to add it.
        var updates = new[]
        {
            Update("silo-1", Model(1.1f, -2.3f), 33), Update("silo-2", Model(float.NaN, 1), 10), Update("silo-3", Model(3.7f, 0.9f), 77),
            Update("silo-4", Model(1, 1, shape: [1, 2]), 10), Update("silo-5", Model(-5.5f, 0.1f), 51), Update("silo-6", Model(0.3f, 7.9f), 19),
        };
        var request = new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates);
        var oneAtATime = await new AggregationService(store, new OrderedReads(silos, lastFirst: false), new TorchTensorEngine(), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

        // Each read's hash check and parse run after the store returns it, so a window of all six is likely, not certain:
        // up to three tries for one that added several together (each try must give the same answer anyway).
        var windows = new List<int>();
        for (var attempt = 0; attempt < 3 && !windows.Any(w => w > 1); attempt++)
        {
            windows.Clear();
            var together = await new AggregationService(store, new OrderedReads(silos, lastFirst: true), new WindowRecordingEngine(new TorchTensorEngine(), windows), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

            Assert.Equal(oneAtATime.Model, together.Model);
            Assert.Equal(oneAtATime.Participants, together.Participants);
            Assert.Equal([("silo-2", "non-finite"), ("silo-4", "shape-mismatch")], together.Rejected.Select(r => (r.SiloId, r.Reason)));
            Assert.Equal(oneAtATime.Rejected, together.Rejected);
        }

        Assert.Contains(windows, w => w > 1);
    }

    [Fact]
    public async Task AggregateAsync_EyesOff_TheMeasuringPassDownloadsAheadOfTheUpdateItMeasures()
    {
        // The first read ends only after the other five have: a pass that reads one update after another never gets there.
        var updates = Enumerable.Range(1, 6).Select(i => Update($"silo-{i}", Safetensors.Serialize(
            [new NamedTensor("w", TensorDType.F32, [2], MemoryMarshal.AsBytes(new[] { i, -i * 0.5f }.AsSpan()).ToArray())],
            new Dictionary<string, string> { [UpdateMetadata.Examples] = (10L * i).ToString("D19", System.Globalization.CultureInfo.InvariantCulture) }), 10 * i) with { Examples = null, Loss = null }).ToArray();
        var request = new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates, Privacy: new PrivacySpec { Mode = PrivacyModes.EyesOff, MinAggregateSilos = 2 });

        // Bounded: a pass that hangs is cancelled (and its reads with it) and fails the test.
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var result = await new AggregationService(store, new OrderedReads(silos, lastFirst: true), new TorchTensorEngine(), NullLogger<AggregationService>.Instance)
            .AggregateAsync(request, bound.Token);

        Assert.Empty(result.Rejected);
        Assert.Equal(6, result.Participants.Count);
        // Σ i·10i / Σ 10i = 91 / 21.
        Assert.Equal(91f / 21, (await ReadAsync(result.Model))[0], 1e-5f);
    }

    // A model too large for a window of eight whole downloads within the prefetch budget (9.2 MB), so its updates are read as streams.
    private const int LargeFloats = 2_300_000;

    private static byte[] Large(int seed, int poisonAt = -1, string note = "", long examples = 0)
    {
        var w = Enumerable.Range(0, LargeFloats).Select(i => (float)Math.Sin(i * 0.001 + seed)).ToArray();
        if (poisonAt >= 0)
        {
            w[poisonAt] = float.NaN;
        }

        return Safetensors.Serialize(
        [
            new NamedTensor("bias", TensorDType.F32, [3], MemoryMarshal.AsBytes(new[] { seed, -seed, 0.5f }.AsSpan()).ToArray()),
            new NamedTensor("w", TensorDType.F32, [LargeFloats], MemoryMarshal.AsBytes(w.AsSpan()).ToArray()),
        ],
        new Dictionary<string, string>
        {
            ["note"] = note,
            [UpdateMetadata.Examples] = examples.ToString("D19", System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    [Fact]
    public async Task AggregateAsync_LargeModel_ReadsUpdatesAsStreamsInWindowsOfEight_AndWritesTheModelOfWholeReadsBitForBit()
    {
        Assert.True(AggregationService.Streamed(Large(0).Length));
        var largeGlobal = blobs.Put("mem://orchestrator/checkpoints/r/round-00000/large.safetensors", Large(0));
        var updates = Enumerable.Range(1, 10).Select(i => Update($"silo-{i:00}", Large(i), 10 + i)).ToArray();
        var request = new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), largeGlobal, updates);

        var windows = new List<int>();
        var streamed = await new AggregationService(store, silos, new WindowRecordingEngine(new TorchTensorEngine(), windows), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);
        var whole = await new AggregationService(store, new NoStreams(silos), new TorchTensorEngine(), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

        // Two windows read as streams (recorded negative), nothing read whole.
        Assert.Equal([-8, -2], windows);
        Assert.Equal(whole.Model.Sha256, streamed.Model.Sha256);
        Assert.Empty(streamed.Rejected);
        Assert.Equal(whole.Participants, streamed.Participants);
        var model = Safetensors.Parse(await store.ReadModelAsync(streamed.Model, default)).Tensors.Single(t => t.Name == "bias");
        var total = Enumerable.Range(1, 10).Sum(i => 10.0 + i);
        Assert.Equal(Enumerable.Range(1, 10).Sum(i => i * (10.0 + i)) / total, MemoryMarshal.Cast<byte, float>(model.Data.Span)[0], 4);
    }

    [Fact]
    public async Task AggregateAsync_LargeModel_AWindowWithBadUpdates_IsReadAgainWhole_RefusingEachWithItsReason()
    {
        var largeGlobal = blobs.Put("mem://orchestrator/checkpoints/r/round-00000/large.safetensors", Large(0));
        var updates = Enumerable.Range(1, 10).Select(i => Update($"silo-{i:00}", i == 5 ? Large(i, poisonAt: LargeFloats - 7) : Large(i), 10 + i)).ToArray();
        blobs.Items[updates[2].Update.Uri] = Large(33);
        blobs.Items[updates[8].Update.Uri] = blobs.Items[updates[8].Update.Uri][..^4];
        var request = new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), largeGlobal, updates);

        var windows = new List<int>();
        var streamed = await new AggregationService(store, silos, new WindowRecordingEngine(new TorchTensorEngine(), windows), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);
        var whole = await new AggregationService(store, new NoStreams(silos), new TorchTensorEngine(), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

        // Both windows were refused as streams (0) and added from whole reads (positive sizes).
        Assert.Equal(0, windows[0]);
        Assert.DoesNotContain(windows, w => w < 0);
        Assert.Equal(
            [("silo-03", "sha256-mismatch"), ("silo-05", "non-finite"), ("silo-09", "truncated")],
            streamed.Rejected.Select(r => (r.SiloId, r.Reason)));
        Assert.Equal($"tensor 'w' has a NaN or infinite value at element {LargeFloats - 7}", streamed.Rejected[1].Detail);
        Assert.Equal(whole.Rejected, streamed.Rejected);
        Assert.Equal(whole.Model.Sha256, streamed.Model.Sha256);
        Assert.Equal(7, streamed.Participants.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AggregateAsync_LargeModel_ADownloadBreaksOffHalfway_TheWindowIsReadWhole_AndNothingIsAddedTwice(bool eyesOff)
    {
        var largeGlobal = blobs.Put("mem://orchestrator/checkpoints/r/round-00000/large.safetensors", Large(0));
        var updates = Enumerable.Range(1, 3).Select(i => Update($"silo-{i:00}", Large(i, examples: 10 + i), 10 + i) with { Examples = eyesOff ? null : 10 + i }).ToArray();
        var request = new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), largeGlobal, updates, Privacy: eyesOff ? new PrivacySpec { Mode = PrivacyModes.EyesOff, MinAggregateSilos = 2 } : null);

        var windows = new List<int>();
        var streams = new BreakingStreams(silos, updates[1].Update.Uri);
        var log = new LogRecorder();
        using var loggers = new Microsoft.Extensions.Logging.LoggerFactory([log]);
        var broken = await new AggregationService(store, streams, new WindowRecordingEngine(new TorchTensorEngine(), windows), new Microsoft.Extensions.Logging.Logger<AggregationService>(loggers)).AggregateAsync(request, default);
        var whole = await new AggregationService(store, new NoStreams(silos), new TorchTensorEngine(), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

        // The streamed window was refused (0), then its three updates were added from whole reads (after the measuring
        // pass's, in eyes-off mode, which adds nothing).
        Assert.Equal(0, windows[0]);
        Assert.Equal(3, windows.Skip(1).Sum());
        Assert.Empty(broken.Rejected);
        Assert.Equal(whole.Model.Sha256, broken.Model.Sha256);
        Assert.Equal(3, streams.Opened.Count);
        Assert.All(streams.Opened, s => Assert.False(s.CanRead, "a stream of the window was left open"));
        // The fallback is not silent.
        var warning = Assert.Single(log.Of<AggregationService>(), e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
        // In eyes-off mode the storage's message is withheld.
        var detail = eyesOff ? AggregationService.WithheldDetail : "the connection was reset";
        Assert.Equal($"Run r round 1: the updates from silo-01 to silo-03, read as streams, failed (IOException: {detail}); reading them whole", warning.Message);
    }

    [Fact]
    public async Task AggregateAsync_LargeModel_UpdatesWhoseHeadersDifferOnlyInMetadata_ShareAStreamedWindow()
    {
        var largeGlobal = blobs.Put("mem://orchestrator/checkpoints/r/round-00000/large.safetensors", Large(0));
        var updates = Enumerable.Range(1, 3).Select(i => Update($"silo-{i:00}", Large(i, note: new string('n', 10 * i)), 10 + i)).ToArray();
        var request = new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), largeGlobal, updates);

        var windows = new List<int>();
        var streamed = await new AggregationService(store, silos, new WindowRecordingEngine(new TorchTensorEngine(), windows), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);
        var whole = await new AggregationService(store, new NoStreams(silos), new TorchTensorEngine(), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

        Assert.Equal([-3], windows);
        Assert.Equal(whole.Model.Sha256, streamed.Model.Sha256);
    }

    // The outboxes, with the stream of one blob failing halfway, as a download that broke off after the SDK's retries.
    private sealed class BreakingStreams(IUpdateStore inner, string uri) : IUpdateStore
    {
        public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken) => inner.ReadUpdateAsync(siloId, update, cancellationToken);

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => inner.ReadOutboxAsync(siloId, path, cancellationToken);

        public List<Stream> Opened { get; } = [];

        public async Task<Stream> OpenUpdateAsync(string siloId, BlobRef update, long? offset, CancellationToken cancellationToken)
        {
            var bytes = (await inner.ReadUpdateAsync(siloId, update, cancellationToken)).ToArray();
            Stream stream = update.Uri == uri ? new BreaksOff(bytes) : new MemoryStream(bytes, 0, bytes.Length, false, publiclyVisible: true);
            lock (Opened)
            {
                Opened.Add(stream);
            }

            return stream;
        }

        private sealed class BreaksOff(byte[] bytes) : MemoryStream(bytes, writable: false)
        {
            public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
                Position > Length / 2 ? throw new IOException("the connection was reset") : base.ReadAsync(buffer, cancellationToken);
        }
    }

    [Fact]
    public async Task AggregateAsync_LargeModelWithDp_ClippedUpdatesReadWhole_BesideAStreamedOne_ClipsEachAsItShould()
    {
        // Every coordinate moves by +δ from the global model's 1: δ = 1 (norm about 1,517, clipped to 3) for a, c and d,
        // δ = 0.001 (norm 1.52, under 3) for b. In silo-id order: a clipped, b alone in a streamed window, c and d clipped.
        float[] Moved(float delta) => [.. Enumerable.Repeat(1 + delta, 3), .. Enumerable.Repeat(1 + delta, LargeFloats)];
        byte[] Model(float[] values) => Safetensors.Serialize(
        [
            new NamedTensor("bias", TensorDType.F32, [3], MemoryMarshal.AsBytes(values.AsSpan(0, 3)).ToArray()),
            new NamedTensor("w", TensorDType.F32, [LargeFloats], MemoryMarshal.AsBytes(values.AsSpan(3)).ToArray()),
        ]);
        var largeGlobal = blobs.Put("mem://orchestrator/checkpoints/dp/round-00000/large.safetensors", Model(Moved(0)));
        var updates = new[] { ("a", 1f), ("b", 0.001f), ("c", 1f), ("d", 1f) }
            .Select(u => new SiloUpdate(u.Item1, 1, blobs.Put($"mem://{u.Item1}/outbox/dp/round-00001/update.safetensors", Model(Moved(u.Item2))), 10, 0.5, new Dictionary<string, double>()))
            .ToArray();
        var privacy = new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec { NoiseMultiplier = 1e-9, ClipNorm = 3 } };
        var request = new AggregateRequest("dp", 1, "checkpoints", new StrategySpec(), largeGlobal, updates, Privacy: privacy, Sampled: 4);

        var windows = new List<int>();
        var result = await new AggregationService(store, silos, new WindowRecordingEngine(new TorchTensorEngine(), windows), NullLogger<AggregationService>.Instance).AggregateAsync(request, default);

        Assert.Equal([1, -1, 1, 1], windows);
        Assert.Empty(result.Rejected);
        var w = MemoryMarshal.Cast<byte, float>(Safetensors.Parse(await store.ReadModelAsync(result.Model, default)).Tensors.Single(t => t.Name == "w").Data.Span);
        // Three changes clipped to norm 3 over LargeFloats + 3 coordinates, and b's unclipped, summed and divided by 4.
        var expected = 1 + ((3 * 3 / Math.Sqrt(LargeFloats + 3)) + 0.001) / 4;
        Assert.Equal(expected, w[0], 1e-5);
        Assert.Equal(expected, w[LargeFloats - 1], 1e-5);
    }

    // The outboxes, with every streamed open refused as if the blob were missing: each update is read whole.
    private sealed class NoStreams(IUpdateStore inner) : IUpdateStore
    {
        public Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken) => inner.ReadUpdateAsync(siloId, update, cancellationToken);

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => inner.ReadOutboxAsync(siloId, path, cancellationToken);

        public Task<Stream> OpenUpdateAsync(string siloId, BlobRef update, long? offset, CancellationToken cancellationToken) =>
            throw new UpdateUnavailableException("no streams here");
    }

    // Orders the reads: the first one last (the others all done before it), or each after the one before it, 100 ms later.
    private sealed class OrderedReads(IUpdateStore inner, bool lastFirst) : IUpdateStore
    {
        private readonly object gate = new();
        private readonly List<TaskCompletionSource> ended = [];
        private int started;

        public async Task<ReadOnlyMemory<byte>> ReadUpdateAsync(string siloId, BlobRef update, CancellationToken cancellationToken)
        {
            int index;
            TaskCompletionSource mine = new(TaskCreationOptions.RunContinuationsAsynchronously);
            TaskCompletionSource? previous;
            lock (gate)
            {
                index = started++;
                previous = index > 0 ? ended[index - 1] : null;
                ended.Add(mine);
            }

            if (lastFirst && index == 0)
            {
                // Each aggregation here reads six updates, and the window issues all six at once.
                Task[] others;
                while (true)
                {
                    lock (gate)
                    {
                        others = ended.Count == 6 ? ended.Skip(1).Select(e => e.Task).ToArray() : [];
                    }

                    if (others.Length > 0)
                    {
                        break;
                    }

                    await Task.Delay(5, cancellationToken);
                }

                await Task.WhenAll(others);
            }
            else if (!lastFirst && previous is not null)
            {
                await previous.Task;
                await Task.Delay(100, cancellationToken);
            }

            try
            {
                return await inner.ReadUpdateAsync(siloId, update, cancellationToken);
            }
            finally
            {
                mine.SetResult();
            }
        }

        public Task<byte[]?> ReadOutboxAsync(string siloId, string path, CancellationToken cancellationToken) => inner.ReadOutboxAsync(siloId, path, cancellationToken);
    }

    [Theory]
    [InlineData(31_400L, 8)]
    [InlineData(16L * 1024 * 1024, 4)]
    [InlineData(40_000_000L, 1)]
    [InlineData(200_000_000L, 1)]
    public void PrefetchWindow_ByTheGlobalModelsSize_EightSmallUpdatesOrOneLarge(long modelBytes, int window)
    {
        Assert.Equal(window, AggregationService.PrefetchWindow(modelBytes));
    }

    [Fact]
    public async Task AggregateAsync_ARealSiloNamingAnotherSilosOutboxOrASlice_IsRefusedBeforeAnyRead()
    {
        // silo-b's update, reported by silo-a as its own from silo-b's outbox: the aggregator must not read it for silo-a.
        var theirs = Update("silo-b", Model(5, 5), 100);
        var replayed = theirs with { SiloId = "silo-a", Host = "silo-b" };
        var sliced = Update("silo-c", Model(1, 1), 100) with { Offset = 0 };
        var virtualOfAnotherHost = theirs with { SiloId = "silo-c#3", Host = "silo-b" };
        var good = Update("silo-d", Model(2, 4), 100);

        var result = await AggregateAsync(replayed, sliced, virtualOfAnotherHost, good);

        Assert.Equal(["silo-d"], result.Participants.Select(p => p.SiloId));
        Assert.Equal(
            [("silo-a", "wrong-outbox"), ("silo-c", "wrong-outbox"), ("silo-c#3", "wrong-outbox")],
            result.Rejected.Select(r => (r.SiloId, r.Reason)).OrderBy(r => r.SiloId, StringComparer.Ordinal));
    }

    [Fact]
    public async Task AggregateAsync_AVirtualSilosSliceOfItsHostsBlob_IsReadAndAggregated()
    {
        var first = Model(1, 2);
        var second = Model(3, 4);
        var blob = blobs.Put("mem://host/outbox/r/round-00001/virtual/group-0001-001.safetensors-seq", [.. first, .. second]);
        SiloUpdate Slice(int index, byte[] bytes, long offset) =>
            new($"host#{index}", 1, new BlobRef(blob.Uri, FederatedFunctions.Core.Hashing.Sha256Hex(bytes), bytes.Length), 100, 1.0, null, "host", offset);

        var result = await AggregateAsync(Slice(1, first, 0), Slice(2, second, first.Length));

        Assert.Equal(["host#1", "host#2"], result.Participants.Select(p => p.SiloId));
        var mean = await ReadAsync(result.Model);
        Assert.Equal(new[] { 2f, 3f }, mean);
    }
}
