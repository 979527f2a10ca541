using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// The watch of <c>fl train</c> waits for the run's end with one call over the whole run, not one per progress tick: on
/// Azure Storage each new wait polls the instance table again from its shortest interval.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunRunnerWatchTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task RunAsync_ARunOfSeveralProgressTicks_WaitsForItsEndOnce_AndReportsIt()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "watchonce", new SyntheticOptions(2, 3, 4, 200, 40, null, 6));
        var spec = new RunSpec
        {
            RunId = "watchonce-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 60 },
            Silos = data.Select(d => d.SiloId).ToArray(),
        };
        var counted = new List<CountingClient>();
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Configuration = config,
            ConfigureServices = services => services.AddSingleton<DurableTaskClient>(sp =>
            {
                var client = new CountingClient(sp.GetRequiredService<IDurableTaskClientProvider>().GetClient());
                counted.Add(client);
                return client;
            }),
        });
        Assert.IsType<CountingClient>(host.Client);

        var output = new StringWriter();
        var report = await new RunRunner(host, output).RunAsync(spec, spec.RunId!, "inmemory", default);

        // Long enough for many ticks of the progress view, each of which used to start a wait of its own.
        var ticks = report.Seconds / RunRunner.ProgressInterval.TotalSeconds;
        Assert.True(ticks >= 4, $"the run took {report.Seconds:0.00} s, too short to tell one wait from one per tick");
        Assert.Equal(60, report.Rounds);
        Assert.Equal(1, Assert.Single(counted).CompletionWaits);
        Assert.Contains("   60", output.ToString(), StringComparison.Ordinal);
    }

    // The host's client, with its calls to WaitForInstanceCompletionAsync counted.
    private sealed class CountingClient(DurableTaskClient inner) : ForwardingClient(inner)
    {
        private int completionWaits;

        public int CompletionWaits => completionWaits;

        public override Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
        {
            Interlocked.Increment(ref completionWaits);
            return base.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs, cancellation);
        }
    }
}
