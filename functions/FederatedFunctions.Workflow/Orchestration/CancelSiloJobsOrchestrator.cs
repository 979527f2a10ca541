using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>Cancels the silo jobs a cancelled run had in flight, each with the storage retry policy.</summary>
/// <remarks>
/// Started by the run's cancellation before it terminates the run and its job orchestrations: a job on a provider's compute
/// keeps running when the orchestration waiting for it is terminated, so it is cancelled on the compute here, durably, even
/// if the host restarts in between. The jobs include every later attempt of each step a retry could have moved on to; a job
/// that has already ended, or was never submitted, is left as it is.
/// </remarks>
[DurableTask(nameof(CancelSiloJobsOrchestrator))]
public sealed class CancelSiloJobsOrchestrator : TaskOrchestrator<CancelSiloJobsInput, CancelSiloJobsResult>
{
    /// <summary>The instance id of the sweep of a run's cancellation number <paramref name="sequence"/>.</summary>
    public static string InstanceId(string runId, string sequence) => $"{runId}:cancel-jobs-{sequence}";

    /// <inheritdoc />
    public override async Task<CancelSiloJobsResult> RunAsync(TaskOrchestrationContext context, CancelSiloJobsInput input)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        await Task.WhenAll(input.Jobs.Select(job => context.CallActivityAsync<bool>(nameof(CancelSiloJobActivity), job, TaskPolicies.StorageRetry)));
        return new CancelSiloJobsResult(input.Jobs.Count);
    }
}
