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

    [Fact]
    public async Task WaitForInstanceCompletion_OnAzureStorage_ReturnsWithinASecondOfTheEnd_NotInTheBackendsTwoSecondSteps()
    {
        // DurableTask.AzureStorage reads a waited-for instance's status every 2 s, so waiting for an orchestration that ends
        // at once used to take at least 2 s; SidecarStorageFix polls from 20 ms. Best of three, against load on the machine.
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "flwait" + Guid.NewGuid().ToString("N")[..6],
            Configuration = new ConfigurationBuilder().Build(),
            ConfigureTasks = r => r.AddOrchestratorFunc<int, int>("Echo", (_, x) => x + 1),
        });
        var best = TimeSpan.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Echo", i);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            var done = await host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
            best = watch.Elapsed < best ? watch.Elapsed : best;
            Assert.Equal(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            Assert.Equal(i + 1, done.ReadOutputAs<int>());
            Assert.Equal(i, done.ReadInputAs<int>());
        }

        Assert.True(best < TimeSpan.FromSeconds(1.8), $"the fastest wait took {best.TotalMilliseconds:0} ms");
    }
}
