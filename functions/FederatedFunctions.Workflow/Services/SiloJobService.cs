using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Starts, reads and cancels silo jobs on each silo's compute, and collects their outcomes from the silos' outboxes.</summary>
/// <remarks>
/// <para>For a remote compute the job's document goes to the orchestrator's storage first (a deterministic name, so a retried
/// start rewrites the same bytes), and the compute is given its reference and SHA-256. A run marked cancelled gets no new job,
/// and a job submitted while the cancellation raced it is cancelled at once. The cancellation marker is read again at every
/// read of a running job's state, and the job cancelled when it is set: a job whose orchestration outlived its run's
/// cancellation (a host that died in the middle of it) is cancelled at its next poll.</para>
/// <para>A start that finds its job already ended (a re-executed start, a host restarted after the job ended) collects its
/// outcome as a read does.</para>
/// <para>An ended job's outcome is read from the silo's outbox with the orchestrator's own grant: a completed job without an
/// outcome, or with one for another job, counts as failed.</para>
/// </remarks>
public sealed partial class SiloJobService(ISiloCatalog silos, ICheckpointStore checkpoints, IUpdateStore outboxes, ILogger<SiloJobService> logger)
{
    /// <summary>Where each of a run's silos runs its steps.</summary>
    public SiloPlan Plan(PlanSilosRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return new SiloPlan(request.Silos.Select(silos.Placement).ToArray());
    }

    /// <summary>Submits a job (an inline compute runs it here), or finds the one already submitted under its name.</summary>
    public async Task<SiloJobStatus> StartAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var compute = silos.Compute(job.Step.SiloId);
        if (silos.Placement(job.Step.SiloId).Inline)
        {
            return await RunInlineAsync(compute, job, cancellationToken).ConfigureAwait(false);
        }

        var runId = job.Step.RunId;
        if (await checkpoints.IsCancelledAsync(job.Container, runId, cancellationToken).ConfigureAwait(false))
        {
            return new SiloJobStatus(job.Name, SiloJobState.Canceled, "not-submitted", Detail: "the run is being cancelled");
        }

        var document = JsonSerializer.SerializeToUtf8Bytes(new SiloJobRequest(job.Name, job.Step), JsonDefaults.Documents);
        var request = await checkpoints.PutJobRequestAsync(job.Container, runId, job.Step.Round, job.Name, document, cancellationToken).ConfigureAwait(false);
        var status = await compute.StartAsync(job, request, cancellationToken).ConfigureAwait(false);
        LogSubmitted(logger, job.Name, job.Step.SiloId, status.ComputeStatus);
        if (status.State is SiloJobState.Completed or SiloJobState.Failed)
        {
            return Ended(job, await CollectAsync(job, status, cancellationToken).ConfigureAwait(false));
        }

        if (await checkpoints.IsCancelledAsync(job.Container, runId, cancellationToken).ConfigureAwait(false))
        {
            // The run's cancellation raced this submission: its sweep may have missed the job.
            await compute.CancelAsync(job, cancellationToken).ConfigureAwait(false);
            return Ended(job, status with { State = SiloJobState.Canceled, Detail = "the run is being cancelled" });
        }

        return status;
    }

    /// <summary>Reads a job's state and, once it has ended, its outcome.</summary>
    public async Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var compute = silos.Compute(job.Step.SiloId);
        var status = await compute.GetAsync(job, cancellationToken).ConfigureAwait(false);
        if (status.State is SiloJobState.Completed or SiloJobState.Failed)
        {
            return Ended(job, await CollectAsync(job, status, cancellationToken).ConfigureAwait(false));
        }

        if (!status.IsTerminal && await checkpoints.IsCancelledAsync(job.Container, job.Step.RunId, cancellationToken).ConfigureAwait(false))
        {
            await compute.CancelAsync(job, cancellationToken).ConfigureAwait(false);
            LogCancelled(logger, job.Name, job.Step.SiloId);
            return Ended(job, status with { State = SiloJobState.Canceled, Detail = "the run is being cancelled" });
        }

        return status.IsTerminal ? Ended(job, status) : status;
    }

    /// <summary>Asks a job's compute to cancel it.</summary>
    public async Task<bool> CancelAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        await silos.Compute(job.Step.SiloId).CancelAsync(job, cancellationToken).ConfigureAwait(false);
        LogCancelled(logger, job.Name, job.Step.SiloId);
        return true;
    }

    // An in-process step runs here: its span is this run of it, a failure included (the activity is then retried).
    private static async Task<SiloJobStatus> RunInlineAsync(ISiloCompute compute, SiloJob job, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        try
        {
            var status = await compute.StartAsync(job, null, cancellationToken).ConfigureAwait(false);
            FederatedTelemetry.SiloStepEnded(job, started, DateTimeOffset.UtcNow, status);
            return status;
        }
        catch (Exception ex)
        {
            FederatedTelemetry.SiloStepFailed(job, started, DateTimeOffset.UtcNow, ex);
            throw;
        }
    }

    // A remote job seen to have ended: its span runs from the attempt's submission (orchestration time) to now.
    private static SiloJobStatus Ended(SiloJob job, SiloJobStatus status)
    {
        var now = DateTimeOffset.UtcNow;
        FederatedTelemetry.SiloStepEnded(job, job.SubmittedAt is { } at ? new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)) : now, now, status);
        return status;
    }

    private async Task<SiloJobStatus> CollectAsync(SiloJob job, SiloJobStatus status, CancellationToken cancellationToken)
    {
        var path = BlobLayout.SiloJobOutcome(job.Step.RunId, job.Step.Round, job.Name);
        var bytes = await outboxes.ReadOutboxAsync(job.Step.SiloId, path, cancellationToken).ConfigureAwait(false);
        SiloJobOutcome? outcome = null;
        try
        {
            outcome = bytes is null ? null : JsonSerializer.Deserialize<SiloJobOutcome>(bytes, JsonDefaults.Documents);
        }
        catch (JsonException)
        {
            // Unreadable: treated as missing below.
        }

        if (outcome is null || outcome.JobName != job.Name)
        {
            return status with
            {
                State = SiloJobState.Failed,
                Result = null,
                Detail = status.State == SiloJobState.Completed ? "the job ended without leaving its outcome in the silo's outbox" : status.Detail ?? "the job ended without an outcome",
            };
        }

        if (outcome.Result is not null && status.State == SiloJobState.Completed)
        {
            return status with { Result = outcome.Result };
        }

        return status with { State = SiloJobState.Failed, Result = null, Failure = outcome.Failure ?? SiloFailures.Failed, Detail = outcome.Message ?? status.Detail };
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Silo job {Job} submitted on silo {SiloId}'s compute: {Status}")]
    private static partial void LogSubmitted(ILogger logger, string job, string siloId, string status);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Information, Message = "Silo job {Job} on silo {SiloId} asked to cancel")]
    private static partial void LogCancelled(ILogger logger, string job, string siloId);
}
