using System.Text;
using FederatedFunctions.Api;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// <see cref="RecurringMatrix"/> on the local host: each tick is what <c>fl recurring tick</c> runs, the
/// <see cref="RecurringTrainingService"/> of a local durable host composed from the cell's configuration, on the Azure Storage
/// backend over Azurite. A Pending previous run is one on a second task hub that no worker polls.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RecurringMatrixTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private static readonly string[] Silos = ["rx-silo-1", "rx-silo-2"];
    private static readonly MatrixSpec Spec = MatrixSpecs.For(Silos, classes: 3);

    [Fact]
    public async Task RecurringTickAfterEveryPreviousRunStateInEverySetup_DoesAsDocumented_NeverThrows()
    {
        var options = await MatrixHub.OptionsAsync(azurite, Silos, "flrecurring");
        await using var worker = await LocalDurableHost.StartAsync(options);
        var idleHub = options with { RunWorker = false, TaskHub = options.TaskHub + "idle" };
        await using var idle = await LocalDurableHost.StartAsync(idleHub);
        var api = worker.Services.GetRequiredService<RunsApi>();
        RunStateMaker Maker(string prefix, StatusOverridingClient on) => new(
            prefix,
            on,
            Spec,
            async spec => Accepted(await api.StartAsync(on, Encoding.UTF8.GetBytes(spec), ManagementUrls.ApiRoutes, default)),
            async id => Accepted(await api.CancelAsync(on, id, default)),
            async id => ((RunDetails)(await api.GetAsync(on, id, default)).Body!).Rounds.Count);

        var matrix = new RecurringMatrixRunner(
            "lrec",
            new StatusOverridingClient(worker.Client),
            new StatusOverridingClient(idle.Client),
            Maker,
            worker.Services.GetRequiredService<ICheckpointStore>(),
            azurite.Blobs,
            Spec("template", 10_000, "eyes-on", null, null),
            async cell =>
            {
                // As fl recurring tick: a host on the task hub, its configuration with the cell's Recurring settings.
                using var loggers = LoggerFactory.Create(b => b.AddProvider(cell.Logs).SetMinimumLevel(LogLevel.Trace));
                await using var host = await LocalDurableHost.StartAsync((cell.Pending ? idleHub : options) with
                {
                    RunWorker = false,
                    Configuration = new ConfigurationBuilder().AddConfiguration(options.Configuration).AddInMemoryCollection(cell.Settings).Build(),
                    LoggerFactory = loggers,
                });
                await host.Services.GetRequiredService<RecurringTrainingService>().TickAsync(cell.Seen(host.Client), ManagementUrls.ApiRoutes, default);
            });
        var failures = await matrix.RunAsync(RecurringMatrix.Rows, RecurringMatrix.Columns);

        log.WriteLine($"{RecurringMatrix.Rows.Count} previous-run states × {RecurringMatrix.Columns.Count} setups = {matrix.Actual.Count} cells answered");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
        Assert.Equal(RecurringMatrix.Rows.Count * RecurringMatrix.Columns.Count, matrix.Actual.Count);
    }

    private static void Accepted(ApiResponse response) =>
        Assert.True(response.Status == 202, $"{response.Status}: {(response.Body as ProblemDocument)?.Detail}");
}
