using FederatedFunctions.Core.Silos;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Logging.Abstractions;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Services;

/// <summary>Starting, reading and cancelling silo jobs on a remote compute, as the job orchestration's activities do.</summary>
public sealed class SiloJobServiceTests
{
    private readonly InMemoryBlobs blobs = new();
    private readonly InMemoryCheckpointStore store;
    private readonly InMemorySiloBackend backend;
    private readonly ScriptedRemoteCompute compute;
    private readonly SiloJobService service;

    public SiloJobServiceTests()
    {
        store = new InMemoryCheckpointStore(blobs);
        backend = new InMemorySiloBackend(blobs, Data.ToDictionary(d => d.SiloId)) { Checkpoints = store };
        compute = new ScriptedRemoteCompute(backend, blobs);
        backend.Remote = compute;
        backend.RemoteSilos.UnionWith(Data.Select(d => d.SiloId));
        service = new SiloJobService(backend, store, backend, NullLogger<SiloJobService>.Instance);
    }

    private static SiloJob KeyJob(string runId) => SiloJob.First("checkpoints", new SiloStep(Key: new MaskingKeyRequest(runId, 1, 0, Data[0].SiloId)));

    [Fact]
    public async Task StartAsync_JobThatHasEndedSinceItWasSubmitted_ReturnsItsOutcomeNotJustItsStatus()
    {
        // A host that restarts after the job ended starts it again: the compute answers with the ended job, whose result is
        // in the silo's outbox.
        var job = KeyJob("svc-ended");
        Assert.Equal(SiloJobState.Queued, (await service.StartAsync(job, default)).State);
        SiloJobStatus read;
        do
        {
            read = await service.GetAsync(job, default);
        }
        while (!read.IsTerminal);

        Assert.NotNull(read.Result?.Key);
        var again = await service.StartAsync(job, default);
        Assert.Equal(SiloJobState.Completed, again.State);
        Assert.Equal(read.Result!.Key!.PublicKey, again.Result?.Key?.PublicKey);
        Assert.Single(compute.Submitted);
    }

    [Fact]
    public async Task GetAsync_RunMarkedCancelled_CancelsTheJobStillGoingOnItsCompute()
    {
        // The job orchestration of a run whose cancellation did not terminate it (the host died in between) cancels its job
        // at its next read.
        var job = KeyJob("svc-cancelled");
        compute.Scripts[(Data[0].SiloId, SiloStepKinds.Key, 1)] = new JobScript(End: "never");
        await service.StartAsync(job, default);
        Assert.Equal(SiloJobState.Queued, (await service.GetAsync(job, default)).State);

        await store.SetCancelledAsync("checkpoints", "svc-cancelled", cancelled: true, default);
        var read = await service.GetAsync(job, default);

        Assert.Equal(SiloJobState.Canceled, read.State);
        Assert.Equal([job.Name], compute.Cancelled);
        Assert.Equal(SiloJobState.Canceled, (await compute.GetAsync(job, default)).State);
    }

    [Fact]
    public void ThisAndLaterAttempts_AreEveryAttemptARetryCanReach_UnderTheirNames()
    {
        var first = KeyJob("svc-attempts");
        var second = first.Next();
        Assert.Equal([first.Name, second.Name, second.Next().Name], first.ThisAndLaterAttempts(new Core.Specs.RetrySpec { MaxAttempts = 3 }).Select(j => j.Name));
        Assert.Equal([second.Name], second.ThisAndLaterAttempts(new Core.Specs.RetrySpec { MaxAttempts = 1 }).Select(j => j.Name));
    }

    [Fact]
    public void JobNames_OfAResumedRun_DifferFromTheFirstStartsAndKeepTheirEpochAcrossAttempts()
    {
        var step = new SiloStep(Key: new MaskingKeyRequest("svc-epoch", 1, 0, Data[0].SiloId));
        var epoch = Epochs.New();
        var resumed = SiloJob.First("checkpoints", step, epoch);
        Assert.Equal($"fl-svc-epoch-key-r00001-a00-{Data[0].SiloId}-{epoch}-j1", resumed.Name);
        Assert.Equal($"fl-svc-epoch-key-r00001-a00-{Data[0].SiloId}-{epoch}-j2", resumed.Next().Name);
        Assert.NotEqual(SiloJob.First("checkpoints", step).Name, resumed.Name);
        Assert.NotEqual(resumed.Name, SiloJob.First("checkpoints", step, Epochs.New()).Name);
        Assert.Matches("^e[0-9a-f]{6}$", epoch);
    }
}
