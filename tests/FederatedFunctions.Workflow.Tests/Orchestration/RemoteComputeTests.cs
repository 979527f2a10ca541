using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.DurableTask.Client;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// Silos on a remote compute: every step is a job submitted, waited for on durable timers and collected by a
/// <see cref="SiloJobOrchestrator"/>, and run by the real silo runner from the document the orchestrator wrote.
/// </summary>
public sealed class RemoteComputeTests
{
    private static readonly RetrySpec FastRetry = new() { MaxAttempts = 3, FirstIntervalSeconds = 0.1, MaxIntervalSeconds = 0.2 };

    private static async Task<(Harness H, ScriptedRemoteCompute Compute)> StartAsync(params string[] remote)
    {
        var h = await new Harness().StartAsync();
        var compute = new ScriptedRemoteCompute(h.Backend, h.Blobs);
        h.Backend.Remote = compute;
        h.Backend.RemoteSilos.UnionWith(remote.Length == 0 ? Data.Select(d => d.SiloId) : remote);
        return (h, compute);
    }

    [Fact]
    public async Task RunAsync_RemoteSilos_SubmitWaitCollect_GiveTheSameModelsAsInProcessSilos()
    {
        var spec = Spec("remote-same", rounds: 2) with { Retry = FastRetry };
        await using var inline = await new Harness().StartAsync();
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await inline.RunAsync(spec)).RuntimeStatus);
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var meta = await h.RunAsync(spec);
            Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);

            var expected = await inline.Store.ListAsync("checkpoints", "remote-same", default);
            var actual = await h.Store.ListAsync("checkpoints", "remote-same", default);
            Assert.Equal(expected.Select(m => m.Model.Sha256), actual.Select(m => m.Model.Sha256));
            Assert.Equal(expected.Select(m => m.Metrics?.EvalAccuracy), actual.Select(m => m.Metrics?.EvalAccuracy));

            // One job per silo, step and round, each under its deterministic name, each with its document.
            Assert.Equal(Data.Count * 2 * 2, compute.Submitted.Count);
            Assert.Contains($"fl-remote-same-train-r00001-{Data[0].SiloId}-j1", compute.Submitted);
            Assert.Equal(compute.Submitted.Count, compute.Documents.Count());
            Assert.Equal(compute.Submitted.Count, compute.Outcomes.Count());
            Assert.Empty(h.Backend.TrainCalls);
        }
    }

    [Fact]
    public async Task RunAsync_RemoteSilos_EachRoundIsCommittedBeforeTheNextRoundSubmitsItsJobs()
    {
        // Round 1's commit waits 300 ms, then looks for jobs of round 2: there must be none. Only silo steps in this
        // process overlap a commit; a job left running on a provider's compute by a commit that then failed would not
        // stop with the run.
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var early = new List<string>();
            h.Store.BeforeCommit = async manifest =>
            {
                if (manifest.RunId == "remote-commit" && manifest.Round == 1)
                {
                    await Task.Delay(300);
                    early.AddRange(compute.Submitted.Where(n => n.Contains("-r00002-", StringComparison.Ordinal)));
                }
            };

            var meta = await h.RunAsync(Spec("remote-commit", rounds: 2) with { Retry = FastRetry });

            Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
            Assert.Empty(early);
            Assert.Contains(compute.Submitted, n => n.Contains("-train-r00002-", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task RunAsync_MixedComputes_OneRunTrainsSomeSilosInProcessAndSomeAsJobs()
    {
        var (h, compute) = await StartAsync(Data[0].SiloId, Data[2].SiloId);
        await using (h)
        {
            var meta = await h.RunAsync(Spec("remote-mixed", rounds: 1));
            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            Assert.Equal([Data[1].SiloId, Data[3].SiloId], h.Backend.TrainCalls.Select(c => c.Silo).Order());
            Assert.Equal(2, compute.Submitted.Count(n => n.Contains("-train-", StringComparison.Ordinal)));
            var manifest = (await h.Store.ListAsync("checkpoints", "remote-mixed", default)).Single(m => m.Round == 1);
            Assert.Equal(Data.Select(d => d.SiloId).Order(), manifest.Participants.Select(p => p.SiloId).Order());
        }
    }

    [Fact]
    public async Task RunAsync_FailedJob_IsSubmittedAgainUnderTheNextAttemptsName()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[1].SiloId;
            compute.Scripts[(silo, SiloStepKinds.Train, 1)] = new JobScript(End: "failed");
            var meta = await h.RunAsync(Spec("remote-retry", rounds: 1) with { Retry = FastRetry });

            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            Assert.Contains($"fl-remote-retry-train-r00001-{silo}-j1", compute.Submitted);
            Assert.Contains($"fl-remote-retry-train-r00001-{silo}-j2", compute.Submitted);
            Assert.DoesNotContain($"fl-remote-retry-train-r00001-{Data[0].SiloId}-j2", compute.Submitted);
            var manifest = (await h.Store.ListAsync("checkpoints", "remote-retry", default)).Single(m => m.Round == 1);
            Assert.Contains(silo, manifest.Participants.Select(p => p.SiloId));
        }
    }

    [Fact]
    public async Task RunAsync_JobThatFailsEveryAttempt_IsRejectedWithItsComputeStatus()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[2].SiloId;
            foreach (var attempt in new[] { 1, 2 })
            {
                compute.Scripts[(silo, SiloStepKinds.Train, attempt)] = new JobScript(End: "failed");
            }

            var meta = await h.RunAsync(Spec("remote-fails", rounds: 1) with { Retry = FastRetry with { MaxAttempts = 2 } });

            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            var rejected = Assert.Single((await h.Store.ListAsync("checkpoints", "remote-fails", default)).Single(m => m.Round == 1).Rejected);
            Assert.Equal((silo, "train-failed"), (rejected.SiloId, rejected.Reason));
            Assert.Contains("scripted:Failed", rejected.Detail, StringComparison.Ordinal);
            Assert.Contains("-j2", rejected.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain($"fl-remote-fails-train-r00001-{silo}-j3", compute.Submitted);
        }
    }

    [Fact]
    public async Task RunAsync_JobStuckInTheQueuePastTheDeadline_IsCancelledAndRecordedLateWithItsStatus()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[3].SiloId;
            compute.Scripts[(silo, SiloStepKinds.Train, 1)] = new JobScript(End: "never");
            h.Backend.RemotePollSeconds = 1;
            var meta = await h.RunAsync(Spec("remote-stuck", rounds: 1) with { Participation = new ParticipationSpec { RoundDeadlineSeconds = 12, MinSilos = 3 } });

            Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
            var rejected = Assert.Single((await h.Store.ListAsync("checkpoints", "remote-stuck", default)).Single(m => m.Round == 1).Rejected);
            Assert.Equal((silo, "late"), (rejected.SiloId, rejected.Reason));
            Assert.Contains("queued (scripted:Queued)", rejected.Detail, StringComparison.Ordinal);
            Assert.Contains($"fl-remote-stuck-train-r00001-{silo}-j1", compute.Cancelled);
        }
    }

    [Fact]
    public async Task RunAsync_JobCanceledOnTheCompute_CountsAsTheSilosFailureWithoutAnotherAttempt()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[0].SiloId;
            compute.Scripts[(silo, SiloStepKinds.Train, 1)] = new JobScript(End: "canceled");
            var meta = await h.RunAsync(Spec("remote-canceled", rounds: 1) with { Retry = FastRetry });

            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            var rejected = Assert.Single((await h.Store.ListAsync("checkpoints", "remote-canceled", default)).Single(m => m.Round == 1).Rejected);
            Assert.Equal((silo, "canceled"), (rejected.SiloId, rejected.Reason));
            Assert.DoesNotContain($"fl-remote-canceled-train-r00001-{silo}-j2", compute.Submitted);
        }
    }

    [Fact]
    public async Task RunAsync_PreemptedJob_GoesBackToTheQueueAndCompletesAsTheSameJob()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[1].SiloId;
            compute.Scripts[(silo, SiloStepKinds.Train, 1)] = new JobScript(QueuedPolls: 1, RunningPolls: 2, Preempted: true);
            var meta = await h.RunAsync(Spec("remote-preempted", rounds: 1));

            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            Assert.Empty((await h.Store.ListAsync("checkpoints", "remote-preempted", default)).Single(m => m.Round == 1).Rejected);
            Assert.DoesNotContain($"fl-remote-preempted-train-r00001-{silo}-j2", compute.Submitted);
            Assert.True(compute.Reads.Count(r => r == $"fl-remote-preempted-train-r00001-{silo}-j1") >= 5);
        }
    }

    [Fact]
    public async Task RunAsync_BadDataOnARemoteSilo_IsRejectedAsBadDataAndNotRetried()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[2].SiloId;
            h.Blobs.Items[$"mem://{silo}/data/train.csv"] = "x0,label\nnot-a-number,1\n"u8.ToArray();
            var meta = await h.RunAsync(Spec("remote-baddata", rounds: 1) with { Retry = FastRetry });

            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            var rejected = Assert.Single((await h.Store.ListAsync("checkpoints", "remote-baddata", default)).Single(m => m.Round == 1).Rejected);
            Assert.Equal((silo, "bad-data"), (rejected.SiloId, rejected.Reason));
            Assert.Contains("data/train.csv", rejected.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain($"fl-remote-baddata-train-r00001-{silo}-j2", compute.Submitted);
        }
    }

    [Fact]
    public async Task RunAsync_RemoteEvaluationStuckPastTheDeadline_IsRecordedLateAndTheRoundCommits()
    {
        var (h, compute) = await StartAsync();
        await using (h)
        {
            var silo = Data[1].SiloId;
            compute.Scripts[(silo, SiloStepKinds.Evaluate, 1)] = new JobScript(End: "never");
            h.Backend.RemotePollSeconds = 1;
            var meta = await h.RunAsync(Spec("remote-eval-stuck", rounds: 1) with { Participation = new ParticipationSpec { RoundDeadlineSeconds = 12 } });

            Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
            var manifest = (await h.Store.ListAsync("checkpoints", "remote-eval-stuck", default)).Single(m => m.Round == 1);
            Assert.Empty(manifest.Rejected);
            var late = Assert.Single(manifest.EvaluationFailures);
            Assert.Equal((silo, "late"), (late.SiloId, late.Reason));
            Assert.Contains($"fl-remote-eval-stuck-evaluate-r00001-{silo}-j1", compute.Cancelled);
            Assert.NotNull(manifest.Metrics?.EvalAccuracy);
        }
    }

    [Fact]
    public async Task SiloJobOrchestrator_JobThatEndedSinceItsLastPoll_IsReadAtTheDeadlineAndNotCancelled()
    {
        var (h, compute) = await StartAsync(Data[0].SiloId);
        await using (h)
        {
            // A poll interval longer than the deadline: the first read after the submission is the one at the deadline.
            compute.Scripts[(Data[0].SiloId, SiloStepKinds.Train, 1)] = new JobScript(QueuedPolls: 0, RunningPolls: 0);
            compute.Scripts[(Data[0].SiloId, SiloStepKinds.Evaluate, 1)] = new JobScript(QueuedPolls: 0, RunningPolls: 0);
            h.Backend.RemotePollSeconds = 60;
            var meta = await h.RunAsync(Spec("remote-ended", rounds: 1) with { Participation = new ParticipationSpec { RoundDeadlineSeconds = 3, MinSilos = 3 } });

            Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
            var job = await h.Host.Client.GetInstanceAsync($"remote-ended:train-r00001-{Data[0].SiloId}", getInputsAndOutputs: true);
            Assert.Equal(SiloJobState.Completed, job!.ReadOutputAs<SiloJobStatus>()!.State);
            Assert.Empty(compute.Cancelled);
        }
    }

    [Fact]
    public async Task SiloJobOrchestrator_StartedAfterTheRoundDeadline_SubmitsNoJob()
    {
        var (h, compute) = await StartAsync(Data[0].SiloId);
        await using (h)
        {
            var job = SiloJob.First("checkpoints", new SiloStep(Key: new MaskingKeyRequest("remote-after", 1, 0, Data[0].SiloId)));
            var id = await h.Host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(SiloJobOrchestrator), new SiloJobInput(job, FastRetry, 1, DateTime.UtcNow.AddSeconds(-1)));
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            var meta = await h.Host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);

            var status = meta.ReadOutputAs<SiloJobStatus>()!;
            Assert.Equal((SiloJobState.Canceled, "not-submitted"), (status.State, status.ComputeStatus));
            Assert.Empty(compute.Submitted);
        }
    }

    [Fact]
    public async Task SiloJobOrchestrator_JobThatTakesManyPolls_ContinuesAsNewEveryTwentyAndStillCompletes()
    {
        var (h, compute) = await StartAsync(Data[0].SiloId);
        await using (h)
        {
            compute.Scripts[(Data[0].SiloId, SiloStepKinds.Train, 1)] = new JobScript(QueuedPolls: 30, RunningPolls: 15);
            var meta = await h.RunAsync(Spec("remote-long", rounds: 1, everyRounds: 0) with { Evaluation = new EvaluationSpec { EveryRounds = 0 } });

            Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
            Assert.Equal(46, compute.Reads.Count(r => r.Contains("-train-", StringComparison.Ordinal)));

            // The job's orchestration continued as new after polls 20 and 40: its last generation started with 40 polls done.
            var job = await h.Host.Client.GetInstanceAsync($"remote-long:train-r00001-{Data[0].SiloId}", getInputsAndOutputs: true);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, job!.RuntimeStatus);
            var last = job.ReadInputAs<SiloJobInput>()!;
            Assert.Equal(40, last.Polls);
            Assert.Equal(SiloJobState.Running, last.Last!.State);
        }
    }
}
