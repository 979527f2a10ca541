using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>One silo step on a remote compute: submit, wait on durable timers, collect; retried per the run's policy.</summary>
/// <remarks>
/// <para>A job on a provider's compute can run for days. The wait is durable timers, never a blocking activity: between two
/// reads of the job's state the orchestration holds no thread and no lease. Every <see cref="PollsPerInstance"/> reads it
/// continues as new, carrying the job and its last state, so its history stays bounded however many polls a job takes.</para>
/// <para>A failed job is submitted again under the next attempt's name, after the spec's backoff, up to the spec's attempts;
/// bad data is not retried, and a job cancelled on the compute is not resubmitted. Submission is idempotent by job name, so
/// a host that restarts while a job runs finds that job again rather than starting another.</para>
/// <para>With a round deadline (<see cref="SiloJobInput.DeadlineAt"/>), the job's state is read once more when the deadline
/// comes; a job still going is cancelled, and the orchestration ends with its last state, so the run can record how far the
/// job got (queued, running). Started after the deadline (a retried sub-orchestration), it submits nothing. The deadline
/// travels in the input rather than as an event from the run: events buffered across a continue-as-new can be lost.</para>
/// <para>It returns the job's final state; it does not throw for a failed job.</para>
/// </remarks>
[DurableTask(nameof(SiloJobOrchestrator))]
public sealed partial class SiloJobOrchestrator : TaskOrchestrator<SiloJobInput, SiloJobStatus>
{
    /// <summary>Reads of the job's state per orchestration instance, before it continues as new.</summary>
    public const int PollsPerInstance = 20;

    /// <summary>
    /// The orchestration instance of a step's job: <c>{runId}:{step name}</c>, the same for every attempt, and
    /// <c>{runId}:{step name}:{epoch}</c> in a resumed run.
    /// </summary>
    public static string InstanceId(SiloStep step, string? epoch = null)
    {
        ArgumentNullException.ThrowIfNull(step);
        return epoch is null ? $"{step.RunId}:{step.Name}" : $"{step.RunId}:{step.Name}:{epoch}";
    }

    /// <inheritdoc />
    public override async Task<SiloJobStatus> RunAsync(TaskOrchestrationContext context, SiloJobInput input)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        var log = context.CreateReplaySafeLogger<SiloJobOrchestrator>();
        var job = input.Job;
        if (input.Last is null && input.DeadlineAt is { } passed && context.CurrentUtcDateTime >= passed)
        {
            // Started again (a retried sub-orchestration) after the round's deadline: no job is submitted any more.
            return new SiloJobStatus(job.Name, SiloJobState.Canceled, "not-submitted", Detail: "the round deadline had passed");
        }

        var status = input.Last ?? await context.CallActivityAsync<SiloJobStatus>(nameof(StartSiloJobActivity), job, TaskPolicies.StorageRetry);
        var polls = 0;
        while (true)
        {
            while (!status.IsTerminal)
            {
                if (polls == PollsPerInstance)
                {
                    context.ContinueAsNew(input with { Job = job, Last = status, Polls = input.Polls + polls }, preserveUnprocessedEvents: true);
                    return status;
                }

                var wake = context.CurrentUtcDateTime.AddSeconds(input.PollSeconds);
                if (input.DeadlineAt is { } deadline && wake >= deadline)
                {
                    await context.CreateTimer(deadline, CancellationToken.None);
                    return await CancelAsync(context, job);
                }

                await context.CreateTimer(wake, CancellationToken.None);
                status = await context.CallActivityAsync<SiloJobStatus>(nameof(GetSiloJobActivity), job, TaskPolicies.StorageRetry);
                polls++;
            }

            if (status.State != SiloJobState.Failed || status.Failure == SiloFailures.BadData || job.Attempt >= input.Retry.MaxAttempts)
            {
                return status;
            }

            var retryAt = context.CurrentUtcDateTime.Add(TaskPolicies.Backoff(input.Retry, job.Attempt + 1));
            if (input.DeadlineAt is { } last && retryAt >= last)
            {
                return status with { Detail = $"{status.Detail ?? status.ComputeStatus}; no time for attempt {job.Attempt + 1} before the round deadline" };
            }

            LogRetrying(log, job.Name, job.Attempt, SiloJobStatusText.Describe(status));
            await context.CreateTimer(retryAt, CancellationToken.None);
            job = job.Next(context.CurrentUtcDateTime);
            status = await context.CallActivityAsync<SiloJobStatus>(nameof(StartSiloJobActivity), job, TaskPolicies.StorageRetry);
        }
    }

    // One last read at the deadline: a job that ended since the previous poll is not cancelled, and keeps its own end.
    private static async Task<SiloJobStatus> CancelAsync(TaskOrchestrationContext context, SiloJob job)
    {
        var last = await context.CallActivityAsync<SiloJobStatus>(nameof(GetSiloJobActivity), job, TaskPolicies.StorageRetry);
        if (last.IsTerminal)
        {
            return last;
        }

        await context.CallActivityAsync<bool>(nameof(CancelSiloJobActivity), job, TaskPolicies.StorageRetry);
        return last with { State = SiloJobState.Canceled, Detail = $"cancelled at the round deadline while {last.State.ToString().ToLowerInvariant()} ({SiloJobStatusText.Describe(last)})" };
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Silo job {Job} attempt {Attempt} failed ({Status}); it is submitted again")]
    private static partial void LogRetrying(ILogger logger, string job, int attempt, string status);
}
