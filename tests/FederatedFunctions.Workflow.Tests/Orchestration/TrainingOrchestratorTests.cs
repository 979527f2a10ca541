using System.Collections.Concurrent;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

public sealed class TrainingOrchestratorTests
{
    internal static readonly IReadOnlyList<SiloDataset> Data =
        SyntheticData.Generate(new SyntheticOptions(Silos: 4, Classes: 4, Features: 8, TrainPerSilo: 240, TestPerSilo: 80, DirichletAlpha: 0.5, Seed: 3));

    internal sealed class Harness : IAsyncDisposable
    {
        public InMemoryBlobs Blobs { get; } = new();
        public InMemoryCheckpointStore Store { get; }
        public InMemorySiloBackend Backend { get; }
        public RecordingDataConverter Converter { get; } = new();
        public DurableTestHost Host { get; private set; } = null!;

        /// <summary>More services for the host, registered after the workflow's (e.g. budgets, seeded noise).</summary>
        public Action<IServiceCollection>? Services { get; init; }

        public Harness(IReadOnlyList<SiloDataset>? data = null)
        {
            Store = new InMemoryCheckpointStore(Blobs);
            Backend = new InMemorySiloBackend(Blobs, (data ?? Data).ToDictionary(d => d.SiloId));
        }

        public async Task<Harness> StartAsync()
        {
            Host = await DurableTestHost.StartAsync(r => r.AddFederatedTasks(), new DurableTestHostOptions
            {
                ConfigureServices = services =>
                {
                    services.AddLogging();
                    services.AddFederatedWorkflow();
                    services.AddInMemorySilos(Backend, Store);
                    services.Configure<DurableTaskWorkerOptions>(o => o.DataConverter = Converter);
                    services.Configure<DurableTaskClientOptions>(o => o.DataConverter = Converter);
                    Services?.Invoke(services);
                },
            });
            return this;
        }

        public async Task<OrchestrationMetadata> RunAsync(RunSpec spec)
        {
            var id = await Host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(TrainingOrchestrator), TrainingState.Start(spec.RunId!, spec), new StartOrchestrationOptions(spec.RunId));
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            return await Host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
        }

