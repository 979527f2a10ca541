using System.Diagnostics;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.TestSupport;

/// <summary>What one long-polling silo job left in the durable store.</summary>
/// <param name="Polls">Reads of the job's state.</param>
/// <param name="MaxRows">The most History rows its orchestration had at any sample.</param>
/// <param name="FinalRows">History rows when the run ended.</param>
/// <param name="Seconds">Wall time of the run.</param>
public sealed record LongJobHistory(int Polls, int MaxRows, int FinalRows, double Seconds);

/// <summary>
/// Runs a one-round training on the durable Azure Storage backend whose only silo's training job stays queued for a given
/// number of reads, and samples the History table rows of that job's orchestration meanwhile: the evidence that a job that
/// waits for days keeps a bounded history.
/// </summary>
public static class LongJobProbe
{
    public static async Task<LongJobHistory> RunAsync(string storageConnectionString, int polls, CancellationToken cancellationToken = default)
    {
        var data = SyntheticData.Generate(new SyntheticOptions(1, 3, 4, 40, 20, null, 3));
        var blobs = new InMemoryBlobs();
        var store = new InMemoryCheckpointStore(blobs);
        var silos = new InMemorySiloBackend(blobs, data.ToDictionary(d => d.SiloId));
        var compute = new ScriptedRemoteCompute(silos, blobs);
        silos.Remote = compute;
        silos.RemoteSilos.Add(data[0].SiloId);
        compute.Scripts[(data[0].SiloId, SiloStepKinds.Train, 1)] = new JobScript(QueuedPolls: polls, RunningPolls: 0);
        var hub = "flpolls" + Guid.NewGuid().ToString("N")[..6];
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = storageConnectionString,
            TaskHub = hub,
            Configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:ConnectionString"] = storageConnectionString }).Build(),
            MaxQueuePollingInterval = TimeSpan.FromMilliseconds(100),
            ConfigureServices = services => services.AddInMemorySilos(silos, store),
        }, cancellationToken).ConfigureAwait(false);

        var spec = new RunSpec
        {
            RunId = "long-job",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 1 },
            Silos = [data[0].SiloId],
            Evaluation = new EvaluationSpec { EveryRounds = 0 },
        };
        var probe = new HistoryProbe(storageConnectionString, hub);
        var job = SiloJobOrchestrator.InstanceId(new SiloStep(Train: new TrainRequest(spec.RunId, 1, data[0].SiloId, new Core.Runs.BlobRef("x", "x", 0), spec.Model, spec.Data, spec.Training, 4)));
        var watch = Stopwatch.StartNew();
        await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(TrainingOrchestrator), TrainingState.Start(spec.RunId, spec), new StartOrchestrationOptions(spec.RunId), cancellationToken).ConfigureAwait(false);
        var max = 0;
        while (true)
        {
            max = Math.Max(max, (await probe.MeasureAsync(job, cancellationToken).ConfigureAwait(false)).Rows);
            var meta = await host.Client.GetInstanceAsync(spec.RunId, cancellationToken).ConfigureAwait(false);
            if (meta is { RuntimeStatus: OrchestrationRuntimeStatus.Completed or OrchestrationRuntimeStatus.Failed or OrchestrationRuntimeStatus.Terminated })
            {
                if (meta.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
                {
                    throw new InvalidOperationException($"The run ended {meta.RuntimeStatus}.");
                }

                break;
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }

        var final = (await probe.MeasureAsync(job, cancellationToken).ConfigureAwait(false)).Rows;
        return new LongJobHistory(compute.Reads.Count(r => r.Contains("-train-", StringComparison.Ordinal)), Math.Max(max, final), final, watch.Elapsed.TotalSeconds);
    }
}
