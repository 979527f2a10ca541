using System.Collections.Concurrent;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Tests;

internal sealed class FixedOptions<T>(T value) : IOptionsMonitor<T>
{
    public T CurrentValue => value;

    public T Get(string? name) => value;

    public IDisposable? OnChange(Action<T, string?> listener) => null;
}

[Collection(AzuriteCollection.Name)]
public sealed class SiloStorageTests(AzuriteFixture azurite)
{
    private async Task<(SiloRegistry Registry, IReadOnlyDictionary<string, ProvisionedSilo> Silos)> ProvisionAsync(params string[] ids)
    {
        var silos = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, ids, TimeSpan.FromHours(1));
        return (new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = silos.ToDictionary(s => s.Key, s => s.Value.Entry) })), silos);
    }

    [Fact]
    public async Task SiloSas_OtherSilosContainer_CannotListOrRead()
    {
        var (registry, silos) = await ProvisionAsync("scope-a", "scope-b");
        var b = registry.GetContainer("scope-b");
        await b.GetBlobClient("data/train.csv").UploadAsync(BinaryData.FromString("x0,label\n1,0\n"), overwrite: true);

        // Silo A's own container works with its own SAS.
        var a = registry.GetContainer("scope-a");
        await a.GetBlobClient("data/own.csv").UploadAsync(BinaryData.FromString("ok"), overwrite: true);
        Assert.Equal("ok", (await a.GetBlobClient("data/own.csv").DownloadContentAsync()).Value.Content.ToString());

        // The same SAS aimed at silo B's container: listing and reading are both refused.
        var bWithA = new BlobContainerClient(new Uri(azurite.Blobs.Uri.AbsoluteUri.TrimEnd('/') + "/scope-b"), new AzureSasCredential(silos["scope-a"].Entry.SasToken!));
        await AssertForbiddenAsync(async () =>
        {
            await foreach (var _ in bWithA.GetBlobsAsync())
            {
            }
        });
        await AssertForbiddenAsync(() => bWithA.GetBlobClient("data/train.csv").DownloadContentAsync());
    }

    [Fact]
    public async Task OrchestratorsReader_ReadsTheOutboxOnly_AndCannotWriteIt()
    {
        var (registry, silos) = await ProvisionAsync("reader-a");
        await registry.GetOutbox("reader-a").GetBlobClient("outbox/r/x.json").UploadAsync(BinaryData.FromString("{}"), overwrite: true);
        await registry.GetContainer("reader-a").GetBlobClient("data/train.csv").UploadAsync(BinaryData.FromString("x0,label\n1,0\n"), overwrite: true);

        var reader = registry.GetOutboxReader("reader-a");
        Assert.Equal("{}", (await reader.GetBlobClient("outbox/r/x.json").DownloadContentAsync()).Value.Content.ToString());
        await AssertForbiddenAsync(() => reader.GetBlobClient("outbox/r/forged.json").UploadAsync(BinaryData.FromString("{}"), overwrite: true));

        // The same read-only SAS aimed at the silo's data container gets nothing.
        var data = new BlobContainerClient(SiloRegistry.ContainerUri("reader-a", silos["reader-a"].Entry, "reader-a"), new AzureSasCredential(silos["reader-a"].Entry.OutboxReader!.SasToken!));
        await AssertForbiddenAsync(() => data.GetBlobClient("data/train.csv").DownloadContentAsync());
    }

    [Fact]
    public async Task ProcessEntry_HoldsNoSiloSecret_AndARegistryThatHoldsOneIsRefused()
    {
        var silos = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, ["proc-a"], TimeSpan.FromHours(1), SiloComputeKinds.Process, id => "/tmp/" + id + ".json");
        var entry = silos["proc-a"].Entry;
        Assert.False(entry.HoldsSecret);
        Assert.Null(entry.OutboxSasToken);
        Assert.Equal("/tmp/proc-a.json", entry.Compute.CredentialFile);

        var leaky = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = { ["proc-a"] = new SiloEndpoint { BlobServiceUri = entry.BlobServiceUri, Container = "proc-a", SasToken = "sv=1", Compute = entry.Compute } } }));
        var ex = Assert.Throws<SiloRegistryException>(() => leaky.Entry("proc-a"));
        Assert.Contains("SasToken", ex.Message, StringComparison.Ordinal);

        var noReader = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = { ["proc-a"] = new SiloEndpoint { BlobServiceUri = entry.BlobServiceUri, Container = "proc-a", Compute = entry.Compute } } }));
        Assert.Contains("OutboxReader", Assert.Throws<SiloRegistryException>(() => noReader.GetOutboxReader("proc-a")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResolveInOutbox_ReferenceOutsideTheSilosOutbox_IsRefused()
    {
        var (registry, _) = await ProvisionAsync("outbox-a", "outbox-b");
        var store = new SiloUpdateStore(registry);
        var a = registry.GetOutbox("outbox-a");
        var b = registry.GetOutbox("outbox-b");

        var otherSilo = new BlobRef(b.Uri.AbsoluteUri + "/outbox/r/round-00001/update.safetensors", new string('0', 64), 1);
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadUpdateAsync("outbox-a", otherSilo, default));
        var dataFile = new BlobRef(registry.GetContainer("outbox-a").Uri.AbsoluteUri + "/data/train.csv", new string('0', 64), 1);
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadUpdateAsync("outbox-a", dataFile, default));
        var missing = new BlobRef(a.Uri.AbsoluteUri + "/outbox/r/round-00001/update.safetensors", new string('0', 64), 1);
        var ex = await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadUpdateAsync("outbox-a", missing, default));
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadOutboxAsync("outbox-a", "data/train.csv", default));
        Assert.Null(await store.ReadOutboxAsync("outbox-a", "outbox/none.json", default));
    }

    [Fact]
    public async Task OpenUpdateAsync_StreamsTheBlobOrItsRange_AndRefusesWhatReadUpdateAsyncRefuses()
    {
        var (registry, _) = await ProvisionAsync("stream-a", "stream-b");
        IUpdateStore store = new SiloUpdateStore(registry);
        var bytes = Enumerable.Range(0, 3_000_000).Select(i => (byte)(i * 7)).ToArray();
        var blob = registry.GetOutbox("stream-a").GetBlobClient("outbox/r/round-00001/group.bin");
        await blob.UploadAsync(new BinaryData(bytes), overwrite: true);
        var whole = new BlobRef(blob.Uri.AbsoluteUri, Hashing.Sha256Hex(bytes), bytes.Length);

        async Task<byte[]> ReadAllAsync(Stream stream)
        {
            await using (stream)
            {
                using var copy = new MemoryStream();
                await stream.CopyToAsync(copy);
                return copy.ToArray();
            }
        }

        Assert.Equal(bytes, await ReadAllAsync(await store.OpenUpdateAsync("stream-a", whole, null, default)));
        Assert.Equal(bytes[1_000_003..1_500_003], await ReadAllAsync(await store.OpenUpdateAsync("stream-a", whole with { Bytes = 500_000 }, 1_000_003, default)));
        // A range that runs past the end ends with the blob; one that starts past it is empty (the size check refuses both).
        Assert.Equal(bytes[2_999_990..], await ReadAllAsync(await store.OpenUpdateAsync("stream-a", whole with { Bytes = 100 }, 2_999_990, default)));
        Assert.Empty(await ReadAllAsync(await store.OpenUpdateAsync("stream-a", whole with { Bytes = 100 }, 3_000_000, default)));

        var missing = whole with { Uri = registry.GetOutbox("stream-a").Uri.AbsoluteUri + "/outbox/r/round-00001/none.bin" };
        Assert.Contains("does not exist", (await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.OpenUpdateAsync("stream-a", missing, null, default))).Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.OpenUpdateAsync("stream-b", whole, null, default));
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.OpenUpdateAsync("stream-a", whole, -1, default));
    }

    // A model of 2.3 M floats (9.2 MB, so its updates are streamed): every value `scale` times its index modulo 1,000.
    private static byte[] LargeModel(float scale) => Safetensors.Serialize(
        [new NamedTensor("w", TensorDType.F32, [2_300_000], System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Range(0, 2_300_000).Select(i => scale * (i % 1000)).ToArray().AsSpan()).ToArray())]);

    // Silos {name}-a, -b and -c, each with an update (scales 1, 2, 3; 10, 20, 30 examples) in its outbox for round 1 of run
    // {name}-run, whose global model (scale 0) is in container {name}-ckpt; and the request that aggregates them.
    private async Task<(SiloRegistry Registry, BlobCheckpointStore Store, BlobRef Global, AggregateRequest Request)> LargeUpdatesAsync(string name)
    {
        var ids = new[] { $"{name}-a", $"{name}-b", $"{name}-c" };
        var (registry, _) = await ProvisionAsync(ids);
        var store = new BlobCheckpointStore(azurite.Blobs);
        var global = await store.PutModelAsync($"{name}-ckpt", $"{name}-run", 0, LargeModel(0), firstWriterWins: false, default);
        var updates = new List<SiloUpdate>();
        for (var i = 0; i < ids.Length; i++)
        {
            var bytes = LargeModel(i + 1);
            var blob = registry.GetOutbox(ids[i]).GetBlobClient($"outbox/{name}-run/round-00001/update.safetensors");
            await blob.UploadAsync(new BinaryData(bytes), overwrite: true);
            updates.Add(new SiloUpdate(ids[i], 1, new BlobRef(blob.Uri.AbsoluteUri, Hashing.Sha256Hex(bytes), bytes.Length), 10 * (i + 1), 0.5, null));
        }

        return (registry, store, global, new AggregateRequest($"{name}-run", 1, $"{name}-ckpt", new StrategySpec(), global, updates));
    }

    [Fact]
    public async Task Aggregation_LargeModelOnAzurite_StreamsTheUpdates_AndATamperedOneIsRefusedAfterTheWindowIsReadWhole()
    {
        // 9.2 MB updates: read as streams from each silo's outbox with its read grant; one blob is replaced after it was reported.
        var (registry, store, global, request) = await LargeUpdatesAsync("big");
        var windows = new List<int>();
        var log = new LogRecorder();
        using var loggers = new Microsoft.Extensions.Logging.LoggerFactory([log]);
        var service = new FederatedFunctions.Workflow.Services.AggregationService(store, new SiloUpdateStore(registry), new WindowRecordingEngine(new TorchTensorEngine(), windows), new Microsoft.Extensions.Logging.Logger<FederatedFunctions.Workflow.Services.AggregationService>(loggers));
        Assert.True(global.Bytes > FederatedFunctions.Workflow.Services.AggregationService.PrefetchBytes / FederatedFunctions.Workflow.Services.AggregationService.StreamedWindow);

        float At(ReadOnlyMemory<byte> model, int i) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Safetensors.Parse(model).Tensors[0].Data.Span)[i];
        var all = await service.AggregateAsync(request, default);
        // One window of three, streamed from Azurite and added.
        Assert.Equal([-3], windows);
        // All three: (1·10 + 2·20 + 3·30) / 60 = 140/60 of each value; without big-b: (10 + 90) / 40 = 2.5.
        Assert.Empty(all.Rejected);
        Assert.Equal(140f / 60 * 999, At(await store.ReadModelAsync(all.Model, default), 999), 2e-3f);

        // The aggregation runs again (as a retried activity would), after big-b's blob was replaced.
        await registry.GetOutbox("big-b").GetBlobClient("outbox/big-run/round-00001/update.safetensors").UploadAsync(new BinaryData(LargeModel(20)), overwrite: true);
        windows.Clear();
        var tampered = await service.AggregateAsync(request, default);
        // The window streamed again and refused at the hash check, then read whole: big-b refused at its read, the two
        // others added together or one by one.
        Assert.Equal(0, windows[0]);
        Assert.Equal(2, windows.Skip(1).Sum());
        // Refused by its hash check, not by a download that failed (which would be logged as event 2003).
        Assert.DoesNotContain(log.Of<FederatedFunctions.Workflow.Services.AggregationService>(), e => e.EventId == 2003);
        var refused = Assert.Single(tampered.Rejected);
        Assert.Equal(("big-b", "sha256-mismatch"), (refused.SiloId, refused.Reason));
        Assert.Equal(2.5f * 999, At(await store.ReadModelAsync(tampered.Model, default), 999), 2e-3f);
    }

    [Fact]
    public async Task Aggregation_LargeModelOnAzurite_ADownloadCutHalfway_IsResumedByTheSdk_AndTheWindowCountsWithTheSameModel()
    {
        // A 9.2 MB update's download breaks off after 1 MiB, as a reset connection would: the SDK's download stream reads
        // the rest with a range request from where it stopped, the hash over both parts matches, and the streamed window
        // counts, with the model of an aggregation whose downloads all went through.
        var (registry, store, _, request) = await LargeUpdatesAsync("cut");
        const long Cut = 1 << 20;
        var cut = new CutFirstDownload("/outbox/cut-run/round-00001/update.safetensors", Cut);
        var reading = new CutRegistry(registry, "cut-b", cut);
        var windows = new List<int>();
        var log = new LogRecorder();
        using var loggers = new Microsoft.Extensions.Logging.LoggerFactory([log]);
        FederatedFunctions.Workflow.Services.AggregationService Service(ISiloRegistry silosToRead) =>
            new(store, new SiloUpdateStore(silosToRead), new WindowRecordingEngine(new TorchTensorEngine(), windows), new Microsoft.Extensions.Logging.Logger<FederatedFunctions.Workflow.Services.AggregationService>(loggers));

        var whole = await Service(registry).AggregateAsync(request, default);
        windows.Clear();
        var resumed = await Service(reading).AggregateAsync(request, default);

        // The first download of cut-b was cut, and the SDK asked for the rest from the byte where it broke off.
        Assert.Equal(2, cut.Ranges.Count);
        Assert.Null(cut.Ranges.First());
        Assert.StartsWith($"bytes={Cut}-", cut.Ranges.Last(), StringComparison.Ordinal);
        // One streamed window, which counted: not refused, not read again whole, no download reported broken (event 2003).
        Assert.Equal([-3], windows);
        Assert.Empty(resumed.Rejected);
        Assert.DoesNotContain(log.Of<FederatedFunctions.Workflow.Services.AggregationService>(), e => e.EventId == 2003);
        Assert.Equal(whole.Model.Sha256, resumed.Model.Sha256);
    }

    [Fact]
    public async Task LocalCompute_TrainTwice_WritesTheSameUpdateToTheSilosOwnOutbox()
    {
        var (registry, _) = await ProvisionAsync("train-a");
        var data = SyntheticData.Generate(new SyntheticOptions(1, 3, 4, 120, 40, null, 5))[0];
        var container = registry.GetContainer("train-a");
        foreach (var (name, table) in new[] { ("data/train.csv", data.Train), ("data/test.csv", data.Test) })
        {
            using var ms = new MemoryStream();
            await TabularWriter.WriteCsvAsync(ms, table, "label");
            ms.Position = 0;
            await container.GetBlobClient(name).UploadAsync(ms, overwrite: true);
        }

        var model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 };
        var store = new BlobCheckpointStore(azurite.Blobs);
        var globalRef = await store.PutModelAsync("train-ckpt", "idem", 0, Safetensors.Serialize(ModelFactory.InitialState(model, 4, 3, 1)), false, default);
        var compute = new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache()));
        var job = SiloJob.First("train-ckpt", new SiloStep(Train: new TrainRequest("idem", 1, "train-a", globalRef, model, new DataSpec { Classes = 3 }, new TrainingSpec { Seed = 9 }, 4)));

        var first = (await compute.StartAsync(job, null, default)).Result!.Update!;
        var second = (await compute.StartAsync(job, null, default)).Result!.Update!;

        Assert.Equal(first.Update, second.Update);
        Assert.Equal(120, first.Examples);
        Assert.StartsWith(registry.GetOutbox("train-a").Uri.AbsoluteUri + "/outbox/idem/round-00001/", first.Update.Uri, StringComparison.Ordinal);
        var stored = await new SiloUpdateStore(registry).ReadUpdateAsync("train-a", first.Update, default);
        Assert.Equal(first.Update.Sha256, Hashing.Sha256Hex(stored.Span));
        Assert.True((await registry.GetOutbox("train-a").GetBlobClient(BlobLayout.SiloResult("idem", 1)).ExistsAsync()).Value);

        var eval = await compute.StartAsync(SiloJob.First("train-ckpt", new SiloStep(Evaluate: new EvaluateRequest("idem", 1, "train-a", globalRef, model, new DataSpec { Classes = 3 }, 4))), null, default);
        Assert.Equal(40, eval.Result!.Evaluation!.Outcome!.Examples);
    }

    [Fact]
    public async Task OutboxReads_WithRecentBlobs_ABlobWrittenInThisProcess_AnswersAsStorageDoes_AfterTheOutboxCheck()
    {
        var (registry, _) = await ProvisionAsync("recent-a", "recent-b");
        var recent = new RecentBlobs();
        var storage = new BlobSiloStorage("recent-a", registry.GetContainer("recent-a"), registry.GetOutbox("recent-a"), (_, _) => throw new InvalidOperationException("not read"), recent);
        var bytes = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        const string path = "outbox/recent-run/round-00001/group-1.bin";
        Assert.Null(await storage.WriteIfAbsentAsync(SiloArea.Outbox, path, bytes, default));
        var reference = new BlobRef(storage.Uri(SiloArea.Outbox, path), Hashing.Sha256Hex(bytes), bytes.Length);
        IUpdateStore cached = new SiloUpdateStore(registry, recent);
        IUpdateStore stored = new SiloUpdateStore(registry);

        // Every read answers as storage does: ranges inside the blob, across its end and past it, whole, and streamed.
        foreach (var (offset, length) in new[] { (0L, 100L), (10L, 20L), (90L, 20L), (100L, 5L), (150L, 5L) })
        {
            var range = reference with { Bytes = length };
            Assert.Equal((await stored.ReadUpdateRangeAsync("recent-a", range, offset, default)).ToArray(), (await cached.ReadUpdateRangeAsync("recent-a", range, offset, default)).ToArray());
        }

        Assert.Equal(bytes, (await cached.ReadUpdateAsync("recent-a", reference, default)).ToArray());
        foreach (var (offset, length) in new (long?, long)[] { (null, 100), (60, 30), (100, 5), (150, 5) })
        {
            var slice = offset is { } at && at < bytes.Length ? reference with { Sha256 = Hashing.Sha256Hex(bytes.AsSpan((int)at, (int)length)), Bytes = length } : reference with { Bytes = length };
            await using var fromMemory = await cached.OpenUpdateAsync("recent-a", slice, offset, default);
            await using var fromStorage = await stored.OpenUpdateAsync("recent-a", slice, offset, default);
            using var a = new MemoryStream();
            using var b = new MemoryStream();
            await fromMemory.CopyToAsync(a);
            await fromStorage.CopyToAsync(b);
            Assert.Equal(b.ToArray(), a.ToArray());
        }

        // Storage loses the blob (deleted with the account's key: the silo's own grant cannot delete): the store that keeps
        // it still answers with what this process wrote.
        var account = azurite.Blobs.GetBlobContainerClient(registry.GetOutbox("recent-a").Name).GetBlobClient(path);
        await account.DeleteAsync();
        Assert.Equal(bytes, (await cached.ReadUpdateAsync("recent-a", reference, default)).ToArray());
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => stored.ReadUpdateAsync("recent-a", reference, default));
        var middle = new BlobRef(reference.Uri, Hashing.Sha256Hex(bytes.AsSpan(60, 30)), 30);
        Assert.Equal(bytes[60..90], (await cached.ReadUpdateRangeAsync("recent-a", middle, 60, default)).ToArray());
        await using (var streamed = await cached.OpenUpdateAsync("recent-a", middle, 60, default))
        {
            using var copy = new MemoryStream();
            await streamed.CopyToAsync(copy);
            Assert.Equal(bytes[60..90], copy.ToArray());
        }

        // Another writer puts other bytes there: a reference to them, whole or a slice, is read from storage; one read
        // covering several slices (no hash) is still answered with what this process wrote, and the caller's check of
        // each slice refuses what does not match.
        var other = bytes.Select(b => (byte)(b ^ 0xFF)).ToArray();
        await account.UploadAsync(new BinaryData(other));
        Assert.Equal(other, (await cached.ReadUpdateAsync("recent-a", new BlobRef(reference.Uri, Hashing.Sha256Hex(other), 100), default)).ToArray());
        Assert.Equal(other[10..30], (await cached.ReadUpdateRangeAsync("recent-a", new BlobRef(reference.Uri, Hashing.Sha256Hex(other.AsSpan(10, 20)), 20), 10, default)).ToArray());
        Assert.Equal(bytes[10..30], (await cached.ReadUpdateRangeAsync("recent-a", reference with { Sha256 = string.Empty, Bytes = 20 }, 10, default)).ToArray());

        // An overwrite in the outbox is remembered as what the blob now holds.
        await storage.WriteAsync(SiloArea.Outbox, path, other, default);
        Assert.Equal(other[10..30], (await cached.ReadUpdateRangeAsync("recent-a", reference with { Sha256 = string.Empty, Bytes = 20 }, 10, default)).ToArray());

        // The outbox check comes first: silo B cannot have A's blob read as its own, kept or not.
        var foreign = await Assert.ThrowsAsync<UpdateUnavailableException>(() => cached.ReadUpdateAsync("recent-b", reference, default));
        Assert.Contains("outside the silo's outbox", foreign.Message, StringComparison.Ordinal);

        // What a silo writes to its data area is not kept: only outboxes are read by the orchestrator's side.
        Assert.Null(await storage.WriteIfAbsentAsync(SiloArea.Data, "data/recent.bin", bytes, default));
        Assert.False(recent.TryGet(storage.Uri(SiloArea.Data, "data/recent.bin"), out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LocalCompute_MissingDataFile_FailsNamingTheSiloAndFile(bool modelMissingToo)
    {
        // The global model downloads while the data is checked: when both fail, the data's own failure is the step's.
        var silo = modelMissingToo ? "nodata-b" : "nodata-a";
        var (registry, _) = await ProvisionAsync(silo);
        var model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 };
        var store = new BlobCheckpointStore(azurite.Blobs);
        var global = await store.PutModelAsync("nodata-ckpt", "nodata-" + silo, 0, Safetensors.Serialize(ModelFactory.InitialState(model, 4, 3, 1)), false, default);
        if (modelMissingToo)
        {
            global = global with { Uri = global.Uri.Replace(BlobLayout.Model("nodata-" + silo, 0), BlobLayout.Model("nodata-" + silo, 99), StringComparison.Ordinal) };
        }

        var job = SiloJob.First("nodata-ckpt", new SiloStep(Train: new TrainRequest("nodata", 1, silo, global, model, new DataSpec { Classes = 3 }, new TrainingSpec(), 4)));

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache())).StartAsync(job, null, default));
        Assert.Contains(silo, ex.Message, StringComparison.Ordinal);
        Assert.Contains("data/train.csv", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalCompute_ImageFolderPutWithTheSilosSas_TrainsAndIsReadAgainWhenAnImageIsAdded()
    {
        var (registry, silos) = await ProvisionAsync("images-a");
        using var dir = new TempDirectory();
        void Image(string split, string label, int i) =>
            WriteFile(Path.Combine(dir.Path, split, label, $"{i:D3}.png"), TestPng.Gray(2, 2, [(byte)(label == "bright" ? 200 + i : i), 0, 0, 0]));
        foreach (var split in new[] { "train", "test" })
        {
            for (var i = 0; i < 5; i++)
            {
                Image(split, "bright", i);
                Image(split, "dark", i);
            }
        }

        // fl data put's path: checked as the silo will read it, then uploaded with the silo's own SAS.
        var container = LocalSiloProvisioner.DataContainer(silos["images-a"]);
        foreach (var split in new[] { "train", "test" })
        {
            var local = await LocalDataFiles.CheckAsync(new DirectoryInfo(Path.Combine(dir.Path, split)), $"images/{split}", default);
            Assert.Equal(("imagefolder", 10), (local.Format, local.Files.Count));
            Assert.Contains("10 images in 2 classes (bright, dark), each 1×2×2 (4 inputs)", local.Description, StringComparison.Ordinal);
            Assert.Empty(await LocalDataFiles.StaleBlobsAsync(container, local, default));
            await LocalDataFiles.UploadAsync(container, local, default);
        }

        var listed = new List<SiloBlobInfo>();
        var storage = new BlobSiloStorage("images-a", registry.GetContainer("images-a"), registry.GetOutbox("images-a"), (_, _) => throw new InvalidOperationException());
        await foreach (var blob in storage.ListAsync(SiloArea.Data, "images/test/", default))
        {
            listed.Add(blob);
        }

        Assert.Equal(10, listed.Count);
        Assert.Equal("images/test/bright/000.png", listed[0].Path);
        Assert.Equal((await storage.GetVersionAsync(SiloArea.Data, listed[0].Path, default), (long)TestPng.Gray(2, 2, [200, 0, 0, 0]).Length), (listed[0].Version, listed[0].Bytes));

        var model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 };
        var data = new DataSpec { Format = DataFormats.ImageFolder, Train = "images/train", Test = "images/test", Classes = 2 };
        var store = new BlobCheckpointStore(azurite.Blobs);
        var global = await store.PutModelAsync("images-ckpt", "img", 0, Safetensors.Serialize(ModelFactory.InitialState(model, 4, 2, 1)), false, default);
        var compute = new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache()));
        var train = await compute.StartAsync(SiloJob.First("images-ckpt", new SiloStep(Train: new TrainRequest("img", 1, "images-a", global, model, data, new TrainingSpec { Seed = 9 }, 4))), null, default);
        Assert.Equal(10, train.Result!.Update!.Examples);

        var evaluate = SiloJob.First("images-ckpt", new SiloStep(Evaluate: new EvaluateRequest("img", 1, "images-a", global, model, data, 4)));
        Assert.Equal(10, (await compute.StartAsync(evaluate, null, default)).Result!.Evaluation!.Outcome!.Examples);

        // A new image changes the folder's listing, so the silo reads the split again instead of using its cached table.
        Image("test", "dark", 5);
        var grown = await LocalDataFiles.CheckAsync(new DirectoryInfo(Path.Combine(dir.Path, "test")), "images/test", default);
        await LocalDataFiles.UploadAsync(container, grown, default);
        Assert.Equal(11, (await compute.StartAsync(evaluate, null, default)).Result!.Evaluation!.Outcome!.Examples);

        // Putting a folder that lacks a blob already under its path is refused: the silo would read that blob too.
        File.Delete(Path.Combine(dir.Path, "test", "dark", "005.png"));
        var shrunk = await LocalDataFiles.CheckAsync(new DirectoryInfo(Path.Combine(dir.Path, "test")), "images/test", default);
        Assert.Equal(["images/test/dark/005.png"], await LocalDataFiles.StaleBlobsAsync(container, shrunk, default));
    }

    [Theory]
    [InlineData(DataFormats.Npz)]
    [InlineData(DataFormats.Safetensors)]
    public async Task WriteSplits_ArrayFormat_WritesWhatTheSiloReadsBack(string format)
    {
        var id = "splits-" + format;
        var (registry, silos) = await ProvisionAsync(id);
        var data = SyntheticData.Generate(new SyntheticOptions(1, 3, 5, 40, 12, null, 2))[0] with { SiloId = id };

        await LocalSiloProvisioner.WriteSplitsAsync(silos[id], data, format);

        var storage = new BlobSiloStorage(id, registry.GetContainer(id), registry.GetOutbox(id), (_, _) => throw new InvalidOperationException());
        var spec = new DataSpec { Format = format, Train = $"data/train.{format}", Test = $"data/test.{format}", Classes = 3 };
        var test = await new SiloDataCache().ReadAsync(storage, spec, spec.Test, 5, default);
        Assert.True((data.Test with { FeatureNames = TensorDataReader.FeatureNames(5) }).ContentEquals(test));
    }

    private static void WriteFile(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void Registry_UnknownOrInvalidSilo_ThrowsNamingIt()
    {
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions()));
        Assert.Contains("'ghost'", Assert.Throws<SiloRegistryException>(() => registry.GetContainer("ghost")).Message, StringComparison.Ordinal);
        Assert.Throws<SiloRegistryException>(() => registry.GetContainer("../etc"));
    }

    private static async Task AssertForbiddenAsync(Func<Task> call) =>
        Assert.Equal(403, (await Assert.ThrowsAsync<RequestFailedException>(call)).Status);

    // The silos of `inner`, except that `silo`'s outbox is read through a client built as the registry builds it (the
    // reader's grant, the registry's options) with `faults` in its pipeline.
    private sealed class CutRegistry(SiloRegistry inner, string silo, HttpPipelinePolicy faults) : ISiloRegistry
    {
        private readonly BlobContainerClient reader = SiloRegistry.ClientFor(inner.GetOutboxReader(silo).Uri, inner.Entry(silo).OutboxReader!, "the test's reader", WithFaults(faults));

        public IReadOnlyCollection<string> SiloIds => inner.SiloIds;

        public SiloEndpoint Entry(string siloId) => inner.Entry(siloId);

        public BlobContainerClient GetContainer(string siloId) => inner.GetContainer(siloId);

        public BlobContainerClient GetOutbox(string siloId) => inner.GetOutbox(siloId);

        public BlobContainerClient GetOutboxReader(string siloId) => siloId == silo ? reader : inner.GetOutboxReader(siloId);

        private static BlobClientOptions WithFaults(HttpPipelinePolicy faults)
        {
            var options = SiloRegistry.ClientOptions();
            options.AddPolicy(faults, HttpPipelinePosition.PerRetry);
            return options;
        }
    }

    // Records the range of every GET of the blob at `path` and cuts the first response's body after `after` bytes.
    private sealed class CutFirstDownload(string path, long after) : HttpPipelinePolicy
    {
        private int cut;

        public ConcurrentQueue<string?> Ranges { get; } = new();

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
            ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
            if (message.Request.Method != RequestMethod.Get || !message.Request.Uri.Path.EndsWith(path, StringComparison.Ordinal) || message.Response.ContentStream is not { } body)
            {
                return;
            }

            Ranges.Enqueue(message.Request.Headers.TryGetValue("x-ms-range", out var range) || message.Request.Headers.TryGetValue("Range", out range) ? range : null);
            if (Interlocked.Exchange(ref cut, 1) == 0)
            {
                var whole = new MemoryStream();
                await body.CopyToAsync(whole).ConfigureAwait(false);
                message.Response.ContentStream = new CutStream(whole.ToArray(), after);
            }
        }
    }

    // A response body (read whole first) that ends in an IOException after `after` bytes, as a connection reset midway does.
    private sealed class CutStream(byte[] body, long after) : MemoryStream(body, writable: false)
    {
        // A MemoryStream's span and memory reads, in a derived type, come down to these two.
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Allowed(count));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Allowed(count), cancellationToken);

        private int Allowed(int asked) => asked > 0 && Position >= after
            ? throw new IOException($"The connection was reset (injected after {after} bytes).")
            : (int)Math.Min(asked, after - Position);
    }
}

