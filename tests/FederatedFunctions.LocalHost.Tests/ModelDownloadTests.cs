using FederatedFunctions.Api;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary><c>fl model get</c>'s core against real blob storage: the round's model as its manifest records it, or nothing.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ModelDownloadTests(AzuriteFixture azurite)
{
    private const string Container = "download-checkpoints";

    [Fact]
    public async Task GetAsync_CommittedRounds_TheLatestByDefaultAndAnyByNumber_HashedAsTheManifestSays()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        var (first, second) = (await CommitAsync(store, "dl-run", 1, 1f), await CommitAsync(store, "dl-run", 2, 2f));

        var latest = await ModelDownload.GetAsync(store, Container, "dl-run", null, default);
        var earlier = await ModelDownload.GetAsync(store, Container, "dl-run", 1, default);

        Assert.Equal((2, second.Sha256), (latest.Round, Hashing.Sha256Hex(latest.Bytes)));
        Assert.Equal((1, first.Sha256), (earlier.Round, Hashing.Sha256Hex(earlier.Bytes)));
        Assert.Equal(1, latest.Tensors);
        Assert.Equal(2f, BitConverter.ToSingle(Safetensors.Parse(latest.Bytes).Tensors[0].Data.Span));
    }

    [Fact]
    public async Task GetAsync_ATamperedOrMissingModelBlob_IsRefused()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        var model = await CommitAsync(store, "dl-tampered", 1, 1f);
        var blob = azurite.Blobs.GetBlobContainerClient(Container).GetBlobClient(BlobLayout.Model("dl-tampered", 1));
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[^1] ^= 0x01;
        await blob.UploadAsync(new BinaryData(bytes), overwrite: true);

        var tampered = await Assert.ThrowsAsync<IntegrityException>(() => ModelDownload.GetAsync(store, Container, "dl-tampered", 1, default));
        Assert.Contains(model.Sha256, tampered.Message, StringComparison.Ordinal);

        await blob.DeleteAsync();
        await Assert.ThrowsAsync<IntegrityException>(() => ModelDownload.GetAsync(store, Container, "dl-tampered", 1, default));
    }

    [Fact]
    public async Task GetAsync_NoSuchRunOrRound_SaysWhich()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        await CommitAsync(store, "dl-rounds", 1, 1f);

        var run = await Assert.ThrowsAsync<ModelNotFoundException>(() => ModelDownload.GetAsync(store, Container, "dl-nothing", null, default));
        var round = await Assert.ThrowsAsync<ModelNotFoundException>(() => ModelDownload.GetAsync(store, Container, "dl-rounds", 7, default));

        Assert.Contains("'dl-nothing' has no committed round", run.Message, StringComparison.Ordinal);
        Assert.Contains("no committed round 7", round.Message, StringComparison.Ordinal);
    }

    private static async Task<BlobRef> CommitAsync(BlobCheckpointStore store, string runId, int round, float value)
    {
        var model = await store.PutModelAsync(Container, runId, round, Safetensors.Serialize([new NamedTensor("w", TensorDType.F32, [1], BitConverter.GetBytes(value))]), firstWriterWins: false, default);
        await store.CommitRoundAsync(Container, new RoundManifest { RunId = runId, Round = round, Strategy = "fedavg", Model = model, CreatedAt = DateTimeOffset.UnixEpoch }, default);
        return model;
    }
}
