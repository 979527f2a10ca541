using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>The <c>local</c> compute: the silo's step runs in the orchestrator's own process, with the silo's credential from the registry.</summary>
/// <remarks>
/// This is the fast simulator ("many silos on one machine"): no job, no wait. It holds every silo's credential, so it is for
/// eyes-on simulation and development; <c>process</c> looks like production, where the orchestrator holds none. What its
/// steps leave in their outboxes is kept in <see cref="RecentBlobs"/> (the host's one instance, when given), so that the
/// aggregation in this process reads it without a download.
/// </remarks>
public sealed class LocalSiloCompute(ISiloRegistry registry, ICheckpointStore checkpoints, SiloProtocol protocol, RecentBlobs? recent = null) : ISiloComputeKind
{
    /// <inheritdoc />
    public string Kind => SiloComputeKinds.Local;

    /// <inheritdoc />
    public bool Inline => true;

    /// <inheritdoc />
    public int DefaultPollSeconds => 1;

    /// <inheritdoc />
    public void Validate(string siloId, SiloEndpoint entry)
    {
    }

    /// <inheritdoc />
    public TrainerIdentity Trainer(string siloId, SiloEndpoint entry) => LocalTrainerIdentity.Value;

    /// <inheritdoc />
    public async Task<SiloJobStatus> StartAsync(SiloJob job, BlobRef? request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var silo = job.Step.SiloId;
        var storage = new BlobSiloStorage(silo, registry.GetContainer(silo), registry.GetOutbox(silo), async (blob, ct) => (await checkpoints.ReadModelAsync(blob, ct).ConfigureAwait(false)).ToArray(), recent);
        var result = await protocol.RunAsync(storage, job.Step, cancellationToken).ConfigureAwait(false);
        return new SiloJobStatus(job.Name, SiloJobState.Completed, "local:completed", result);
    }

    /// <inheritdoc />
    public Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken) =>
        throw new NotSupportedException("An in-process step completes inside StartAsync; there is no job to read.");

    /// <inheritdoc />
    public Task CancelAsync(SiloJob job, CancellationToken cancellationToken) => Task.CompletedTask;
}
