using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// <c>fl resume</c> on a run that is already over: its host's worker starts before the command looks at the run, so a run
/// that was still going when the command was typed can complete first. It is reported, not refused, while its history is
/// there to report from.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunRunnerResumeTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task ResumeAsync_ARunThatHasCompleted_IsReportedLikeTrainReportsIt_AndRefusedOnceItsHistoryIsPurged()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "resumedone", new SyntheticOptions(2, 3, 4, 60, 20, null, 9));
        var spec = new RunSpec
        {
            RunId = "resumedone-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 2 },
            Silos = data.Select(d => d.SiloId).ToArray(),
        };
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
}
