using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Api;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>The result of a local run, as printed in the summary and the <c>--json</c> line.</summary>
public sealed record RunReport(string RunId, int Rounds, double? FinalAccuracy, double? FinalLoss, string Checkpoint, string Manifest, string Backend, double Seconds, Core.Runs.CrossSiteMatrix? CrossSite = null);

/// <summary>Starts (or re-attaches to) a training run on a local host and shows it round by round.</summary>
public sealed class RunRunner(LocalDurableHost host, TextWriter output)
{
    /// <summary>Checks that every silo of the spec is in the registry with a usable compute and outbox reader, before any work is scheduled.</summary>
    /// <exception cref="SiloRegistryException">A silo is missing or its entry is invalid; the message names the silo and the field.</exception>
    public void CheckSilos(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var catalog = host.Services.GetRequiredService<Workflow.Abstractions.ISiloCatalog>();
        var registry = host.Services.GetRequiredService<ISiloRegistry>();
        foreach (var silo in spec.Silos)
        {
            catalog.Placement(silo);
            registry.GetOutboxReader(silo);
        }
    }

    /// <summary>
    /// Schedules the run unless an instance with its id is already pending or running (then it re-attaches:
    /// this is how a run on the durable backend continues after a host restart), and waits for it.
    /// </summary>
    public async Task<RunReport> RunAsync(RunSpec spec, string runId, string backend, CancellationToken cancellationToken)
    {
        var client = host.Client;
        var stopwatch = Stopwatch.StartNew();
        var existing = await client.GetInstanceAsync(runId, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false);
        if (existing is { RuntimeStatus: OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended })
        {
            await output.WriteLineAsync($"Run {runId} is already {existing.RuntimeStatus.ToString().ToLowerInvariant()}: attaching to it.").ConfigureAwait(false);
        }
        else if (existing is { RuntimeStatus: OrchestrationRuntimeStatus.Completed })
        {
            await output.WriteLineAsync($"Run {runId} has already completed.").ConfigureAwait(false);
        }
        else
        {
            // Started through the same handler as POST /api/runs, so its rules hold here too: run ids are never
            // reused, and a start that races another with the same id is refused.
            var started = await host.Services.GetRequiredService<RunsApi>().StartAsync(
                client,
                JsonSerializer.SerializeToUtf8Bytes(spec with { RunId = runId }, RunSpecJson.Options),
                ManagementUrls.ApiRoutes,
                cancellationToken).ConfigureAwait(false);
            if (started.Status != 202)
            {
                throw new RunFailedException(runId, "not started", started.Body is ProblemDocument p ? $"{p.Title} {p.Detail}" : $"status {started.Status}");
            }
        }

        return await WatchAsync(runId, VirtualSilos.ParticipantCount(spec), backend, stopwatch, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Resumes a run whose orchestration was lost, failed or was cancelled, from its latest checkpoint
    /// (<see cref="RunsApi.ResumeAsync"/>), and waits for it; attaches when it is already running, and reports it when
    /// its orchestration has completed (a run whose history was purged after its last round is refused: nothing to report from).
    /// </summary>
    /// <exception cref="RunFailedException">Nothing to resume, or the run did not complete.</exception>
    public async Task<RunReport> ResumeAsync(string runId, string? container, string backend, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var response = await host.Services.GetRequiredService<RunsApi>().ResumeAsync(host.Client, runId, container, ManagementUrls.ApiRoutes, cancellationToken).ConfigureAwait(false);
        if (response.Status == 409 && response.Body is ProblemDocument { Type: var type } && type.EndsWith("run-running", StringComparison.Ordinal))
        {
            await output.WriteLineAsync($"Run {runId} is already running: attaching to it.").ConfigureAwait(false);
        }
        else if (response.Status == 409 && response.Body is ProblemDocument { Type: var done } && done.EndsWith("run-completed", StringComparison.Ordinal)
            && await host.Client.GetInstanceAsync(runId, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false) is { RuntimeStatus: OrchestrationRuntimeStatus.Completed })
        {
            // Completed with its history still there: reported as fl train reports it. This host's worker starts before the
            // check, so a run that was still going when the command was typed can finish before it is looked at.
            await output.WriteLineAsync($"Run {runId} has already completed.").ConfigureAwait(false);
        }
        else if (response.Status != 202)
        {
            throw new RunFailedException(runId, "not resumed", response.Body is ProblemDocument p ? $"{p.Title} {p.Detail}" : $"status {response.Status}");
        }
        else
        {
            await output.WriteLineAsync($"Run {runId} resumed from its latest checkpoint.").ConfigureAwait(false);
        }

        var meta = await host.Client.GetInstanceAsync(runId, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        var silos = meta?.ReadInputAs<TrainingState>()?.Spec is { } resumed ? VirtualSilos.ParticipantCount(resumed) : 0;
        return await WatchAsync(runId, silos, backend, stopwatch, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How long the watch tolerates an unreachable durable backend before it gives up.</summary>
    public static readonly TimeSpan UnreachableLimit = TimeSpan.FromMinutes(2);

    private async Task<RunReport> WatchAsync(string runId, int siloCount, string backend, Stopwatch stopwatch, CancellationToken cancellationToken)
    {
        var client = host.Client;
        await output.WriteLineAsync($"{"round",5}  {"silos",7}  {"examples",9}  {"train loss",10}  {"eval acc",8}  {"eval loss",9}  {"seconds",7}").ConfigureAwait(false);
        var printed = 0;
        OrchestrationMetadata? meta;
        var unreachableSince = (DateTime?)null;

        // One wait for the run's end over the whole watch, started again only when it failed: the backend's completion
        // poll keeps its own pace, rather than starting again from its shortest interval at every progress tick.
        using var watchEnds = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task? ended = null;
        try
        {
            while (true)
            {
                try
                {
                    meta = await client.GetInstanceAsync(runId, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
                    unreachableSince = null;
                }
                catch (Grpc.Core.RpcException ex) when (ex.StatusCode is not Grpc.Core.StatusCode.Cancelled)
                {
                    // The backend's storage is briefly unreachable (a restart, a network blip): the run itself goes on in
                    // storage, so the watch waits rather than giving up, for as long as the storage retries last and more.
                    unreachableSince ??= DateTime.UtcNow;
                    if (DateTime.UtcNow - unreachableSince > UnreachableLimit)
                    {
                        throw;
                    }

                    await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (meta?.SerializedCustomStatus is not null)
                {
                    var status = meta.ReadCustomStatusAs<RunStatus>();
                    foreach (var round in status?.Recent.Where(r => r.Round > printed) ?? [])
                    {
                        await output.WriteLineAsync(FormatRound(round, siloCount)).ConfigureAwait(false);
                        printed = round.Round;
                    }
                }

                if (meta is { IsCompleted: true })
                {
                    break;
                }

                if (ended is null || ended.IsFaulted || ended.IsCanceled)
                {
                    await Concurrent.Observed(ended).ConfigureAwait(false);
                    ended = client.WaitForInstanceCompletionAsync(runId, getInputsAndOutputs: false, watchEnds.Token);
                }

                // Until the run ends or the interval passes, whichever is first, so a short run is not measured (or
                // reported) up to an interval late. A wait that failed (the backend unreachable, say) is started again
                // only after the interval; one that ended while the run had not, which should not happen, is not.
                var tick = Task.Delay(ProgressInterval, cancellationToken);
                if (ended.IsCompleted || await Task.WhenAny(ended, tick).ConfigureAwait(false) != ended || !ended.IsCompletedSuccessfully)
                {
                    await tick.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await watchEnds.CancelAsync().ConfigureAwait(false);
            await Concurrent.Observed(ended).ConfigureAwait(false);
        }

        if (meta.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            throw new RunFailedException(runId, meta.RuntimeStatus.ToString(), RunFailures.Message(meta) ?? "no details");
        }

        var outcome = meta.ReadOutputAs<TrainingOutcome>() ?? throw new RunFailedException(runId, "Completed", "the run returned no outcome");
        Core.Runs.CrossSiteMatrix? crossSite = null;
        if (outcome.CrossSite is { } matrix)
        {
            var bytes = await host.Services.GetRequiredService<Workflow.Abstractions.ICheckpointStore>().ReadModelAsync(matrix, cancellationToken).ConfigureAwait(false);
            crossSite = JsonSerializer.Deserialize<Core.Runs.CrossSiteMatrix>(bytes.Span, Core.JsonDefaults.Documents);
        }

        // How long the run took, from its own start: a watch that attached to a run started by an earlier process (a restart,
        // fl resume) saw only its end.
        // Until its first ContinueAsNew a run's stored input has no StartedAt (the orchestrator sets it in memory), and the
        // instance's creation is the run's start.
        var state = meta.ReadInputAs<TrainingState>();
        var runStart = state?.StartedAt ?? (state is { Generation: 0 } ? meta.CreatedAt.UtcDateTime : null);
        var seconds = runStart is { } started && meta.LastUpdatedAt.UtcDateTime >= started
            ? Math.Max(stopwatch.Elapsed.TotalSeconds, (meta.LastUpdatedAt.UtcDateTime - started).TotalSeconds)
            : stopwatch.Elapsed.TotalSeconds;
        return new RunReport(runId, outcome.Rounds, outcome.FinalAccuracy, outcome.FinalLoss, outcome.FinalModel.Uri, outcome.FinalManifest.Uri, backend, seconds, crossSite);
    }

    /// <summary>How often the watch prints the rounds committed since it last looked, while it waits for the run to end.</summary>
    public static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The cross-site matrix as a table of accuracies: one row per model, one column per silo's test split.</summary>
    public static string FormatCrossSite(Core.Runs.CrossSiteMatrix matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        var ci = CultureInfo.InvariantCulture;
        var width = Math.Max(18, matrix.Models.Max(m => m.Length) + 6);
        var column = Math.Max(9, matrix.Silos.Max(s => s.Length));
        var text = new System.Text.StringBuilder();
        text.Append("model \\ test split".PadRight(width));
        foreach (var silo in matrix.Silos)
        {
            text.Append("  ").Append(silo.PadLeft(column));
        }

        text.AppendLine();
        foreach (var model in matrix.Models)
        {
            text.Append((model == Core.Runs.CrossSiteMatrix.Global ? "global" : model + " local").PadRight(width));
            foreach (var silo in matrix.Silos)
            {
                var cell = matrix.Cell(model, silo);
                text.Append("  ").Append((cell is null ? "failed" : cell.Accuracy.ToString("P1", ci)).PadLeft(column));
            }

            text.AppendLine();
        }

        return text.ToString();
    }

    /// <summary>One line of the live view.</summary>
    public static string FormatRound(RoundSummary r, int siloCount)
    {
        ArgumentNullException.ThrowIfNull(r);
        var ci = CultureInfo.InvariantCulture;
        var line = string.Format(
            ci,
            "{0,5}  {1,7}  {2,9}  {3,10}  {4,8}  {5,9}  {6,7:0.0}",
            r.Round,
            $"{r.Participants}/{siloCount}",
            r.Examples?.ToString(ci) ?? "-",
            r.TrainLoss?.ToString("0.0000", ci) ?? "-",
            r.EvalAccuracy?.ToString("0.0000", ci) ?? "-",
            r.EvalLoss?.ToString("0.0000", ci) ?? "-",
            r.Seconds);
        return r.Rejected == 0 ? line : line + $"  ({r.Rejected} rejected: see fl checkpoints)";
    }
}

/// <summary>A run ended in a state other than completed.</summary>
public sealed class RunFailedException(string runId, string status, string detail)
    : Exception($"Run {runId} ended {status.ToLowerInvariant()}: {detail}");
