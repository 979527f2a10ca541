using System.Diagnostics;
using System.Text.Json;
using FederatedFunctions.Api;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>A command that attaches to a run started by an earlier one reports how long the run took, not how long it watched.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunDurationTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task RunAsync_AttachingToARunStartedEarlier_BeforeItsFirstContinueAsNew_ReportsTheRunsOwnDuration()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "duration", new SyntheticOptions(2, 3, 4, 200, 40, null, 5));
        var spec = new RunSpec
        {
            RunId = "duration-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 15 },
            Silos = data.Select(d => d.SiloId).ToArray(),
            Orchestration = new OrchestrationSpec { RoundsPerInstance = 20 },
        };
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });

        // Started as POST /api/runs (or an earlier fl train) starts it; this watch comes later.
        var started = await host.Services.GetRequiredService<RunsApi>().StartAsync(host.Client, JsonSerializer.SerializeToUtf8Bytes(spec, RunSpecJson.Options), ManagementUrls.ApiRoutes, default);
        Assert.Equal(202, started.Status);
        await Task.Delay(TimeSpan.FromSeconds(1));
        var watching = Stopwatch.StartNew();
        var output = new StringWriter();
        var report = await new RunRunner(host, output).RunAsync(spec, spec.RunId!, "inmemory", default);

        Assert.Contains("attaching", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(15, report.Rounds);
        Assert.True(report.Seconds >= watching.Elapsed.TotalSeconds + 0.9, $"reported {report.Seconds:0.00} s; watched {watching.Elapsed.TotalSeconds:0.00} s of a run started 1 s before");
    }
}