        public async ValueTask DisposeAsync() => await Host.DisposeAsync();
    }

    internal static RunSpec Spec(string runId, int rounds, int roundsPerInstance = 10, int everyRounds = 1) => new()
    {
        RunId = runId,
        Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 8, Hidden = [16] },
        Data = new DataSpec { Classes = 4 },
        Training = new TrainingSpec { Rounds = rounds, BatchSize = 32, LearningRate = 0.1, Seed = 11 },
        Silos = Data.Select(d => d.SiloId).ToArray(),
        Evaluation = new EvaluationSpec { EveryRounds = everyRounds },
        Orchestration = new OrchestrationSpec { RoundsPerInstance = roundsPerInstance },
    };

    [Fact]
    public async Task RunAsync_FourSilosThreeRounds_FansOutOncePerSiloPerRound()
    {
        await using var h = await new Harness().StartAsync();
        var meta = await h.RunAsync(Spec("fanout", rounds: 3));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var expected = Data.SelectMany(d => Enumerable.Range(1, 3).Select(r => (d.SiloId, r))).OrderBy(x => x).ToArray();
        Assert.Equal(expected, h.Backend.TrainCalls.OrderBy(x => x).ToArray());
        Assert.Equal(expected, h.Backend.EvaluateCalls.OrderBy(x => x).ToArray());

        var manifests = await h.Store.ListAsync("checkpoints", "fanout", default);
        Assert.Equal([0, 1, 2, 3], manifests.Select(m => m.Round));
        Assert.All(manifests.Skip(1), m => Assert.Equal(4, m.Participants.Count));
        Assert.All(manifests.Skip(1), m => Assert.Equal(1.0, m.Participants.Sum(p => p.Weight!.Value), 9));

        var outcome = meta.ReadOutputAs<TrainingOutcome>()!;
        Assert.Equal(3, outcome.Rounds);
        Assert.Equal(manifests[^1].Model, outcome.FinalModel);
        Assert.NotNull(outcome.FinalAccuracy);
        Assert.Equal(manifests[^1].Metrics.EvalAccuracy, outcome.FinalAccuracy);
    }

    [Fact]
    public async Task RunAsync_ARoundsCommitHeldUntilTheNextRoundTrains_RunCompletesWithEveryRoundCommittedInOrder()
    {
        await using var h = await new Harness().StartAsync();
        // The commits of rounds 1 and 3 each wait (at most 10 s) for a silo of the round after them to be asked to train:
        // a run that wrote each commit before the next round's silo steps would wait out both. Round 2 ends the first
        // instance (two rounds each), whose state carries the commit's audit head and manifest, so it is not held.
        var overlapped = new ConcurrentBag<int>();
        h.Store.BeforeCommit = async manifest =>
        {
            if (manifest.RunId != "pipelined" || manifest.Round is not (1 or 3))
            {
                return;
            }

            for (var waited = 0; waited < 500; waited++)
            {
                if (h.Backend.TrainCalls.Any(c => c.Round == manifest.Round + 1))
                {
                    overlapped.Add(manifest.Round);
                    return;
                }

                await Task.Delay(20);
            }
        };

        var meta = await h.RunAsync(Spec("pipelined", rounds: 4, roundsPerInstance: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.Equal([1, 3], overlapped.Order());
        var manifests = await h.Store.ListAsync("checkpoints", "pipelined", default);
        Assert.Equal([0, 1, 2, 3, 4], manifests.Select(m => m.Round));
        // Each round trained from the model the round before it committed, and the audit chain runs through every round.
        Assert.All(manifests.Skip(1).Zip(manifests), p => Assert.Equal(p.Second.Model.Sha256, p.First.ParentModelSha256));
        Assert.True(Core.Audit.AuditChain.Verify(Core.Audit.AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "pipelined", 4, default))).IsValid);
        Assert.Equal(manifests[^1].Model, meta.ReadOutputAs<TrainingOutcome>()!.FinalModel);
    }

    [Fact]
    public async Task RunAsync_EvaluateEveryTwoRounds_EvaluatesEvenRoundsAndTheLast()
    {
        await using var h = await new Harness().StartAsync();
        await h.RunAsync(Spec("every2", rounds: 5, everyRounds: 2));

        Assert.Equal([2, 4, 5], h.Backend.EvaluateCalls.Select(c => c.Round).Distinct().Order());
        var manifests = await h.Store.ListAsync("checkpoints", "every2", default);
        Assert.Null(manifests.Single(m => m.Round == 3).Metrics.EvalAccuracy);
        Assert.NotNull(manifests.Single(m => m.Round == 4).Metrics.EvalAccuracy);
    }

    [Fact]
    public async Task RunAsync_AnyRun_EveryHistoryPayloadIsAFewKilobytesAtMost()
    {
        await using var h = await new Harness().StartAsync();
        var meta = await h.RunAsync(Spec("payloads", rounds: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.NotEmpty(h.Converter.Payloads);
        var largest = h.Converter.Payloads.MaxBy(p => p.Length);
        Assert.True(largest.Length < 6 * 1024, $"largest payload is {largest.Type} with {largest.Length} characters");

        // The model itself (1 KB-scale here, but any size in general) never travels through history.
        var modelBytes = h.Blobs.Items.Where(kv => kv.Key.EndsWith("model.safetensors", StringComparison.Ordinal)).Max(kv => kv.Value.Length);
        Assert.True(modelBytes > 1000);
        Assert.Contains(h.Converter.Payloads, p => p.Type == nameof(SiloJobStatus));
    }

    [Fact]
    public async Task RunAsync_TwoRoundsPerInstance_ContinuesAsNewWithContiguousRounds()
    {
        await using var h = await new Harness().StartAsync();
        var meta = await h.RunAsync(Spec("continue", rounds: 5, roundsPerInstance: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);

        // One start plus a ContinueAsNew after rounds 2 and 4.
        Assert.Equal(3, h.Converter.Payloads.Count(p => p.Type == nameof(TrainingState)));
        Assert.Equal([1, 2, 3, 4, 5], h.Backend.TrainCalls.Select(c => c.Round).Distinct().Order());
        Assert.Equal(5 * Data.Count, h.Backend.TrainCalls.Count);

        var manifests = await h.Store.ListAsync("checkpoints", "continue", default);
        Assert.Equal([0, 1, 2, 3, 4, 5], manifests.Select(m => m.Round));
        for (var i = 1; i < manifests.Count; i++)
        {
            Assert.Equal(manifests[i - 1].Model.Sha256, manifests[i].ParentModelSha256);
        }

        // The run's start is carried across both ContinueAsNew: the last generation's input still has the first one's.
        var startedAt = meta.ReadInputAs<TrainingState>()!.StartedAt!.Value;
        Assert.InRange(startedAt, manifests[0].CreatedAt.UtcDateTime.AddMinutes(-1), manifests[0].CreatedAt.UtcDateTime);
        Assert.True(manifests[5].CreatedAt.UtcDateTime > startedAt);

        var status = meta.ReadCustomStatusAs<RunStatus>()!;
        Assert.Equal("completed", status.Phase);
        Assert.Equal([1, 2, 3, 4, 5], status.Recent.Select(r => r.Round));
        Assert.Equal(5, meta.ReadOutputAs<TrainingOutcome>()!.Rounds);
    }

    [Fact]
    public async Task RunAsync_OneSiloAlwaysFails_RoundAggregatesTheOthersAndRecordsTheFailure()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Failing.Add("silo-2");
        var meta = await h.RunAsync(Spec("onefails", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.Equal(3, h.Backend.TrainCalls.Count(c => c.Silo == "silo-2"));
        var manifest = (await h.Store.ListAsync("checkpoints", "onefails", default))[^1];
        Assert.DoesNotContain(manifest.Participants, p => p.SiloId == "silo-2");
        var rejected = Assert.Single(manifest.Rejected);
        Assert.Equal(("silo-2", "train-failed"), (rejected.SiloId, rejected.Reason));
        Assert.Contains("silo silo-2 is down", rejected.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_EverySiloFails_RunFailsNamingEachSilo()
    {
        await using var h = await new Harness().StartAsync();
        foreach (var d in Data)
        {
            h.Backend.Failing.Add(d.SiloId);
        }

        var meta = await h.RunAsync(Spec("allfail", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("no update to aggregate", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        var latest = await h.Store.GetLatestAsync("checkpoints", "allfail", default);
        Assert.Equal(0, latest!.Round);
    }
}
