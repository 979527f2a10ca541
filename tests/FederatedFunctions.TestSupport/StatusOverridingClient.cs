using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// A Durable client that forwards every call to a real one, and reports the runtime status given in <see cref="Overrides"/>
/// for those instances. It shows the routes a state the backend holds only for an instant, such as <c>ContinuedAsNew</c>
/// between two instances of a long run; everything else about the instance is the backend's.
/// </summary>
public sealed class StatusOverridingClient(DurableTaskClient inner) : ForwardingClient(inner)
{
    /// <summary>Instance id → the status to report for it.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, OrchestrationRuntimeStatus> Overrides { get; } = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        Override(await Inner.GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation).ConfigureAwait(false));

    /// <inheritdoc />
    /// <remarks>A status filter applies to the reported statuses: the backend is asked without it and each page is filtered here, so a page may be short.</remarks>
    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) =>
        Pageable.Create<OrchestrationMetadata>(async (token, size, cancellation) =>
        {
            var statuses = filter?.Statuses;
            var unfiltered = filter is null ? null : filter with { Statuses = null };
            await foreach (var page in Inner.GetAllInstancesAsync(unfiltered).AsPages(token, size).WithCancellation(cancellation).ConfigureAwait(false))
            {
                var values = page.Values.Select(m => Override(m)!).Where(m => statuses is null || statuses.Contains(m.RuntimeStatus)).ToList();
                return new Page<OrchestrationMetadata>(values, page.ContinuationToken);
            }

            return new Page<OrchestrationMetadata>([], null);
        });

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
