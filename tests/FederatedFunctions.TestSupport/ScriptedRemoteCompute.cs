using System.Collections.Concurrent;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Silo;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.TestSupport;

/// <summary>What a scripted job does: how many reads it stays queued and running, and how it ends.</summary>
/// <param name="QueuedPolls">Reads that see it queued.</param>
/// <param name="RunningPolls">Reads that then see it running.</param>
/// <param name="End">How it ends: <c>completed</c> (the real silo runner runs the job), <c>failed</c> (no outcome), <c>canceled</c>, or <c>never</c> (stays queued).</param>
/// <param name="Preempted">Whether it falls back from running to queued once, as a preempted low-priority job does.</param>
public sealed record JobScript(int QueuedPolls = 1, int RunningPolls = 1, string End = "completed", bool Preempted = false);

/// <summary>
/// A remote compute for orchestration tests: jobs go through queued and running states over successive reads, and a job that
/// completes is run by the real silo runner (<see cref="SiloJobRunner"/>) from the document the orchestrator wrote, against
/// the in-memory silos. Scripts per (silo, step kind, job attempt) inject failures, stuck queues, cancellations and preemption.
/// </summary>
public sealed class ScriptedRemoteCompute(InMemorySiloBackend silos, InMemoryBlobs blobs) : ISiloCompute
{
    private readonly ConcurrentDictionary<string, (SiloJob Job, BlobRef Request, int Polls, SiloJobState State)> jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SiloJobStatus> last = new(StringComparer.Ordinal);

    /// <summary>Scripts by silo, step kind and job attempt; the default completes after one queued and one running read.</summary>
    public ConcurrentDictionary<(string Silo, string Kind, int Attempt), JobScript> Scripts { get; } = new();

    /// <summary>Every submission that created a job (a second start of the same name is not one).</summary>
    public ConcurrentBag<string> Submitted { get; } = [];

    /// <summary>Every cancellation asked for.</summary>
    public ConcurrentBag<string> Cancelled { get; } = [];

    /// <summary>Every read of a job's state.</summary>
    public ConcurrentBag<string> Reads { get; } = [];

    private JobScript Script(SiloJob job) => Scripts.TryGetValue((job.Step.SiloId, job.Step.Kind, job.Attempt), out var s) ? s : new JobScript();

    public Task<SiloJobStatus> StartAsync(SiloJob job, BlobRef? request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        if (jobs.TryAdd(job.Name, (job, request, 0, SiloJobState.Queued)))
        {
            Submitted.Add(job.Name);
            return Task.FromResult(new SiloJobStatus(job.Name, SiloJobState.Queued, "scripted:Queued"));
        }

        // Submitted before: as a real compute does, it answers with that job's state, ended or not.
        return Task.FromResult(last.TryGetValue(job.Name, out var status) ? status : new SiloJobStatus(job.Name, SiloJobState.Queued, "scripted:Queued"));
    }

    public async Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        Reads.Add(job.Name);
        var status = await ReadAsync(job, cancellationToken);
        last[job.Name] = status;
        return status;
    }

    private async Task<SiloJobStatus> ReadAsync(SiloJob job, CancellationToken cancellationToken)
    {
        if (!jobs.TryGetValue(job.Name, out var entry))
        {
            return new SiloJobStatus(job.Name, SiloJobState.Failed, "scripted:NotFound");
        }

        if (entry.State == SiloJobState.Canceled)
        {
            return new SiloJobStatus(job.Name, SiloJobState.Canceled, "scripted:Canceled");
        }

        var script = Script(job);
        var polls = entry.Polls + 1;
        jobs[job.Name] = entry with { Polls = polls };
        var preemption = script.Preempted ? 1 : 0;
        if (script.End == "never" || polls <= script.QueuedPolls)
        {
            return new SiloJobStatus(job.Name, SiloJobState.Queued, "scripted:Queued");
        }

        if (polls <= script.QueuedPolls + script.RunningPolls + (2 * preemption))
        {
            // A preempted job goes back to the queue once, in the middle of its run, and then runs again.
            var requeued = script.Preempted && polls == script.QueuedPolls + script.RunningPolls;
            return requeued ? new SiloJobStatus(job.Name, SiloJobState.Queued, "scripted:Queued (preempted)") : new SiloJobStatus(job.Name, SiloJobState.Running, "scripted:Running");
        }

        switch (script.End)
        {
            case "failed":
                return new SiloJobStatus(job.Name, SiloJobState.Failed, "scripted:Failed", Detail: "exit code 1");
            case "canceled":
                return new SiloJobStatus(job.Name, SiloJobState.Canceled, "scripted:Canceled", Detail: "canceled on the compute");
            default:
                var (code, _) = await new SiloJobRunner(new SiloProtocol(new SiloDataCache())).RunAsync(silos.Storage(job.Step.SiloId), entry.Request, null, cancellationToken);
                return code == SiloJobRunner.Succeeded
                    ? new SiloJobStatus(job.Name, SiloJobState.Completed, "scripted:Completed")
                    : new SiloJobStatus(job.Name, SiloJobState.Failed, "scripted:Failed", Detail: $"exit code {code}");
        }
    }

    public Task CancelAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        Cancelled.Add(job.Name);
        if (jobs.TryGetValue(job.Name, out var entry) && !(last.TryGetValue(job.Name, out var status) && status.IsTerminal))
        {
            jobs[job.Name] = entry with { State = SiloJobState.Canceled };
            last[job.Name] = new SiloJobStatus(job.Name, SiloJobState.Canceled, "scripted:Canceled");
        }

        return Task.CompletedTask;
    }

    /// <summary>The job documents the orchestrator wrote, by URI (for assertions).</summary>
    public IEnumerable<string> Documents => blobs.Items.Keys.Where(k => k.StartsWith("mem://orchestrator/", StringComparison.Ordinal) && k.Contains("/jobs/", StringComparison.Ordinal));

    /// <summary>The outcomes the silo runner left in the silos' outboxes, by URI.</summary>
    public IEnumerable<string> Outcomes => blobs.Items.Keys.Where(k => !k.StartsWith("mem://orchestrator/", StringComparison.Ordinal) && k.Contains("/outbox/", StringComparison.Ordinal) && k.Contains("/jobs/", StringComparison.Ordinal));
}