[Collection(AzuriteCollection.Name)]
public sealed class BlobCheckpointStoreTests(AzuriteFixture azurite)
{
    private static RoundManifest Manifest(string run, int round, BlobRef model) => new()
    {
        RunId = run,
        Round = round,
        Strategy = "fedavg",
        Model = model,
        CreatedAt = DateTimeOffset.UnixEpoch,
    };

    [Fact]
    public async Task ReadModel_AfterPut_ReturnsTheBytesAndRejectsTampering()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        var bytes = new byte[] { 1, 2, 3, 4, 5 };
        var model = await store.PutModelAsync("ckpt-a", "run-a", 1, bytes, false, default);

        Assert.Equal(Hashing.Sha256Hex(bytes), model.Sha256);
        Assert.Equal(bytes, (await store.ReadModelAsync(model, default)).ToArray());
        Assert.DoesNotContain("?", model.Uri, StringComparison.Ordinal);

        await azurite.Blobs.GetBlobContainerClient("ckpt-a").GetBlobClient(BlobLayout.Model("run-a", 1)).UploadAsync(BinaryData.FromBytes([1, 2, 3, 4, 6]), overwrite: true);
        var ex = await Assert.ThrowsAsync<IntegrityException>(() => store.ReadModelAsync(model, default));
        Assert.Contains("hashes to", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadModel_WithRecentBlobs_AModelThisStoreWrote_IsReadFromMemory_AnotherReferenceFromStorage()
    {
        var recent = new RecentBlobs();
        var store = new BlobCheckpointStore(azurite.Blobs, recent);
        var plain = new BlobCheckpointStore(azurite.Blobs);
        var bytes = new byte[] { 1, 2, 3, 4, 5 };
        var model = await store.PutModelAsync("ckpt-recent", "run-r", 1, bytes, false, default);
        var blob = azurite.Blobs.GetBlobContainerClient("ckpt-recent").GetBlobClient(BlobLayout.Model("run-r", 1));

        // Storage now holds other bytes: the store answers with those the reference names, which it wrote; a store that
        // reads storage refuses what it finds.
        await blob.UploadAsync(BinaryData.FromBytes([9, 9, 9]), overwrite: true);
        Assert.Equal(bytes, (await store.ReadModelAsync(model, default)).ToArray());
        await Assert.ThrowsAsync<IntegrityException>(() => plain.ReadModelAsync(model, default));

        // A reference to the bytes stored now is not what the store wrote: it reads storage.
        var other = new BlobRef(model.Uri, Hashing.Sha256Hex([9, 9, 9]), 3);
        Assert.Equal([9, 9, 9], (await store.ReadModelAsync(other, default)).ToArray());

        // First writer wins: what was already stored is what the store keeps, and answers with once storage has lost it.
        var kept = await store.PutModelAsync("ckpt-recent", "run-r", 1, new byte[] { 7 }, true, default);
        Assert.Equal(other, kept);
        await blob.DeleteAsync();
        Assert.Equal([9, 9, 9], (await store.ReadModelAsync(kept, default)).ToArray());
        await Assert.ThrowsAsync<IntegrityException>(() => plain.ReadModelAsync(kept, default));

        // A reference outside the checkpoint account is refused before memory is looked at, even with its bytes there.
        var foreign = kept with { Uri = kept.Uri.Replace(azurite.Blobs.AccountName, "otheraccount", StringComparison.Ordinal) };
        recent.Remember(foreign.Uri, new byte[] { 9, 9, 9 });
        var refused = await Assert.ThrowsAsync<IntegrityException>(() => store.ReadModelAsync(foreign, default));
        Assert.Contains("not in the checkpoint storage account", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CommitRound_OutOfOrder_LatestPointerOnlyMovesForward()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        var m1 = await store.PutModelAsync("ckpt-b", "run-b", 1, new byte[] { 1 }, false, default);
        var m2 = await store.PutModelAsync("ckpt-b", "run-b", 2, new byte[] { 2 }, false, default);

        await store.CommitRoundAsync("ckpt-b", Manifest("run-b", 2, m2), default);
        await store.CommitRoundAsync("ckpt-b", Manifest("run-b", 1, m1), default);

        var latest = await store.GetLatestAsync("ckpt-b", "run-b", default);
        Assert.Equal(2, latest!.Round);
        Assert.Equal(m2, latest.Model);
        Assert.Equal([1, 2], (await store.ListAsync("ckpt-b", "run-b", default)).Select(m => m.Round));
        Assert.Null(await store.GetLatestAsync("ckpt-b", "no-such-run", default));
    }
}
