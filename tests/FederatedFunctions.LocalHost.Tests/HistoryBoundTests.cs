using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>ContinueAsNew keeps the stored history of a run bounded by one generation, whatever its length.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class HistoryBoundTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    [Fact]
    public async Task Train_TwelveRoundsThreePerInstance_StoredHistoryNeverExceedsOneGeneration()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "history", new SyntheticOptions(2, 3, 4, 40, 20, null, 3));
        var hub = "flhistory" + Guid.NewGuid().ToString("N")[..6];
        var options = new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = hub,
            Configuration = config,
            MaxQueuePollingInterval = TimeSpan.FromMilliseconds(100),
        };
        var spec = new RunSpec
        {
            RunId = "history-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 12 },
            Silos = data.Select(d => d.SiloId).ToArray(),
            Evaluation = new EvaluationSpec { EveryRounds = 0 },
            Orchestration = new OrchestrationSpec { RoundsPerInstance = 3 },
        };

        await using var host = await LocalDurableHost.StartAsync(options);
        var probe = new HistoryProbe(azurite.ConnectionString, hub);
        var run = new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId, "azurestorage", default);
        var samples = new List<HistorySize>();
        while (!run.IsCompleted)
        {
            samples.Add(await probe.MeasureAsync(spec.RunId));
            await Task.Delay(100);
        }

        Assert.Equal(12, (await run).Rounds);
        samples.Add(await probe.MeasureAsync(spec.RunId));
        foreach (var s in samples.DistinctBy(s => (s.Rows, s.Executions)))
        {
            log.WriteLine($"rows {s.Rows}, executions {s.Executions}, largest {s.LargestExecutionRows}, ~{s.Bytes / 1024} KiB");
        }

        // A round stores about 15 rows (two train and one aggregate and one commit activity, scheduled and completed,
        // plus status), so one instance holding all 12 rounds would reach about 180. With three rounds per instance,
        // storage never holds more than about one generation: the next one overwrites it row by row, so mid-way the
        // table holds rows of several executions, but never more rows than one generation has.
        var largest = samples.Max(s => s.Rows);
        Assert.InRange(largest, 30, 80);
        Assert.True(samples.Max(s => s.Executions) >= 2, "the run must have continued as new while it was sampled");
    }
}
