using Azure;
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
    public async Task LocalCompute_MissingDataFile_FailsNamingTheSiloAndFile()
    {
        var (registry, _) = await ProvisionAsync("nodata-a");
        var model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 };
        var store = new BlobCheckpointStore(azurite.Blobs);
        var global = await store.PutModelAsync("nodata-ckpt", "nodata", 0, Safetensors.Serialize(ModelFactory.InitialState(model, 4, 3, 1)), false, default);
        var job = SiloJob.First("nodata-ckpt", new SiloStep(Train: new TrainRequest("nodata", 1, "nodata-a", global, model, new DataSpec { Classes = 3 }, new TrainingSpec(), 4)));

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache())).StartAsync(job, null, default));
        Assert.Contains("nodata-a", ex.Message, StringComparison.Ordinal);
        Assert.Contains("data/train.csv", ex.Message, StringComparison.Ordinal);
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
