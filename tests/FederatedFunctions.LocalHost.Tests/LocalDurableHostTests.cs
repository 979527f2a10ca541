using System.Text;
using FederatedFunctions.Adapters;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>The local durable host's own life cycle on the Azure Storage backend, and its composition.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class LocalDurableHostTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Run_OnTheComposedHost_TheCheckpointStoreTheLocalComputeAndTheOutboxReader_ShareOneRecentBlobs()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "recent", new SyntheticOptions(2, 3, 4, 60, 20, null, 5));
        var spec = new RunSpec
        {
            RunId = "recent-blobs-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 2 },
            Silos = [.. data.Select(d => d.SiloId)],
        };
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });
        Assert.Equal(2, (await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId, "inmemory", default)).Rounds);
        var recent = host.Services.GetRequiredService<RecentBlobs>();

        // The aggregation's model went through the checkpoint store into it; a silo's update, through the local compute.
        var manifest = (await host.Services.GetRequiredService<ICheckpointStore>().GetManifestAsync("checkpoints", spec.RunId, 2, default))!;
        Assert.True(recent.TryGet(manifest.Model, out _));
        var participant = manifest.Participants[0];
        var blob = host.Services.GetRequiredService<ISiloRegistry>().GetOutbox(participant.SiloId).GetBlobClient(BlobLayout.SiloUpdate(spec.RunId, 2));
        Assert.True(recent.TryGet(BlobCheckpointStore.PlainUri(blob), out var update));
        Assert.Equal(participant.UpdateSha256, Hashing.Sha256Hex(update.Span));

        // The outbox reader answers from the same instance: with the blob gone from storage, it still reads it.
        await azurite.Blobs.GetBlobContainerClient(blob.BlobContainerName).GetBlobClient(blob.Name).DeleteAsync();
        var read = await host.Services.GetRequiredService<IUpdateStore>().ReadUpdateAsync(participant.SiloId, new BlobRef(BlobCheckpointStore.PlainUri(blob), participant.UpdateSha256, update.Length), default);
        Assert.Equal(update.ToArray(), read.ToArray());

        // The model download reports on storage itself: the model changed there is refused, though this host wrote it.
        var store = host.Services.GetRequiredService<ICheckpointStore>();
        await azurite.Blobs.GetBlobContainerClient("checkpoints").GetBlobClient(BlobLayout.Model(spec.RunId, 2)).UploadAsync(new BinaryData(new byte[manifest.Model.Bytes]), overwrite: true);
        Assert.Equal(manifest.Model.Sha256, Hashing.Sha256Hex((await store.ReadModelAsync(manifest.Model, default)).Span));
        await Assert.ThrowsAsync<IntegrityException>(() => Api.ModelDownload.GetAsync(store, "checkpoints", spec.RunId, 2, default));
    }

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

    [Fact]
    public async Task Activity_RunningLongerThanTheVisibilityTimeout_RunsOnceAndTheBackendNeverRedeliversIt()
    {
        // The sidecar never renews an activity's lock; SidecarStorageFix does. Without it, a step held longer than the queue's
        // visibility timeout reappeared in the queue while it ran: the backend refused the second dequeue ("processed
        // multiple times concurrently"), the first one's delete failed (PopReceiptMismatch, logged with its stack trace) and
        // the step ran again. Here a 5 s timeout and a step of 11 s: two renewals are needed, and none may be missed. (With
        // 3 s, renewed every second, a suite run on two busy cores once saw a renewal more than 2 s late.)
        var log = new StringBuilder();
        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddProvider(new WriterLoggerProvider(log)));
        var runs = 0;
        await using (var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = "fllock" + Guid.NewGuid().ToString("N")[..6],
            Configuration = new ConfigurationBuilder().Build(),
            WorkItemVisibilityTimeout = TimeSpan.FromSeconds(5),
            LoggerFactory = loggers,
            ConfigureTasks = r => r
                .AddActivityFunc<int, int>("LongStep", async (_, x) =>
                {
                    Interlocked.Increment(ref runs);
                    await Task.Delay(TimeSpan.FromSeconds(11));
                    return x + 1;
                })
                .AddOrchestratorFunc<int, int>("CallsLongStep", (ctx, x) => ctx.CallActivityAsync<int>("LongStep", x)),
        }))
        {
            var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("CallsLongStep", 41);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var done = await host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            Assert.Equal(42, done.ReadOutputAs<int>());
        }

        // Without the renewal, the backend refuses the step's reappearing message at about 5 s and 10 s, while it still runs.
        string captured;
        lock (log)
        {
            captured = log.ToString();
        }

        Assert.Equal(1, Volatile.Read(ref runs));
        Assert.DoesNotContain("processed multiple times concurrently", captured, StringComparison.Ordinal);
        Assert.DoesNotContain("PopReceiptMismatch", captured, StringComparison.Ordinal);
    }
}
