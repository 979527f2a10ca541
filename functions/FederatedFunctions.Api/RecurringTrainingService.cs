using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Api;

/// <summary>What one tick of recurring training did.</summary>
/// <param name="Outcome"><c>started</c>, <c>skipped</c>, <c>disabled</c> or <c>failed</c>.</param>
/// <param name="RunId">The run started, or the run still going when skipped.</param>
/// <param name="ResumedFrom">The checkpoint the new run starts from.</param>
/// <param name="Reason">Why nothing was started.</param>
public sealed record RecurringTick(string Outcome, string? RunId, ModelOrigin? ResumedFrom, string? Reason);

/// <summary>Recurring training: each tick starts a run from the stored spec template, warm-started from the previous recurring run's latest checkpoint.</summary>
/// <remarks>
/// A singleton by construction: if the previous recurring run is still pending, running, suspended or between two of its
/// instances (ContinuedAsNew), the tick starts nothing and says why. A tick never throws for what it reads from storage: a
/// missing or invalid template, or a state blob it cannot read, is logged (event 3103) and starts nothing. The Functions
/// timer trigger calls <see cref="TickAsync"/>; so does <c>fl recurring tick</c>.
/// </remarks>
public sealed partial class RecurringTrainingService(
    RunsApi api,
    ICheckpointStore checkpoints,
    IRecurringStore store,
    IOptions<RecurringOptions> options,
    ILogger<RecurringTrainingService> logger)
{
    /// <summary>Runs one tick.</summary>
    public async Task<RecurringTick> TickAsync(DurableTaskClient client, ManagementUrlFactory urls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var o = options.Value;
        if (!o.Enabled)
        {
            LogSkipped(logger, "recurring training is disabled (Recurring:Enabled = false)");
            return new RecurringTick("disabled", null, null, "Recurring:Enabled is false");
        }

        var template = await store.ReadTemplateAsync(cancellationToken).ConfigureAwait(false);
        if (template is null)
        {
            var reason = $"no spec template at {o.Container}/{o.TemplateBlob}";
            LogFailed(logger, reason);
            return new RecurringTick("failed", null, null, reason);
        }

        var parsed = RunSpecParser.Parse(template);
        if (!parsed.IsValid)
        {
            var reason = "the spec template is invalid: " + string.Join("; ", parsed.Errors);
            LogFailed(logger, reason);
            return new RecurringTick("failed", null, null, reason);
        }

        // Any active recurring run blocks the tick, found by id prefix in the task hub itself, so a start whose
        // state write was lost (a crash between the two) still counts. A long run between two of its instances
        // reports ContinuedAsNew: it is active too.
        var active = new OrchestrationQuery
        {
            InstanceIdPrefix = o.RunIdPrefix + "-",
            Statuses = [.. InstanceStarts.Active],
            PageSize = 1,
        };
        await foreach (var running in client.GetAllInstancesAsync(active).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var reason = $"the previous recurring run '{running.InstanceId}' is still {running.RuntimeStatus.ToString().ToLowerInvariant()}";
            LogSkipped(logger, reason);
            return new RecurringTick("skipped", running.InstanceId, null, reason);
        }

        // The state is read only once a run would start: an unreadable one then stops the tick, never an active run's check.
        string? last;
        try
        {
            last = await store.GetLastRunIdAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            var reason = $"the recurring state at {o.Container}/{o.StateBlob} is unreadable ({ex.Message}); fix or delete it";
            LogFailed(logger, reason);
            return new RecurringTick("failed", null, null, reason);
        }

        ModelOrigin? resumeFrom = null;
        if (last is not null)
        {
            var previous = await client.GetInstanceAsync(last, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false);
            if (previous is not null && InstanceStarts.IsActive(previous.RuntimeStatus))
            {
                var reason = $"the previous recurring run '{last}' is still {previous.RuntimeStatus.ToString().ToLowerInvariant()}";
                LogSkipped(logger, reason);
                return new RecurringTick("skipped", last, null, reason);
            }

            var latest = await checkpoints.GetLatestAsync(parsed.Spec!.Checkpoints.Container, last, cancellationToken).ConfigureAwait(false);
            if (latest is not null)
            {
                resumeFrom = new ModelOrigin(last, latest.Round, latest.Model);
            }
        }

        var runId = api.NewRunId(o.RunIdPrefix);
        var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(parsed.Spec! with { RunId = runId }, RunSpecJson.Options);
        var response = await api.StartAsync(client, body, urls, resumeFrom, cancellationToken).ConfigureAwait(false);
        if (response.Status != 202)
        {
            var reason = response.Body is ProblemDocument p ? $"{p.Title} {p.Detail}" : $"status {response.Status}";
            LogFailed(logger, reason);
            return new RecurringTick("failed", runId, resumeFrom, reason);
        }

        await store.SetLastRunIdAsync(runId, cancellationToken).ConfigureAwait(false);
        LogStarted(logger, runId, resumeFrom is null ? "the seeded initialisation" : $"{resumeFrom.RunId} round {resumeFrom.Round}");
        return new RecurringTick("started", runId, resumeFrom, null);
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Recurring training started {RunId} from {Origin}")]
    private static partial void LogStarted(ILogger logger, string runId, string origin);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Recurring training started nothing: {Reason}")]
    private static partial void LogSkipped(ILogger logger, string reason);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Error, Message = "Recurring training could not start a run: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
