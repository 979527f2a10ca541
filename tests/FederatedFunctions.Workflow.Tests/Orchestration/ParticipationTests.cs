using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using Microsoft.DurableTask.Client;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

public sealed class ParticipationTests
{
    private static readonly RetrySpec NoRetry = new() { MaxAttempts = 1 };

    [Fact]
    public async Task RunAsync_SampleTwoOfFour_TrainsExactlyTheSeededSampleAndRecordsIt()
    {
        await using var h = await new Harness().StartAsync();
        var spec = Spec("sample", rounds: 4) with { Participation = new ParticipationSpec { SampleCount = 2 } };
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(spec)).RuntimeStatus);

        var manifests = await h.Store.ListAsync("checkpoints", "sample", default);
        foreach (var m in manifests.Skip(1))
        {
            var expected = ParticipationPolicy.Sample(spec.Silos, spec.Participation, spec.Training.Seed, m.Round);
            Assert.Equal(expected, m.Sampled);
            Assert.Equal(expected.Order(), h.Backend.TrainCalls.Where(c => c.Round == m.Round).Select(c => c.Silo).Order());
            Assert.Equal(expected, m.Participants.Select(p => p.SiloId));
        }

        Assert.Equal(8, h.Backend.TrainCalls.Count);
    }

    [Fact]
    public async Task RunAsync_StragglerPastTheDeadline_RoundGoesOnAndTheLateUpdateNeverCounts()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.SiloDelays["silo-4"] = TimeSpan.FromSeconds(10);
        var spec = Spec("deadline", rounds: 2) with { Participation = new ParticipationSpec { RoundDeadlineSeconds = 4, MinSilos = 3 } };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "deadline", default);
        foreach (var m in manifests.Skip(1))
        {
            Assert.Equal(["silo-1", "silo-2", "silo-3"], m.Participants.Select(p => p.SiloId));
            var late = Assert.Single(m.Rejected);
            Assert.Equal(("silo-4", "late"), (late.SiloId, late.Reason));
        }
    }

    [Fact]
    public async Task RunAsync_FewerReportsThanTheMinimum_FailsNamingTheMinimum()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Failing.Add("silo-3");
        var spec = Spec("minimum", rounds: 1) with { Participation = new ParticipationSpec { MinSilos = 4 }, Retry = NoRetry };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("below the minimum of 4", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("silo-3: train-failed", meta.FailureDetails.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_StrictPolicyAndOneFailure_FailsTheRun()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Failing.Add("silo-1");
        var spec = Spec("strict", rounds: 2) with { Participation = new ParticipationSpec { FailurePolicy = FailurePolicies.Strict }, Retry = NoRetry };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("(strict)", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(0, (await h.Store.GetLatestAsync("checkpoints", "strict", default))!.Round);
    }

    [Fact]
    public async Task RunAsync_RetryFromTheSpec_AttemptsAFailingSiloThatManyTimes()
    {
        await using var h = await new Harness().StartAsync();
        h.Backend.Failing.Add("silo-2");
        var spec = Spec("retry", rounds: 2) with { Retry = new RetrySpec { MaxAttempts = 2, FirstIntervalSeconds = 0.2 } };

        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(spec)).RuntimeStatus);
        Assert.Equal(4, h.Backend.TrainCalls.Count(c => c.Silo == "silo-2"));
    }
}
