using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>Every strategy wired into runs: the orchestrator, the silos' fit configuration, both aggregation paths and the server state.</summary>
public sealed class StrategyRunTests
{
    private static readonly string[] Stateful = [StrategyNames.FedAvgM, StrategyNames.FedAdam, StrategyNames.FedYogi, StrategyNames.FedAdagrad];

    public static TheoryData<string> Names => new(StrategyNames.All);

    private static RunSpec Spec(string runId, StrategySpec strategy, int rounds = 3) =>
        TrainingOrchestratorTests.Spec(runId, rounds) with { Strategy = strategy };

    // Server learning rates that suit this small problem (the defaults are Flower's, tuned for other models).
    private static StrategySpec Tuned(string name) => name switch
    {
        StrategyNames.FedAdam or StrategyNames.FedAdagrad => new StrategySpec { Name = name, ServerLearningRate = 0.03 },
        StrategyNames.FedYogi => new StrategySpec { Name = name, ServerLearningRate = 0.03 },
        _ => new StrategySpec { Name = name },
    };

    [Theory]
    [MemberData(nameof(Names))]
    public async Task RunAsync_EachStrategy_CompletesLearnsAndKeepsItsServerStateBesideEachRound(string name)
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var runId = "strategy-" + name;
        var meta = await h.RunAsync(Spec(runId, Tuned(name)));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", runId, default);
        Assert.All(manifests, m => Assert.Equal(name, m.Strategy));
        foreach (var m in manifests.Skip(1))
        {
            if (Stateful.Contains(name))
            {
                // The state after round r sits beside round r's model and says which round and strategy made it.
                var state = Safetensors.Parse(await h.Store.ReadModelAsync(m.StrategyState!, default));
                Assert.EndsWith(BlobLayout.StrategyState(runId, m.Round), m.StrategyState!.Uri, StringComparison.Ordinal);
                Assert.Equal(m.Round.ToString(System.Globalization.CultureInfo.InvariantCulture), state.Metadata["round"]);
                Assert.Equal(name, state.Metadata["strategy"]);
                Assert.NotEmpty(state.Tensors);
            }
            else
            {
                Assert.Null(m.StrategyState);
            }
        }

