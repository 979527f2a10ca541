using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// How <c>fl train</c> and <c>fl resume</c> watch a run: one wait for its end over the whole run, and a run that is already
/// over reported, not refused, while its history is there to report from.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunRunnerTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task ResumeAsync_ARunThatHasCompleted_IsReportedLikeTrainReportsIt_AndRefusedOnceItsHistoryIsPurged()
    {
        // This host's worker starts before the command looks at the run, so a run that was still going when the command
        // was typed can complete first.
        var (config, spec) = await RunAsync("resumedone", new SyntheticOptions(2, 3, 4, 60, 20, null, 9), rounds: 2);
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });
        var trained = await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId!, "inmemory", default);

        var output = new StringWriter();
        var resumed = await new RunRunner(host, output).ResumeAsync(spec.RunId!, null, "inmemory", default);
        Assert.Contains("Run resumedone-run has already completed.", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(trained with { Seconds = 0 }, resumed with { Seconds = 0 });

        await host.Client.PurgeInstanceAsync(spec.RunId!);
        var refused = await Assert.ThrowsAsync<RunFailedException>(() => new RunRunner(host, TextWriter.Null).ResumeAsync(spec.RunId!, null, "inmemory", default));
        Assert.Contains("committed its last round (2); there is nothing to resume", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_ARunOfSeveralProgressTicks_WaitsForItsEndOnce_AndReportsIt()
    {
        // On Azure Storage each new wait polls the instance table again from its shortest interval.
        var (config, spec) = await RunAsync("watchonce", new SyntheticOptions(2, 3, 4, 200, 40, null, 6), rounds: 60);
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

    // Silos of synthetic data, and a run of them named after the prefix.
    private async Task<(Microsoft.Extensions.Configuration.IConfiguration Config, RunSpec Spec)> RunAsync(string prefix, SyntheticOptions data, int rounds)
    {
        var (config, silos) = await LocalSilos.CreateAsync(azurite, prefix, data);
        return (config, new RunSpec
        {
            RunId = prefix + "-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = rounds },
            Silos = silos.Select(d => d.SiloId).ToArray(),
        });
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
