using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Workflow.Contracts;

/// <summary>A silo step as a job on the silo's compute.</summary>
/// <param name="Name">The job's name, deterministic from run, step and attempt (<see cref="SiloJobNames.For"/>).</param>
/// <param name="Container">The run's checkpoint container, where the job's document is written.</param>
/// <param name="Step">The step the job runs.</param>
/// <param name="Attempt">The job attempt, from 1: a failed job is submitted again, under a new name, per the run's retry policy.</param>
/// <param name="Epoch">The start of the run the job belongs to: null for the first, a token per resume (<see cref="Epochs"/>).</param>
/// <param name="SubmittedAt">When the orchestration submitted this attempt (orchestration time): where a remote job's span starts. Not part of the job's identity.</param>
public sealed record SiloJob(string Name, string Container, SiloStep Step, int Attempt, string? Epoch = null, DateTime? SubmittedAt = null)
{
    /// <summary>The first attempt of a step.</summary>
    public static SiloJob First(string container, SiloStep step, string? epoch = null, DateTime? submittedAt = null)
    {
        ArgumentNullException.ThrowIfNull(step);
        return new SiloJob(SiloJobNames.For(step.RunId, step, 1, epoch), container, step, 1, epoch, submittedAt);
    }

    /// <summary>The next attempt of the same step, submitted at <paramref name="submittedAt"/> (null keeps this attempt's time).</summary>
    public SiloJob Next(DateTime? submittedAt = null) => this with { Name = SiloJobNames.For(Step.RunId, Step, Attempt + 1, Epoch), Attempt = Attempt + 1, SubmittedAt = submittedAt ?? SubmittedAt };

    /// <summary>This attempt and every later one the retry policy allows: the jobs a cancellation must cancel, since the orchestration waiting for this one may have moved on to the next.</summary>
    public IEnumerable<SiloJob> ThisAndLaterAttempts(RetrySpec retry)
    {
        ArgumentNullException.ThrowIfNull(retry);
        for (var job = this; job.Attempt <= Math.Max(Attempt, retry.MaxAttempts); job = job.Next())
        {
            yield return job;
        }
    }
}

/// <summary>The orchestrator's view of a silo job's state, whatever the compute.</summary>
public enum SiloJobState
{
    /// <summary>Accepted and waiting: not started, preparing, or queued for the compute.</summary>
    Queued,

    /// <summary>Running on the silo's compute (or finishing).</summary>
    Running,

    /// <summary>Ended and left its outcome.</summary>
    Completed,

    /// <summary>Ended without a usable outcome, or with a failed step.</summary>
    Failed,

    /// <summary>Cancelled, by the orchestrator or on the compute.</summary>
    Canceled,

    /// <summary>A state the compute reports that this code does not know; treated as still running.</summary>
    Unknown,
}

/// <summary>A silo job's state, as read from its compute, with its outcome once it has ended.</summary>
/// <param name="Name">The job.</param>
/// <param name="State">The orchestrator's view.</param>
/// <param name="ComputeStatus">The compute's own status, e.g. <c>azureml:Queued</c> or <c>process:exited(137)</c>.</param>
/// <param name="Result">The step's result, when completed.</param>
/// <param name="Failure">When failed: <see cref="SiloFailures.BadData"/>, <see cref="SiloFailures.Failed"/>, or null when the compute says so without an outcome.</param>
/// <param name="Detail">Why it failed or was cancelled; eyes-off, no more than a category and a silo-side reference.</param>
public sealed record SiloJobStatus(string Name, SiloJobState State, string ComputeStatus, SiloStepResult? Result = null, string? Failure = null, string? Detail = null)
{
    /// <summary>Whether the job has ended.</summary>
    public bool IsTerminal => State is SiloJobState.Completed or SiloJobState.Failed or SiloJobState.Canceled;
}

/// <summary>Where a silo's steps run, resolved from the silo registry when a run starts; no endpoint or credential.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Kind">Its compute kind: <c>local</c>, <c>process</c> or <c>azureml</c>.</param>
/// <param name="Inline">True when a step runs to completion inside the activity that starts it (the in-process compute).</param>
/// <param name="PollSeconds">How long the orchestrator waits, on a durable timer, between reads of a running job's state.</param>
/// <param name="MinCount">The silo's own least number of rows per reported cell of an analysis, when it sets one above the analysis's.</param>
public sealed record SiloPlacement(string SiloId, string Kind, bool Inline, int PollSeconds, int? MinCount = null);

/// <summary>The placements of a run's silos.</summary>
public sealed record SiloPlan(IReadOnlyList<SiloPlacement> Silos)
{
    /// <summary>The placement of one silo.</summary>
    /// <exception cref="KeyNotFoundException">The silo is not in the plan.</exception>
    public SiloPlacement For(string siloId) => Silos.FirstOrDefault(p => p.SiloId == siloId) ?? throw new KeyNotFoundException($"Silo '{siloId}' is not in the run's silo plan.");
}

/// <summary>Input of a <c>SiloJobOrchestrator</c>: submit, wait on durable timers, collect; retry per the run's policy.</summary>
/// <param name="Job">The job of the current attempt.</param>
/// <param name="Retry">The run's retry policy: job attempts and the backoff between them.</param>
/// <param name="PollSeconds">The wait between reads of the job's state.</param>
/// <param name="DeadlineAt">The round's deadline, when it has one: the job is cancelled then, and no attempt starts after it.</param>
/// <param name="Last">The job's last known state, when the orchestration continued as new while waiting.</param>
/// <param name="Polls">Reads of the job's state so far, over every generation.</param>
public sealed record SiloJobInput(SiloJob Job, RetrySpec Retry, int PollSeconds, DateTime? DeadlineAt = null, SiloJobStatus? Last = null, long Polls = 0);

/// <summary>Input of the cancel-jobs orchestration that a run's cancellation starts.</summary>
/// <param name="RunId">The cancelled run.</param>
/// <param name="Jobs">The jobs that were in flight.</param>
public sealed record CancelSiloJobsInput(string RunId, IReadOnlyList<SiloJob> Jobs);

/// <summary>The silos a run needs placed.</summary>
public sealed record PlanSilosRequest(string RunId, IReadOnlyList<string> Silos);

/// <summary>Output of the cancel-jobs orchestration.</summary>
/// <param name="Cancelled">Jobs asked to cancel.</param>
public sealed record CancelSiloJobsResult(int Cancelled);

/// <summary>Why a job's state is what it is, for a manifest: its compute status and detail.</summary>
public static class SiloJobStatusText
{
    /// <summary>A one-line description, e.g. <c>azureml:Failed (exit code 1)</c>.</summary>
    public static string Describe(SiloJobStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        return status.Detail is null ? status.ComputeStatus : $"{status.ComputeStatus}: {status.Detail}";
    }
}
