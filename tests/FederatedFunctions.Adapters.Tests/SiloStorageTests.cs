using Azure;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Local;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
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
    private async Task<SiloRegistry> ProvisionAsync(params string[] ids)
    {
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, ids, TimeSpan.FromHours(1));
        return new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = entries.ToDictionary() }));
    }

    [Fact]
    public async Task SiloSas_OtherSilosContainer_CannotListOrRead()
    {
        var registry = await ProvisionAsync("scope-a", "scope-b");
        var b = registry.GetContainer("scope-b");
        await b.GetBlobClient("data/train.csv").UploadAsync(BinaryData.FromString("x0,label\n1,0\n"), overwrite: true);

        // Silo A's own container works with its own SAS.
        var a = registry.GetContainer("scope-a");
        await a.GetBlobClient("data/own.csv").UploadAsync(BinaryData.FromString("ok"), overwrite: true);
        Assert.Equal("ok", (await a.GetBlobClient("data/own.csv").DownloadContentAsync()).Value.Content.ToString());

        // The same SAS aimed at silo B's container: listing and reading are both refused.
        var sasA = (await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, ["scope-a"], TimeSpan.FromHours(1)))["scope-a"].SasToken!;
        var bWithA = new BlobContainerClient(new Uri(azurite.Blobs.Uri.AbsoluteUri.TrimEnd('/') + "/scope-b"), new AzureSasCredential(sasA));
        var list = await Assert.ThrowsAsync<RequestFailedException>(async () =>
        {
            await foreach (var _ in bWithA.GetBlobsAsync())
            {
            }
        });
        Assert.Equal(403, list.Status);
        var read = await Assert.ThrowsAsync<RequestFailedException>(() => bWithA.GetBlobClient("data/train.csv").DownloadContentAsync());
        Assert.Equal(403, read.Status);
    }

    [Fact]
    public async Task ResolveInOutbox_ReferenceOutsideTheSilosOutbox_IsRefused()
    {
        var registry = await ProvisionAsync("outbox-a", "outbox-b");
        var store = new SiloUpdateStore(registry);
        var a = registry.GetContainer("outbox-a");
        var b = registry.GetContainer("outbox-b");

        var otherSilo = new BlobRef(b.Uri.AbsoluteUri + "/outbox/r/round-00001/update.safetensors", new string('0', 64), 1);
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadUpdateAsync("outbox-a", otherSilo, default));
        var dataFile = new BlobRef(a.Uri.AbsoluteUri + "/data/train.csv", new string('0', 64), 1);
        await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadUpdateAsync("outbox-a", dataFile, default));
        var missing = new BlobRef(a.Uri.AbsoluteUri + "/outbox/r/round-00001/update.safetensors", new string('0', 64), 1);
        var ex = await Assert.ThrowsAsync<UpdateUnavailableException>(() => store.ReadUpdateAsync("outbox-a", missing, default));
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalBackend_TrainTwice_WritesTheSameUpdateToTheSilosOwnOutbox()
    {
        var registry = await ProvisionAsync("train-a");
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
        var global = Safetensors.Serialize(ModelFactory.InitialState(model, 4, 3, 1));
        var globalRef = new BlobRef("unused://global", Hashing.Sha256Hex(global), global.Length);
        var backend = new LocalTorchSiloBackend(registry);
        var request = new TrainRequest("idem", 1, "train-a", globalRef, model, new DataSpec { Classes = 3 }, new TrainingSpec { Seed = 9 }, 4);

        var first = await backend.TrainAsync(request, global, default);
        var second = await backend.TrainAsync(request, global, default);

        Assert.Equal(first.Update, second.Update);
        Assert.Equal(120, first.Examples);
        Assert.StartsWith(container.Uri.AbsoluteUri + "/outbox/idem/round-00001/", first.Update.Uri, StringComparison.Ordinal);
        var stored = await new SiloUpdateStore(registry).ReadUpdateAsync("train-a", first.Update, default);
        Assert.Equal(first.Update.Sha256, Hashing.Sha256Hex(stored.Span));
        Assert.True((await container.GetBlobClient(BlobLayout.SiloResult("idem", 1)).ExistsAsync()).Value);

        var eval = await backend.EvaluateAsync(new EvaluateRequest("idem", 1, "train-a", globalRef, model, new DataSpec { Classes = 3 }, 4), global, default);
        Assert.Equal(40, eval.Outcome!.Examples);
    }

    [Fact]
    public async Task LocalBackend_MissingDataFile_FailsNamingTheSiloAndFile()
    {
        var registry = await ProvisionAsync("nodata-a");
        var model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 };
        var global = Safetensors.Serialize(ModelFactory.InitialState(model, 4, 3, 1));
        var request = new TrainRequest("nodata", 1, "nodata-a", new BlobRef("unused://g", Hashing.Sha256Hex(global), global.Length), model, new DataSpec { Classes = 3 }, new TrainingSpec(), 4);

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => new LocalTorchSiloBackend(registry).TrainAsync(request, global, default));
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
