using System.Globalization;
using System.Security.Cryptography;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api;

/// <summary>Starting an orchestration under a caller's id, once: shared by the runs and analyses APIs.</summary>
public static class InstanceStarts
{
    /// <summary>
    /// The runtime statuses of an instance that is still going: a start under its id is refused. <c>ContinuedAsNew</c> is
    /// one: a long run reports it between two of its instances (<c>orchestration.roundsPerInstance</c>).
    /// </summary>
#pragma warning disable CS0618 // ContinuedAsNew is obsolete in the SDK, but backends still report it between executions.
    public static readonly OrchestrationRuntimeStatus[] Active =
        [OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Suspended, OrchestrationRuntimeStatus.ContinuedAsNew];
#pragma warning restore CS0618

    /// <summary>Whether <paramref name="status"/> is one of <see cref="Active"/>.</summary>
    public static bool IsActive(OrchestrationRuntimeStatus status) => Active.Contains(status);

    /// <summary>
    /// Schedules <paramref name="orchestrator"/> as instance <paramref name="instanceId"/>, refused by the backend while
    /// an instance of that id is active. Returns null when scheduled, or the status of the instance that won a race
    /// with a concurrent start of the same id.
    /// </summary>
    /// <remarks>Any other failure to schedule is thrown.</remarks>
    public static async Task<OrchestrationRuntimeStatus?> ScheduleOnceAsync(DurableTaskClient client, TaskName orchestrator, object input, string instanceId, CancellationToken cancellationToken)
    {
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(
                orchestrator,
                input,
                new StartOrchestrationOptions(instanceId).WithDedupeStatuses(Active),
                cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Lost a race with a concurrent start of the same id: the dedupe check refused the second one.
            if (await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false) is { } raced && IsActive(raced.RuntimeStatus))
            {
                return raced.RuntimeStatus;
            }

            throw;
        }
    }

    /// <summary>A fresh id: <c>{prefix}-{yyyyMMdd-HHmmss}-{4 hex}</c>.</summary>
    public static string NewId(TimeProvider time, string prefix) =>
        $"{prefix}-{time.GetUtcNow().ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2))}";
}