        // Four classes: chance is 0.25.
        var accuracy = meta.ReadOutputAs<TrainingOutcome>()!.FinalAccuracy!.Value;
        Assert.True(accuracy > 0.5, $"{name}: final accuracy {accuracy}");
    }

    [Fact]
    public async Task RunAsync_FedProx_EverySiloIsToldMuWithItsFit()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var meta = await h.RunAsync(Spec("strategy-prox-mu", new StrategySpec { Name = StrategyNames.FedProx, ProximalMu = 0.25 }, rounds: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.Equal(2 * TrainingOrchestratorTests.Data.Count, h.Backend.TrainRequests.Count);
        Assert.All(h.Backend.TrainRequests, c => Assert.Equal(0.25, c.Fit!.ProximalMu));
    }

    [Fact]
    public async Task RunAsync_FedAvg_SilosGetNoFitConfiguration()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        await h.RunAsync(Spec("strategy-avg-fit", new StrategySpec(), rounds: 1));

        Assert.NotEmpty(h.Backend.TrainRequests);
        Assert.All(h.Backend.TrainRequests, c => Assert.Null(c.Fit));
    }

    [Fact]
    public async Task RunAsync_Krum_EachRoundsModelIsExactlyTheUpdateOfTheOneSiloItChose()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var meta = await h.RunAsync(Spec("strategy-krum-exact", new StrategySpec { Name = StrategyNames.Krum, Byzantine = 0 }, rounds: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        foreach (var m in (await h.Store.ListAsync("checkpoints", "strategy-krum-exact", default)).Skip(1))
        {
            var chosen = Assert.Single(m.Participants, p => p.Weight == 1);
            Assert.All(m.Participants.Where(p => p != chosen), p => Assert.Equal(0, p.Weight));
            var update = Safetensors.Parse(h.Blobs.Items.Values.First(v => Hashing.Sha256Hex(v) == chosen.UpdateSha256)).Tensors;
            var model = Safetensors.Parse(h.Blobs.Items[m.Model.Uri]).Tensors;
            Assert.Equal(update.Select(t => (t.Name, Convert.ToHexString(t.Data.Span))), model.Select(t => (t.Name, Convert.ToHexString(t.Data.Span))));
        }
    }

    [Fact]
    public async Task RunAsync_FedMedian_EachCoordinateIsTheMedianOfTheSilosUpdates()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        await h.RunAsync(Spec("strategy-median-exact", new StrategySpec { Name = StrategyNames.FedMedian }, rounds: 1));

        var m = await h.Store.GetManifestAsync("checkpoints", "strategy-median-exact", 1, default);
        Assert.Equal(4, m!.Participants.Count);
        Assert.All(m.Participants, p => Assert.Null(p.Weight));
        var updates = m.Participants.Select(p => Floats(h.Blobs.Items.Values.First(v => Hashing.Sha256Hex(v) == p.UpdateSha256))).ToArray();
        var model = Floats(h.Blobs.Items[m.Model.Uri]);
        for (var i = 0; i < model.Length; i++)
        {
            // Four updates: the mean of the two middle values, rounded to float32.
            var sorted = updates.Select(u => (double)u[i]).Order().ToArray();
            Assert.Equal((float)((sorted[1] + sorted[2]) / 2), model[i]);
        }
    }

    [Fact]
    public async Task RunAsync_FedAvgMUnderSecureAggregation_TheServerStepWorksOnTheUnmaskedMean()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var spec = Spec("strategy-avgm-secure", new StrategySpec { Name = StrategyNames.FedAvgM, ServerMomentum = 0.5 }, rounds: 2) with
        {
            Privacy = new PrivacySpec { SecureAggregation = new SecureAggregationSpec { ClipNorm = 10, MaxExamples = 240 } },
        };
        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "strategy-avgm-secure", default);
        Assert.All(manifests.Skip(1), m => Assert.Equal(0, m.Privacy!.SecureAggregationAttempt));

        // The momentum is kept beside each round, labelled with the secure-aggregation attempt whose unmasked mean made it.
        var round1 = Safetensors.Parse(await h.Store.ReadModelAsync(manifests[1].StrategyState!, default));
        var round2 = Safetensors.Parse(await h.Store.ReadModelAsync(manifests[2].StrategyState!, default));
        Assert.Equal(round1.Tensors.Select(t => t.Name), round2.Tensors.Select(t => t.Name));
        Assert.All(round1.Tensors, t => Assert.StartsWith("momentum/", t.Name, StringComparison.Ordinal));
        Assert.Contains("secure_aggregation_key_exchange_sha256", round1.Metadata.Keys);
        var accuracy = meta.ReadOutputAs<TrainingOutcome>()!.FinalAccuracy!.Value;
        Assert.True(accuracy > 0.5, $"final accuracy {accuracy}");
    }

    [Fact]
    public async Task ResumeAsync_FedAdamFromItsManifestState_ContinuesBitForBitAndWithoutItDiverges()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var strategy = Tuned(StrategyNames.FedAdam);

        // The reference: four rounds in one go, continuing as new after round 2 (the state crosses ContinueAsNew).
        var whole = await h.RunAsync(Spec("adam-whole", strategy, rounds: 4) with { Orchestration = new OrchestrationSpec { RoundsPerInstance = 2 } });
        Assert.Equal(OrchestrationRuntimeStatus.Completed, whole.RuntimeStatus);

        // The same run stopped after round 2, then resumed as a lost run is: from the latest pointer and its manifest.
        var part = await h.RunAsync(Spec("adam-part", strategy, rounds: 2));
        Assert.Equal(OrchestrationRuntimeStatus.Completed, part.RuntimeStatus);
        var latest = await h.Store.GetLatestAsync("checkpoints", "adam-part", default);
        var manifest = await h.Store.GetManifestAsync("checkpoints", "adam-part", latest!.Round, default);
        Assert.NotNull(manifest!.StrategyState);
        await ResumeAsync(h, "adam-part", strategy, latest, manifest, manifest.StrategyState);

        var expected = await TensorsAsync(h, "adam-whole", 4);
        Assert.Equal(expected, await TensorsAsync(h, "adam-part", 4));

        // Negative control: resumed without the moments, round 3 is a first Adam step again and the models differ.
        var forgot = await h.RunAsync(Spec("adam-forgot", strategy, rounds: 2));
        Assert.Equal(OrchestrationRuntimeStatus.Completed, forgot.RuntimeStatus);
        var forgotLatest = await h.Store.GetLatestAsync("checkpoints", "adam-forgot", default);
        var forgotManifest = await h.Store.GetManifestAsync("checkpoints", "adam-forgot", 2, default);
        await ResumeAsync(h, "adam-forgot", strategy, forgotLatest!, forgotManifest!, strategyState: null);
        Assert.NotEqual(expected, await TensorsAsync(h, "adam-forgot", 4));
    }

    private static async Task ResumeAsync(TrainingOrchestratorTests.Harness h, string runId, StrategySpec strategy, LatestPointer latest, RoundManifest manifest, BlobRef? strategyState)
    {
        var state = TrainingState.Resume(runId, Spec(runId, strategy, rounds: 4), latest, manifest.Audit, Core.Silos.Epochs.New(), strategyState);
        var instance = runId + "-resumed";
        await h.Host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(TrainingOrchestrator), state, new StartOrchestrationOptions(instance));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var meta = await h.Host.Client.WaitForInstanceCompletionAsync(instance, getInputsAndOutputs: true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
    }

    // A round's model tensors (names and bytes), without the metadata that names the run.
    private static async Task<string[]> TensorsAsync(TrainingOrchestratorTests.Harness h, string runId, int round)
    {
        var m = await h.Store.GetManifestAsync("checkpoints", runId, round, default);
        return Safetensors.Parse(h.Blobs.Items[m!.Model.Uri]).Tensors.Select(t => t.Name + ":" + Convert.ToHexString(t.Data.Span)).ToArray();
    }

    private static float[] Floats(byte[] safetensors) =>
        Safetensors.Parse(safetensors).Tensors.SelectMany(t => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray()).ToArray();
}
