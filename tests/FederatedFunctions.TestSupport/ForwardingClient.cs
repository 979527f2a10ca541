using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// A Durable client that forwards every call to a real one: the base of test clients that change or record one kind of
/// call (<see cref="StatusOverridingClient"/>) and leave the rest to the backend.
/// </summary>
public class ForwardingClient(DurableTaskClient inner) : DurableTaskClient(inner.Name)
{
    /// <summary>The real client.</summary>
    protected DurableTaskClient Inner => inner;

    /// <inheritdoc />
    public override DurableEntityClient Entities => inner.Entities;

    /// <inheritdoc />
    public override Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        inner.GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation);

    /// <inheritdoc />
    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) => inner.GetAllInstancesAsync(filter);

    /// <inheritdoc />
    public override Task<string> ScheduleNewOrchestrationInstanceAsync(TaskName orchestratorName, object? input = null, StartOrchestrationOptions? options = null, CancellationToken cancellation = default) =>
        inner.ScheduleNewOrchestrationInstanceAsync(orchestratorName, input, options, cancellation);

    /// <inheritdoc />
    public override Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default) =>
        inner.RaiseEventAsync(instanceId, eventName, eventPayload, cancellation);

    /// <inheritdoc />
    public override Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        inner.WaitForInstanceStartAsync(instanceId, getInputsAndOutputs, cancellation);

    /// <inheritdoc />
    public override Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        inner.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs, cancellation);

    /// <inheritdoc />
    public override Task TerminateInstanceAsync(string instanceId, TerminateInstanceOptions? options = null, CancellationToken cancellation = default) =>
        inner.TerminateInstanceAsync(instanceId, options, cancellation);

    /// <inheritdoc />
    public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        inner.SuspendInstanceAsync(instanceId, reason, cancellation);

    /// <inheritdoc />
    public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        inner.ResumeInstanceAsync(instanceId, reason, cancellation);

    /// <inheritdoc />
    public override Task<PurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default) =>
        inner.PurgeInstanceAsync(instanceId, options, cancellation);

    /// <inheritdoc />
    public override Task<PurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default) =>
        inner.PurgeAllInstancesAsync(filter, options, cancellation);

    /// <inheritdoc />
    /// <remarks>The real client belongs to whoever made it, and is not disposed here.</remarks>
    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
