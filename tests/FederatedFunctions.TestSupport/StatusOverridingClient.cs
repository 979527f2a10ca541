using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// A Durable client that forwards every call to a real one, and reports the runtime status given in <see cref="Overrides"/>
/// for those instances. It shows the routes a state the backend holds only for an instant, such as <c>ContinuedAsNew</c>
/// between two instances of a long run; everything else about the instance is the backend's.
/// </summary>
public sealed class StatusOverridingClient(DurableTaskClient inner) : DurableTaskClient(inner.Name)
{
    /// <summary>Instance id → the status to report for it.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, OrchestrationRuntimeStatus> Overrides { get; } = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public override DurableEntityClient Entities => inner.Entities;

    /// <inheritdoc />
    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        Override(await inner.GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation).ConfigureAwait(false));

    /// <inheritdoc />
    /// <remarks>A status filter applies to the reported statuses: the backend is asked without it and each page is filtered here, so a page may be short.</remarks>
    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) =>
        Pageable.Create<OrchestrationMetadata>(async (token, size, cancellation) =>
        {
            var statuses = filter?.Statuses;
            var unfiltered = filter is null ? null : filter with { Statuses = null };
            await foreach (var page in inner.GetAllInstancesAsync(unfiltered).AsPages(token, size).WithCancellation(cancellation).ConfigureAwait(false))
            {
                var values = page.Values.Select(m => Override(m)!).Where(m => statuses is null || statuses.Contains(m.RuntimeStatus)).ToList();
                return new Page<OrchestrationMetadata>(values, page.ContinuationToken);
            }

            return new Page<OrchestrationMetadata>([], null);
        });

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
    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private OrchestrationMetadata? Override(OrchestrationMetadata? meta) =>
        meta is not null && Overrides.TryGetValue(meta.InstanceId, out var status)
            ? new OrchestrationMetadata(meta.Name, meta.InstanceId)
            {
                RuntimeStatus = status,
                CreatedAt = meta.CreatedAt,
                LastUpdatedAt = meta.LastUpdatedAt,
                SerializedInput = meta.SerializedInput,
                SerializedOutput = meta.SerializedOutput,
                SerializedCustomStatus = meta.SerializedCustomStatus,
                FailureDetails = meta.FailureDetails,
                DataConverter = meta.DataConverter,
            }
            : meta;
}
