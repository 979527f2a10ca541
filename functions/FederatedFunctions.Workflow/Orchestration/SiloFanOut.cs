using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>What one silo's step gave: its result, or why there is none.</summary>
/// <param name="SiloId">The silo.</param>
/// <param name="Result">The step's result.</param>
/// <param name="Failure">Why there is no result: <c>bad-data</c>, the caller's failure reason, <c>canceled</c>, or <c>late</c>.</param>
public sealed record SiloCall<T>(string SiloId, T? Result, RejectedUpdate? Failure)
    where T : class;

/// <summary>One silo step per silo at once, on each silo's own compute, awaited together or until a deadline.</summary>
/// <remarks>
/// <para>A silo whose compute runs in process gets one activity, retried per the run's policy. A silo on a remote compute
/// gets a <see cref="SiloJobOrchestrator"/> (submit, wait on durable timers, collect), whose instance id is the step's
/// (and the epoch's, after a resume), so a replay or a redone round finds the same job, and a resumed run new ones.</para>
/// <para>Past the deadline the fan-in stops waiting: the remote jobs still going are cancelled by their own orchestrations,
/// which know the deadline and report how far their jobs got, and every silo without a result is recorded as <c>late</c>;
/// a late result is never read. Training, evaluation and the steps of secure aggregation all use this one fan-out.</para>
/// </remarks>
public sealed class SiloFanOut(TaskOrchestrationContext context, SiloPlan plan, string container, RetrySpec retry, string? epoch)
{
    /// <summary>Runs <paramref name="step"/> on every silo of <paramref name="silos"/>.</summary>
    /// <param name="silos">The silos, in the order of the results.</param>
    /// <param name="step">The step of a silo.</param>
    /// <param name="pick">The part of a step result the caller wants; null counts as a failure.</param>
    /// <param name="failedReason">The reason code of a step that failed after its retries (bad data is always <c>bad-data</c>).</param>
    /// <param name="what">What a step delivers, for messages: e.g. <c>result</c>, <c>self-mask seed</c>.</param>
    /// <param name="deadlineSeconds">How long the fan-in waits; null waits for every silo.</param>
    public Task<IReadOnlyList<SiloCall<T>>> RunAsync<T>(IReadOnlyList<string> silos, Func<string, SiloStep> step, Func<SiloStepResult, T?> pick, string failedReason, string what, int? deadlineSeconds)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentNullException.ThrowIfNull(step);
        return RunAsync(silos.Select(step).ToArray(), pick, failedReason, what, deadlineSeconds);
    }

    /// <summary>Runs each of <paramref name="steps"/> on its silo's compute (a silo may have several, e.g. groups of virtual silos).</summary>
    /// <param name="steps">The steps, in the order of the results; their names must differ.</param>
    /// <param name="pick">The part of a step result the caller wants; null counts as a failure.</param>
    /// <param name="failedReason">The reason code of a step that failed after its retries (bad data is always <c>bad-data</c>).</param>
    /// <param name="what">What a step delivers, for messages.</param>
    /// <param name="deadlineSeconds">How long the fan-in waits; null waits for every step.</param>
    public async Task<IReadOnlyList<SiloCall<T>>> RunAsync<T>(IReadOnlyList<SiloStep> steps, Func<SiloStepResult, T?> pick, string failedReason, string what, int? deadlineSeconds)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(steps);
        ArgumentNullException.ThrowIfNull(pick);
        var silos = steps.Select(s => s.SiloId).ToArray();
        DateTime? deadlineAt = deadlineSeconds is { } d ? context.CurrentUtcDateTime.AddSeconds(d) : null;
        var calls = steps.Select(s => CallAsync(s, pick, failedReason, what, deadlineAt)).ToArray();
        if (await AllWithinDeadlineAsync(calls, deadlineAt))
        {
            return calls.Select(c => c.Result).ToArray();
        }

        // The remote jobs still going are being cancelled at this same deadline by their orchestrations, which then answer
        // with how far each job got.
        var late = new Dictionary<int, string>();
        for (var i = 0; i < calls.Length; i++)
        {
            if (!calls[i].IsCompleted)
            {
                late[i] = $"no {what} within the round deadline of {deadlineSeconds} s";
            }
        }

        var remote = late.Keys.Where(i => !plan.For(silos[i]).Inline).ToArray();
        await Task.WhenAll(remote.Select(i => calls[i]));
        foreach (var i in remote)
        {
            if (calls[i].Result.Failure is { } failure)
            {
                late[i] += $"; {failure.Detail}";
            }
        }

        return calls.Select((c, i) => late.TryGetValue(i, out var detail) ? new SiloCall<T>(silos[i], null, new RejectedUpdate(silos[i], "late", detail)) : c.Result).ToArray();
    }

    private async Task<SiloCall<T>> CallAsync<T>(SiloStep step, Func<SiloStepResult, T?> pick, string failedReason, string what, DateTime? deadlineAt)
        where T : class
    {
        var placement = plan.For(step.SiloId);
        var job = SiloJob.First(container, step, epoch, context.CurrentUtcDateTime);
        SiloJobStatus status;
        try
        {
            status = placement.Inline
                ? await context.CallActivityAsync<SiloJobStatus>(nameof(StartSiloJobActivity), job, TaskPolicies.SiloRetry(retry))
                : await context.CallSubOrchestratorAsync<SiloJobStatus>(
                    nameof(SiloJobOrchestrator),
                    new SiloJobInput(job, retry, placement.PollSeconds, deadlineAt),
                    new SubOrchestrationOptions(TaskPolicies.StorageRetry, SiloJobOrchestrator.InstanceId(step, epoch)));
        }
        catch (TaskFailedException ex)
        {
            var reason = ex.FailureDetails.IsCausedBy<DataValidationException>() ? "bad-data" : failedReason;
            return new SiloCall<T>(step.SiloId, null, new RejectedUpdate(step.SiloId, reason, ex.FailureDetails.ErrorMessage));
        }

        return status.State switch
        {
            SiloJobState.Completed when status.Result is not null && pick(status.Result) is { } result => new SiloCall<T>(step.SiloId, result, null),
            SiloJobState.Completed => new SiloCall<T>(step.SiloId, null, new RejectedUpdate(step.SiloId, failedReason, $"the silo's {step.Kind} step completed without a {what}")),
            SiloJobState.Canceled => new SiloCall<T>(step.SiloId, null, new RejectedUpdate(step.SiloId, "canceled", $"job {status.Name}: {SiloJobStatusText.Describe(status)}")),
            _ => new SiloCall<T>(step.SiloId, null, new RejectedUpdate(step.SiloId, status.Failure == SiloFailures.BadData ? "bad-data" : failedReason, $"job {status.Name}: {SiloJobStatusText.Describe(status)}")),
        };
    }

    // A durable timer raced against the fan-in; the timer is cancelled when the fan-in wins, so it does not keep the
    // orchestration waiting.
    private async Task<bool> AllWithinDeadlineAsync(Task[] tasks, DateTime? deadlineAt)
    {
        var all = Task.WhenAll(tasks);
        if (deadlineAt is not { } at)
        {
            await all;
            return true;
        }

        using var cts = new CancellationTokenSource();
        var deadline = context.CreateTimer(at, cts.Token);
        if (await Task.WhenAny(all, deadline) == all)
        {
            // Cancel, not CancelAsync: orchestrator code must go on on the orchestration's own thread.
#pragma warning disable CA1849
            cts.Cancel();
#pragma warning restore CA1849
            return true;
        }

        return false;
    }
}
