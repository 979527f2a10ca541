using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.Adapters.Tests.Checkpoints;

/// <summary>The latest pointer on Azurite: it only moves forward, even when an older round's commit races a newer one.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobCheckpointStoreTests(AzuriteFixture azurite)
{
    private const string Container = "pointer-race";

    [Theory]
    [InlineData(true, 5)]
    [InlineData(false, 5)]
    [InlineData(true, 6)]
    [InlineData(false, 6)]
    public async Task CommitRoundAsync_TwoCommitsRacingOnThePointer_LeaveItAtTheNewerRound(bool pointerExisted, int held)
    {
        var runId = $"race-{held}-" + (pointerExisted ? "kept" : "first");
        var fast = new BlobCheckpointStore(azurite.Blobs);
        if (pointerExisted)
        {
            await fast.CommitRoundAsync(Container, Manifest(runId, 4), default);
        }

        // One commit reads the pointer (round 4, or none), then stalls before writing it: round 5's (a late execution of
        // an older commit, which must then leave round 6's pointer), or round 6's (which must then write over round 5's).
        var gate = new PointerWriteGate();
        var options = new BlobClientOptions();
        options.AddPolicy(gate, HttpPipelinePosition.PerCall);
        var slow = new BlobCheckpointStore(new BlobServiceClient(azurite.ConnectionString, options)).CommitRoundAsync(Container, Manifest(runId, held), default);
        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Meanwhile the other commits, and then the stalled write goes out.
        await fast.CommitRoundAsync(Container, Manifest(runId, held == 5 ? 6 : 5), default);
        gate.Release.SetResult();
        await slow.WaitAsync(TimeSpan.FromSeconds(30));

        var latest = await fast.GetLatestAsync(Container, runId, default);
        Assert.Equal(6, latest?.Round);
        Assert.Equal(Manifest(runId, 6).Model, latest?.Model);

        // Round 5's commit tried once and stepped back; round 6's tried, read round 5's pointer, and wrote over it.
        Assert.Equal(held == 5 ? 1 : 2, gate.PointerWrites);
    }

    [Fact]
    public async Task CommitRoundAsync_TheSameRoundAgainOrAnOlderOne_KeepsThePointerAtTheNewestRound()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        await store.CommitRoundAsync(Container, Manifest("again", 1), default);
        await store.CommitRoundAsync(Container, Manifest("again", 2), default);
        await store.CommitRoundAsync(Container, Manifest("again", 2), default);
        await store.CommitRoundAsync(Container, Manifest("again", 1), default);

        var latest = await store.GetLatestAsync(Container, "again", default);
        Assert.Equal(2, latest?.Round);
        Assert.Equal((await store.GetManifestAsync(Container, "again", 2, default))?.Model, latest?.Model);
    }

    private static RoundManifest Manifest(string runId, int round) => new()
    {
        RunId = runId,
        Round = round,
        Strategy = "fedavg",
        Model = new BlobRef($"http://127.0.0.1/{Container}/{runId}/round-{round}/model.safetensors", new string((char)('a' + round), 64), round),
        CreatedAt = DateTimeOffset.UnixEpoch.AddHours(round),
    };

    // Holds the first write of a latest pointer until released; counts the pointer writes that went out.
    private sealed class PointerWriteGate : HttpPipelinePolicy
    {
        private int writes;

        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int PointerWrites => writes;

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
            ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            if (message.Request.Method == RequestMethod.Put && message.Request.Uri.Path.EndsWith("/latest.json", StringComparison.Ordinal)
                && Interlocked.Increment(ref writes) == 1)
            {
                Reached.SetResult();
                await Release.Task.ConfigureAwait(false);
            }

            await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
        }
    }
}
