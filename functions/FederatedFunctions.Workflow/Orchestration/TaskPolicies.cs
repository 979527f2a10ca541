using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.DurableTask;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>The retry policies of the workflow's activities, and the backoff between silo job attempts.</summary>
public static class TaskPolicies
{
    /// <summary>Storage outages of up to about half a minute (a storage restart, a throttling burst) are ridden out.</summary>
    /// <remarks>A round whose every update was refused is refused again on retry, and a model that does not fit never will, so those are not retried.</remarks>
    public static TaskOptions StorageRetry { get; } = TaskOptions.FromRetryPolicy(new RetryPolicy(
        maxNumberOfAttempts: 6,
        firstRetryInterval: TimeSpan.FromSeconds(1),
        backoffCoefficient: 2.0,
        maxRetryInterval: TimeSpan.FromSeconds(15))
    {
        HandleFailure = failure => !failure.IsCausedBy<NoAcceptedUpdatesException>() && !failure.IsCausedBy<IncompatibleCheckpointException>() && !failure.IsCausedBy<Core.Models.InvalidScriptException>(),
    });

    /// <summary>The retry options of a silo step that runs in process, from the spec. Bad data is not retried: it does not get better.</summary>
    public static TaskOptions SiloRetry(RetrySpec retry)
    {
        ArgumentNullException.ThrowIfNull(retry);
        return TaskOptions.FromRetryPolicy(new RetryPolicy(
            maxNumberOfAttempts: retry.MaxAttempts,
            firstRetryInterval: TimeSpan.FromSeconds(retry.FirstIntervalSeconds),
            backoffCoefficient: retry.BackoffCoefficient,
            maxRetryInterval: TimeSpan.FromSeconds(retry.MaxIntervalSeconds))
        {
            HandleFailure = failure => !failure.IsCausedBy<DataValidationException>(),
        });
    }

    /// <summary>The wait before a silo job's attempt <paramref name="nextAttempt"/> (2 or more), as the spec's retry policy says.</summary>
    public static TimeSpan Backoff(RetrySpec retry, int nextAttempt)
    {
        ArgumentNullException.ThrowIfNull(retry);
        var seconds = retry.FirstIntervalSeconds * Math.Pow(retry.BackoffCoefficient, Math.Max(0, nextAttempt - 2));
        return TimeSpan.FromSeconds(Math.Min(seconds, retry.MaxIntervalSeconds));
    }
}
