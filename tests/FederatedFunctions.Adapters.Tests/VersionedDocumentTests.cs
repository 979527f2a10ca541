using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.Adapters.Tests;

/// <summary>Optimistic concurrency of the blob checkpoint store's documents on a real Azurite: if-none-match and if-match.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class VersionedDocumentTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task TryPutDocumentAsync_StaleOrMissingVersion_IsRefusedAndTheCurrentOneWins()
    {
        var store = new BlobCheckpointStore(azurite.Blobs);
        const string container = "versioned";
        var path = $"_budgets/{Guid.NewGuid():N}/ledger.json";

        Assert.Null(await store.GetVersionedDocumentAsync(container, path, default));
        Assert.NotNull(await store.TryPutDocumentAsync(container, path, "{\"n\":1}"u8.ToArray(), null, default));
        Assert.Null(await store.TryPutDocumentAsync(container, path, "{\"n\":9}"u8.ToArray(), null, default));

        var first = (await store.GetVersionedDocumentAsync(container, path, default))!;
        var written = await store.TryPutDocumentAsync(container, path, "{\"n\":2}"u8.ToArray(), first.Version, default);
        Assert.NotNull(written);
        Assert.Null(await store.TryPutDocumentAsync(container, path, "{\"n\":3}"u8.ToArray(), first.Version, default));

        var current = (await store.GetVersionedDocumentAsync(container, path, default))!;
        Assert.Equal("{\"n\":2}"u8.ToArray(), current.Content);
        Assert.NotEqual(first.Version, current.Version);
        Assert.Equal(written!.Sha256, Core.Hashing.Sha256Hex(current.Content));
    }
}
