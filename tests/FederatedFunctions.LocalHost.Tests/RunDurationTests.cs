using System.Text.Json;
using FederatedFunctions.Api;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
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
            Training = new TrainingSpec { Rounds = 100 },
            Silos = data.Select(d => d.SiloId).ToArray(),
            Evaluation = new EvaluationSpec { EveryRounds = 0 },
            Orchestration = new OrchestrationSpec { RoundsPerInstance = 100 },
        };
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });
        var store = host.Services.GetRequiredService<ICheckpointStore>();

        // Started as POST /api/runs (or an earlier fl train) starts it; this watch begins only after round 20, in the run's
        // one orchestration instance (100 rounds per instance: no ContinueAsNew has stored the run's start yet).
        var started = await host.Services.GetRequiredService<RunsApi>().StartAsync(host.Client, JsonSerializer.SerializeToUtf8Bytes(spec, RunSpecJson.Options), ManagementUrls.ApiRoutes, default);
        Assert.Equal(202, started.Status);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while ((await store.GetLatestAsync("checkpoints", spec.RunId!, cts.Token))?.Round is not >= 20)
        {
            await Task.Delay(20, cts.Token);
        }

        var report = await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId!, "inmemory", cts.Token);

        // At least from round 1's commit to the last's; the watch alone saw at most from round 20 on.
        var manifests = await store.ListAsync("checkpoints", spec.RunId!, default);
        var atLeast = (manifests[^1].CreatedAt - manifests[1].CreatedAt).TotalSeconds;
        var watched = (manifests[^1].CreatedAt - manifests[20].CreatedAt).TotalSeconds;
        Assert.Equal(100, report.Rounds);
        Assert.True(atLeast > watched + 0.3, $"rounds 1-20 took {atLeast - watched:0.00} s, too little to tell the two apart");
        Assert.True(report.Seconds >= atLeast, $"reported {report.Seconds:0.00} s; the run took at least {atLeast:0.00} s");
    }
}
