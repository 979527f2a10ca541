using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Configuration;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>The local durable host's own life cycle on the Azure Storage backend.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class LocalDurableHostTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Dispose_RightAfterStarting_StopsCleanlyEveryTime()
    {
        // Stopping the storage service before its start has finished used to throw inside the sidecar's stopping
        // handler, which has no caller to catch it: the whole process died (Ctrl-C right after `fl train` started).
        var options = new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "flquick" + Guid.NewGuid().ToString("N")[..6],
            Configuration = new ConfigurationBuilder().Build(),
        };
        for (var i = 0; i < 8; i++)
        {
            await using var host = await LocalDurableHost.StartAsync(options);
        }

        // A host started after all that still works.
        await using var last = await LocalDurableHost.StartAsync(options);
        Assert.Null(await last.Client.GetInstanceAsync("none"));
    }
}
