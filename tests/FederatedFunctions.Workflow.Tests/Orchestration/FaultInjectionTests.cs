using FederatedFunctions.Core.Specs;
using Microsoft.DurableTask.Client;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>Silo backends that fail, hang, or send corrupt, tampered or vanishing updates, all in one run.</summary>
public sealed class FaultInjectionTests
{
    [Fact]
    public async Task RunAsync_EveryKindOfFaultySilo_EachIsLeftOutWithItsReasonAndTheRunCompletes()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Tampered.Add("silo-2");
        h.Backend.Corrupt.Add("silo-3");
        h.Backend.SiloDelays["silo-4"] = TimeSpan.FromSeconds(8);
        var spec = Spec("faults", rounds: 2) with
        {
            Participation = new ParticipationSpec { MinSilos = 1, RoundDeadlineSeconds = 3 },
            Retry = new RetrySpec { MaxAttempts = 1 },
        };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "faults", default);
        Assert.Equal([0, 1, 2], manifests.Select(m => m.Round));
        foreach (var m in manifests.Skip(1))
        {
            Assert.Equal(["silo-1"], m.Participants.Select(p => p.SiloId));
            Assert.Equal(
                [("silo-2", "sha256-mismatch"), ("silo-3", "non-finite"), ("silo-4", "late")],
                m.Rejected.Select(r => (r.SiloId, r.Reason)).OrderBy(r => r.SiloId));
            Assert.Equal(1.0, m.Participants[0].Weight);
        }
    }

    [Fact]
    public async Task RunAsync_UpdateVanishesAndAnotherSiloFails_BothRecordedAndTheRestAggregated()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Vanishing.Add("silo-1");
        h.Backend.Failing.Add("silo-2");
        var spec = Spec("vanish", rounds: 1) with { Participation = new ParticipationSpec { MinSilos = 2 }, Retry = new RetrySpec { MaxAttempts = 2, FirstIntervalSeconds = 0.1 } };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "vanish", default))[^1];
        Assert.Equal(["silo-3", "silo-4"], m.Participants.Select(p => p.SiloId));
        Assert.Equal([("silo-1", "missing"), ("silo-2", "train-failed")], m.Rejected.Select(r => (r.SiloId, r.Reason)).OrderBy(r => r.SiloId));
        Assert.Equal(2, h.Backend.TrainCalls.Count(c => c.Silo == "silo-2"));
    }

    [Fact]
    public async Task RunAsync_StrictPolicyAndATamperedUpdate_FailsTheRunNamingTheSilo()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Tampered.Add("silo-3");
        var spec = Spec("strict-tamper", rounds: 2) with { Participation = new ParticipationSpec { FailurePolicy = FailurePolicies.Strict } };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("silo-3: sha256-mismatch", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal([0], (await h.Store.ListAsync("checkpoints", "strict-tamper", default)).Select(m => m.Round));
    }
}
