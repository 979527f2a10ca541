using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.DurableTask.Client;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>Simulation with virtual silos: partitions of one host's data, trained many per silo step, through the real orchestrator and silo protocol.</summary>
public sealed class SimulationTests
{
    // One host holding the whole dataset: 900 train rows, 4 classes.
    private static readonly IReadOnlyList<SiloDataset> Host =
        SyntheticData.Generate(new SyntheticOptions(Silos: 1, Classes: 4, Features: 8, TrainPerSilo: 900, TestPerSilo: 200, DirichletAlpha: null, Seed: 5));

    private static RunSpec Simulation(string runId, int perStep, int rounds = 3) => Spec(runId, rounds) with
    {
        Silos = [Host[0].SiloId],
        Simulation = new SimulationSpec { VirtualSilos = 30, Split = SimulationSplits.Dirichlet, Alpha = 0.5, Seed = 2, PerStep = perStep },
        Participation = new ParticipationSpec { SampleCount = 8 },
        Retry = new RetrySpec { MaxAttempts = 1 },
    };

    [Fact]
    public async Task RunAsync_VirtualSilosOnePerStepOrSevenPerStep_TrainBitIdenticalModels()
    {
        await using var h = await new Harness(Host).StartAsync();
        var one = Simulation("sim-one-per-step", perStep: 1);
        var seven = Simulation("sim-seven-per-step", perStep: 7);
        Assert.Empty(RunSpecValidator.Validate(one));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(one)).RuntimeStatus);
        var stepsForOne = h.Backend.TrainCalls.Count;
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(seven)).RuntimeStatus);

        // 8 sampled a round: 8 steps of one, or 2 steps of four (the fewest even groups within 7).
        Assert.Equal(3 * 8, stepsForOne);
        Assert.Equal(3 * 2, h.Backend.TrainCalls.Count - stepsForOne);
        var a = await h.Store.ListAsync("checkpoints", one.RunId!, default);
        var b = await h.Store.ListAsync("checkpoints", seven.RunId!, default);
        Assert.Equal(4, a.Count);
        // The checkpoints' metadata names their run; the weights must be the same bits.
        byte[] Weights(RoundManifest m) => [.. Safetensors.Parse(h.Blobs.Items[m.Model.Uri]).Tensors.SelectMany(t => t.Data.ToArray())];
        for (var round = 1; round <= 3; round++)
        {
            Assert.Equal(Weights(a[round]), Weights(b[round]));
            Assert.Equal(a[round].Participants, b[round].Participants);
        }

        Assert.NotEqual(Weights(a[1]), Weights(a[2]));
    }

    [Fact]
    public async Task RunAsync_Simulation_SamplesVirtualSilosAndKeepsTheirUpdatesInTheHostsOutbox()
    {
        await using var h = await new Harness(Host).StartAsync();
        var spec = Simulation("sim-layout", perStep: 100, rounds: 2);
        var host = Host[0].SiloId;

        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(spec)).RuntimeStatus);

        var manifests = await h.Store.ListAsync("checkpoints", spec.RunId!, default);
        var parts = VirtualPartition.Split(Host[0].Train.Labels, 4, spec.Simulation!);
        foreach (var m in manifests.Skip(1))
        {
            var expected = ParticipationPolicy.SampleVirtual(VirtualSilos.Participants(spec), spec.Participation, spec.Training.Seed, m.Round);
            Assert.Equal(expected, m.Sampled);

            // Every sampled virtual silo with rows took part, weighted by its own part's size.
            var withRows = expected.Where(id => VirtualSilos.TryParse(id, out _, out var i) && parts[i - 1].Length > 0).ToArray();
            Assert.Equal(withRows.Order(VirtualSilos.IdOrder), m.Participants.Select(p => p.SiloId));
            Assert.All(m.Participants, p => Assert.Equal(parts[int.Parse(p.SiloId.Split('#')[1], System.Globalization.CultureInfo.InvariantCulture) - 1].Length, p.Examples));
            Assert.Equal(expected.Except(withRows), m.Rejected.Select(r => r.SiloId));
            Assert.All(m.Rejected, r => Assert.Equal("no-update", r.Reason));
            // The round's one group wrote one blob in the host's outbox; each participant's update is its own slice of it.
            var blob = $"mem://{host}/{BlobLayout.VirtualGroupUpdates(spec.RunId!, m.Round, 1, 1)}";
            Assert.True(h.Blobs.Items.ContainsKey(blob), blob);
            var stored = h.Blobs.Items[blob];
            var slices = new List<string>();
            for (var at = 0; at < stored.Length;)
            {
                var length = (int)Safetensors.LeadingFileLength(stored.AsMemory(at));
                slices.Add(Hashing.Sha256Hex(stored.AsSpan(at, length)));
                at += length;
            }

            Assert.Equal(slices.Order(StringComparer.Ordinal), m.Participants.Select(p => p.UpdateSha256).Order(StringComparer.Ordinal));
        }

        // One step a round on the host, none for a virtual silo; the model is evaluated on the host's whole test split.
        Assert.Equal([(host, 1), (host, 2)], h.Backend.TrainCalls.OrderBy(c => c.Round));
        Assert.Equal([(host, 1), (host, 2)], h.Backend.EvaluateCalls.OrderBy(c => c.Round));
        Assert.Equal(Host[0].Test.Rows, manifests[^1].Metrics!.EvalExamples);
    }

    [Fact]
    public async Task RunAsync_OneVirtualSilosUpdateTampered_OnlyThatVirtualSiloIsRejected()
    {
        await using var h = await new Harness(Host).StartAsync();
        var spec = Simulation("sim-tampered", perStep: 4, rounds: 1) with { Participation = new ParticipationSpec { SampleCount = 30 } };
        var parts = VirtualPartition.Split(Host[0].Train.Labels, 4, spec.Simulation!);
        var victim = VirtualSilos.Id(Host[0].SiloId, Array.FindIndex(parts, p => p.Length > 0) + 1);
        h.Backend.Tampered.Add(victim);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(spec)).RuntimeStatus);

        var round = (await h.Store.ListAsync("checkpoints", spec.RunId!, default))[1];
        var refused = Assert.Single(round.Rejected, r => r.Reason != "no-update");
        Assert.Equal((victim, "sha256-mismatch"), (refused.SiloId, refused.Reason));
        Assert.Equal(parts.Count(p => p.Length > 0) - 1, round.Participants.Count);
    }

    [Fact]
    public async Task RunAsync_HostDown_EveryVirtualSiloOfItsGroupsFailsAndTheRoundFailsNamingThem()
    {
        await using var h = await new Harness(Host).StartAsync();
        h.Backend.Failing.Add(Host[0].SiloId);

        var meta = await h.RunAsync(Simulation("sim-host-down", perStep: 3, rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("no update to aggregate", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains($"{Host[0].SiloId}#", meta.FailureDetails.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("train-failed (group 1 of host", meta.FailureDetails.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Flatten_AGroupAnsweringForAVirtualSiloItWasNotAskedFor_RejectsTheWholeGroup()
    {
        var simulation = new SimulationSpec { VirtualSilos = 10 };
        var batches = VirtualSilos.Batches("h", ["h#1", "h#2", "h#3", "h#4"], simulation with { PerStep = 2 });
        SiloUpdate Update(string id, string host = "h", int round = 1) => new(id, round, new BlobRef($"mem://{host}/outbox/{id}", new string('0', 64), 1), 5, 0.1, null, host);
        var calls = new[]
        {
            new SiloCall<IReadOnlyList<SiloUpdate>>("h", [Update("h#1"), Update("h#9")], null),
            new SiloCall<IReadOnlyList<SiloUpdate>>("h", [Update("h#3"), Update("h#4", host: "g")], null),
        };

        var flat = VirtualSiloSteps.Flatten("h", 1, batches, calls);

        Assert.Equal(["h#1", "h#2", "h#3", "h#4"], flat.Select(c => c.SiloId));
        Assert.All(flat, c => Assert.Null(c.Result));
        Assert.All(flat, c => Assert.Equal("train-failed", c.Failure!.Reason));

        var honest = VirtualSiloSteps.Flatten("h", 1, batches, [new("h", [Update("h#2")], null), new("h", null, new RejectedUpdate("h", "late", "no result within the round deadline of 5 s"))]);
        Assert.Equal([null, "h#2", null, null], honest.Select(c => c.Result?.SiloId));
        Assert.Equal(["no-update", null, "late", "late"], honest.Select(c => c.Failure?.Reason));
    }

    [Fact]
    public void OwnUpdates_ASiloAnsweringForAnotherSiloOrOutboxOrSlice_FailsThatSilo()
    {
        var blob = new BlobRef("mem://b/outbox/r/round-00001/update.safetensors", new string('0', 64), 10);
        var calls = new[]
        {
            new SiloCall<SiloUpdate>("a", new SiloUpdate("a", 1, blob with { Uri = "mem://a/outbox/u" }, 5, 0.1, null), null),
            new SiloCall<SiloUpdate>("b", new SiloUpdate("c", 1, blob, 5, 0.1, null), null),
            new SiloCall<SiloUpdate>("c", new SiloUpdate("c", 1, blob, 5, 0.1, null, Host: "b"), null),
            new SiloCall<SiloUpdate>("d", new SiloUpdate("d", 1, blob, 5, 0.1, null, Offset: 0), null),
        };

        var own = TrainingOrchestrator.OwnUpdates(calls);

        Assert.Equal(["a"], own.Where(c => c.Result is not null).Select(c => c.SiloId));
        Assert.Equal(["train-failed", "train-failed", "train-failed"], own.Skip(1).Select(c => c.Failure!.Reason));
    }
}
