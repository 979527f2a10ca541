using System.Text;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Api;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.TestSupport;

/// <summary>The state of the previous recurring run (the one the state blob names, under the run id prefix) when a tick fires.</summary>
public enum PreviousRun
{
    /// <summary>No recurring run yet: the first tick.</summary>
    None,

    /// <summary>Scheduled, not started (no worker has picked it up).</summary>
    Pending,

    /// <summary>Training.</summary>
    Running,

    /// <summary>Suspended by an operator.</summary>
    Suspended,

    /// <summary>Between two instances of a long run (<c>orchestration.roundsPerInstance</c>).</summary>
    ContinuedAsNew,

    /// <summary>Completed every round.</summary>
    Completed,

    /// <summary>Failed (every silo failed) after its round 0.</summary>
    Failed,

    /// <summary>Cancelled after its first round.</summary>
    Terminated,

    /// <summary>Completed, then its instance history purged; its checkpoints stay.</summary>
    Purged,
}

/// <summary>How recurring training is set up when a tick fires.</summary>
public enum RecurringSetup
{
    /// <summary>Enabled, a valid spec template, and the state naming the previous run.</summary>
    Enabled,

    /// <summary>As <see cref="Enabled"/>, with <c>Recurring__Enabled=false</c>.</summary>
    Disabled,

    /// <summary>As <see cref="Enabled"/>, without a template blob.</summary>
    NoTemplate,

    /// <summary>As <see cref="Enabled"/>, with a template blob that is not JSON.</summary>
    TemplateNotJson,

    /// <summary>As <see cref="Enabled"/>, with a state blob that is not JSON.</summary>
    StateNotJson,
}

/// <summary>What one tick did, as a host shows it: the run it started (and what its round 0 is) or why it started none, and the event it logged.</summary>
/// <param name="Text">The answer as the table shows it.</param>
/// <param name="EventId">The event <see cref="RecurringTrainingService"/> logs.</param>
/// <param name="Marker">
/// Text of the logged reason that tells this answer from the others of its event id; null for a start, which its round-0
/// manifest tells apart.
/// </param>
public sealed record TickAnswer(string Text, int EventId, string? Marker)
{
    /// <summary>Whether the tick starts a run.</summary>
    public bool Starts => Marker is null;

    /// <inheritdoc />
    public override string ToString() => $"{Text} ({EventId})";
}

/// <summary>
/// Recurring training's "routes" (the Functions timer <c>RecurringTraining</c> and <c>fl recurring tick</c>, both through
/// <see cref="RecurringTrainingService"/>) crossed with every state the previous recurring run can be in and every way the
/// feature can be set up: the one answer of each cell. The source of the table under "Recurring training" in
/// <c>docs/api.md</c> (checked against it) and of the tests that make every cell on both hosts. No cell throws.
/// </summary>
public static class RecurringMatrix
{
    /// <summary>The markers around the table in <c>docs/api.md</c>.</summary>
    public const string BeginMarker = "<!-- recurring-training matrix: generated from tests/FederatedFunctions.TestSupport/RecurringMatrix.cs; RouteMatrixDocsTests checks it -->";

    /// <summary>The end marker.</summary>
    public const string EndMarker = "<!-- end of recurring-training matrix -->";

    /// <summary>A run started, its round 0 the seeded initialisation.</summary>
    public static readonly TickAnswer Seeded = new("started, round 0 seeded", 3101, null);

    /// <summary>A run started, its round 0 a copy of the previous run's latest checkpoint.</summary>
    public static readonly TickAnswer Resumed = new("started, round 0 = its latest checkpoint", 3101, null);

    /// <summary>Nothing started: the previous run is still going.</summary>
    public static readonly TickAnswer Active = new("nothing: it is still going", 3102, "is still");

    /// <summary>Nothing started: recurring training is disabled.</summary>
    public static readonly TickAnswer Disabled = new("nothing: disabled", 3102, "disabled");

    /// <summary>Nothing started: no template.</summary>
    public static readonly TickAnswer NoTemplate = new("nothing: no template", 3103, "no spec template");

    /// <summary>Nothing started: the template is not a valid spec.</summary>
    public static readonly TickAnswer InvalidTemplate = new("nothing: template invalid", 3103, "spec template is invalid");

    /// <summary>Nothing started: the state blob cannot be read.</summary>
    public static readonly TickAnswer UnreadableState = new("nothing: state unreadable", 3103, "recurring state");

    /// <summary>Every answer a tick can give.</summary>
    public static IReadOnlyList<TickAnswer> Catalog { get; } = [Seeded, Resumed, Active, Disabled, NoTemplate, InvalidTemplate, UnreadableState];

    /// <summary>The rows, in the table's order.</summary>
    public static IReadOnlyList<PreviousRun> Rows { get; } = Enum.GetValues<PreviousRun>();

    /// <summary>The columns, in the table's order.</summary>
    public static IReadOnlyList<RecurringSetup> Columns { get; } = Enum.GetValues<RecurringSetup>();

    // One row per previous run, one answer per setup: Enabled, Disabled, NoTemplate, TemplateNotJson, StateNotJson.
    private static readonly Dictionary<PreviousRun, TickAnswer[]> Answers = new()
    {
        [PreviousRun.None] = [Seeded, Disabled, NoTemplate, InvalidTemplate, UnreadableState],
        [PreviousRun.Pending] = [Active, Disabled, NoTemplate, InvalidTemplate, Active],
        [PreviousRun.Running] = [Active, Disabled, NoTemplate, InvalidTemplate, Active],
        [PreviousRun.Suspended] = [Active, Disabled, NoTemplate, InvalidTemplate, Active],
        [PreviousRun.ContinuedAsNew] = [Active, Disabled, NoTemplate, InvalidTemplate, Active],
        [PreviousRun.Completed] = [Resumed, Disabled, NoTemplate, InvalidTemplate, UnreadableState],
        [PreviousRun.Failed] = [Resumed, Disabled, NoTemplate, InvalidTemplate, UnreadableState],
        [PreviousRun.Terminated] = [Resumed, Disabled, NoTemplate, InvalidTemplate, UnreadableState],
        [PreviousRun.Purged] = [Resumed, Disabled, NoTemplate, InvalidTemplate, UnreadableState],
    };

    /// <summary>The documented answer of a cell.</summary>
    public static TickAnswer Expected(PreviousRun row, RecurringSetup column) => Answers[row][(int)column];

    /// <summary>The runtime status the previous run has in a row; null when there is no instance.</summary>
#pragma warning disable CS0618 // the status a backend reports between two executions
    public static OrchestrationRuntimeStatus? StatusOf(PreviousRun row) => row switch
    {
        PreviousRun.None or PreviousRun.Purged => null,
        PreviousRun.Pending => OrchestrationRuntimeStatus.Pending,
        PreviousRun.Running => OrchestrationRuntimeStatus.Running,
        PreviousRun.Suspended => OrchestrationRuntimeStatus.Suspended,
        PreviousRun.ContinuedAsNew => OrchestrationRuntimeStatus.ContinuedAsNew,
        PreviousRun.Completed => OrchestrationRuntimeStatus.Completed,
        PreviousRun.Failed => OrchestrationRuntimeStatus.Failed,
        PreviousRun.Terminated => OrchestrationRuntimeStatus.Terminated,
        _ => throw new ArgumentOutOfRangeException(nameof(row)),
    };
#pragma warning restore CS0618

    /// <summary>A row's heading.</summary>
    public static string Name(PreviousRun row) => row switch
    {
        PreviousRun.None => "none (first tick)",
        PreviousRun.ContinuedAsNew => "ContinuedAsNew (between instances)",
        PreviousRun.Purged => "Completed, history purged, checkpoints kept",
        _ => row.ToString(),
    };

    /// <summary>A column's heading.</summary>
    public static string Name(RecurringSetup column) => column switch
    {
        RecurringSetup.Enabled => "enabled, valid template",
        RecurringSetup.Disabled => "`Recurring__Enabled=false`",
        RecurringSetup.NoTemplate => "no template blob",
        RecurringSetup.TemplateNotJson => "template not JSON",
        RecurringSetup.StateNotJson => "state blob not JSON",
        _ => throw new ArgumentOutOfRangeException(nameof(column)),
    };

    /// <summary>The table as <c>docs/api.md</c> shows it, between <see cref="BeginMarker"/> and <see cref="EndMarker"/>.</summary>
    public static string Markdown()
    {
        var md = new StringBuilder();
        md.Append("| Previous recurring run | ").AppendJoin(" | ", Columns.Select(Name)).Append(" |\n");
        md.Append("|---|").AppendJoin(string.Empty, Columns.Select(_ => "---|")).Append('\n');
        foreach (var row in Rows)
        {
            md.Append("| ").Append(Name(row)).Append(" | ").AppendJoin(" | ", Columns.Select(c => Expected(row, c).ToString())).Append(" |\n");
        }

        return md.ToString();
    }
}

/// <summary>One tick a host makes for a cell of <see cref="RecurringMatrix"/>.</summary>
/// <param name="Settings">The cell's <c>Recurring</c> settings (configuration keys), on top of the host's own.</param>
/// <param name="Pending">Whether the tick is made on the task hub that no worker polls, where the previous run is Pending.</param>
/// <param name="Logs">Where the host logs during the tick.</param>
/// <param name="Seen">Wraps the host's Durable client so that it reports the statuses the matrix shows (<c>ContinuedAsNew</c>).</param>
public sealed record RecurringCell(IReadOnlyDictionary<string, string?> Settings, bool Pending, LogRecorder Logs, Func<DurableTaskClient, DurableTaskClient> Seen);

/// <summary>
/// Makes every cell of <see cref="RecurringMatrix"/> on one host: a previous run in each row's state (its own run id prefix,
/// so that rows do not see each other's runs), then, per cell, the template and state blobs of its setup, one tick, and what
/// the tick did: the event it logged, the run it started (read back from the task hub, the state blob and the run's round-0
/// manifest) or that it started none and left the state alone. Each run a tick starts is stopped before the next cell.
/// </summary>
/// <param name="prefix">Row prefixes are <c>{prefix}-{row}</c>; the cells' blobs are under <c>{prefix}/</c> in the recurring container.</param>
/// <param name="client">The host's client on the task hub its worker runs.</param>
/// <param name="pendingClient">The host's client on a task hub that no worker polls.</param>
/// <param name="makers">A maker of runs under a prefix, through the host's own routes, on one of the two clients.</param>
/// <param name="checkpoints">The host's checkpoint store.</param>
/// <param name="blobs">The orchestrator's storage, where the recurring container is.</param>
/// <param name="template">The spec template of the cells that have one; its <c>runId</c> is replaced by the tick.</param>
/// <param name="tick">Makes one tick on the host, with the cell's settings, as the host's trigger does.</param>
public sealed class RecurringMatrixRunner(
    string prefix,
    StatusOverridingClient client,
    StatusOverridingClient pendingClient,
    Func<string, StatusOverridingClient, RunStateMaker> makers,
    ICheckpointStore checkpoints,
    BlobServiceClient blobs,
    string template,
    Func<RecurringCell, Task> tick)
{
    private static readonly byte[] NotJson = Encoding.UTF8.GetBytes("not JSON {");

    /// <summary>The answer each cell gave, when it gave one of the catalog's.</summary>
    public Dictionary<(PreviousRun Row, RecurringSetup Column), TickAnswer> Actual { get; } = [];

    /// <summary>The previous run of each row (none for <see cref="PreviousRun.None"/>).</summary>
    public Dictionary<PreviousRun, string?> Previous { get; } = [];

    /// <summary>Makes <paramref name="rows"/> × <paramref name="columns"/>; returns one line per wrong cell.</summary>
    public async Task<IReadOnlyList<string>> RunAsync(IReadOnlyList<PreviousRun> rows, IReadOnlyList<RecurringSetup> columns)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(columns);
        var failures = new List<string>();
        try
        {
            foreach (var (row, id) in await Task.WhenAll(rows.Select(async row => (row, await MakeAsync(row)))))
            {
                Previous[row] = id;
            }

            foreach (var row in rows)
            {
                foreach (var column in columns)
                {
                    var expected = RecurringMatrix.Expected(row, column);
                    var (answer, problem) = await CellAsync(row, Previous[row], column);
                    if (answer is not null)
                    {
                        Actual[(row, column)] = answer;
                    }

                    if (answer != expected || problem is not null)
                    {
                        failures.Add($"{row} ({Previous[row] ?? "no run"}) × {column}: expected {expected}, got {answer?.ToString() ?? "no answer"}{(problem is null ? string.Empty : "; " + problem)}");
                    }
                }
            }
        }
        finally
        {
            await StopAllAsync();
        }

        return failures;
    }

    private string RowPrefix(PreviousRun row) => $"{prefix}-{row.ToString().ToLowerInvariant()}";

    private StatusOverridingClient On(PreviousRun row) => row == PreviousRun.Pending ? pendingClient : client;

    private async Task<string?> MakeAsync(PreviousRun row)
    {
        var maker = makers(RowPrefix(row), On(row));
        switch (row)
        {
            case PreviousRun.None:
                return null;
            case PreviousRun.Suspended:
                var id = await maker.CreateAsync(RunState.Running);
                await client.SuspendInstanceAsync(id, "the recurring matrix");
                await WaitAsync(client, id, s => s == OrchestrationRuntimeStatus.Suspended);
                return id;
            default:
                return await maker.CreateAsync(row switch
                {
                    PreviousRun.Pending => RunState.Pending,
                    PreviousRun.Running => RunState.Running,
                    PreviousRun.ContinuedAsNew => RunState.ContinuedAsNew,
                    PreviousRun.Completed => RunState.Completed,
                    PreviousRun.Failed => RunState.FailedEyesOn,
                    PreviousRun.Terminated => RunState.Terminated,
                    _ => RunState.Purged,
                });
        }
    }

    private async Task<(TickAnswer? Answer, string? Problem)> CellAsync(PreviousRun row, string? previous, RecurringSetup column)
    {
        var on = On(row);
        var cell = $"{prefix}/{row.ToString().ToLowerInvariant()}-{column.ToString().ToLowerInvariant()}";
        var options = new RecurringOptions { Enabled = column != RecurringSetup.Disabled, TemplateBlob = cell + "/spec.json", StateBlob = cell + "/state.json", RunIdPrefix = RowPrefix(row) };
        var store = new BlobRecurringStore(blobs, Options.Create(options));
        var container = blobs.GetBlobContainerClient(options.Container);
        await container.CreateIfNotExistsAsync();
        if (column != RecurringSetup.NoTemplate)
        {
            await container.GetBlobClient(options.TemplateBlob).UploadAsync(BinaryData.FromBytes(column == RecurringSetup.TemplateNotJson ? NotJson : Encoding.UTF8.GetBytes(template)), overwrite: true);
        }

        if (column == RecurringSetup.StateNotJson)
        {
            await container.GetBlobClient(options.StateBlob).UploadAsync(BinaryData.FromBytes(NotJson), overwrite: true);
        }
        else if (previous is not null)
        {
            await store.SetLastRunIdAsync(previous, default);
        }

        var status = previous is null ? null : (await on.GetInstanceAsync(previous))?.RuntimeStatus;
        if (status != RecurringMatrix.StatusOf(row))
        {
            return (null, $"the previous run is {status?.ToString() ?? "not an instance"}, not {RecurringMatrix.StatusOf(row)}");
        }

        var state = await ReadAsync(container, options.StateBlob);
        var before = await IdsAsync(on, options.RunIdPrefix);
        var logs = new LogRecorder();
        var settings = new Dictionary<string, string?>
        {
            ["Recurring:Enabled"] = options.Enabled ? "true" : "false",
            ["Recurring:TemplateBlob"] = options.TemplateBlob,
            ["Recurring:StateBlob"] = options.StateBlob,
            ["Recurring:RunIdPrefix"] = options.RunIdPrefix,
        };
        try
        {
            await tick(new RecurringCell(settings, row == PreviousRun.Pending, logs, inner => Seen(inner, on)));
        }
        catch (Exception ex)
        {
            return (null, $"the tick threw {ex.GetType().Name}: {ex.Message}");
        }

        var events = logs.Of<RecurringTrainingService>();
        var started = (await IdsAsync(on, options.RunIdPrefix)).Except(before).ToArray();
        var after = await ReadAsync(container, options.StateBlob);
        var unchanged = after is null ? state is null : state is not null && after.SequenceEqual(state);
        if (events.Count != 1)
        {
            return (null, $"it logged {events.Count} events ({string.Join("; ", events.Select(e => $"{e.EventId} {e.Message}"))}) and started {started.Length} runs");
        }

        var logged = events[0];
        if (started.Length == 0)
        {
            var answer = RecurringMatrix.Catalog.FirstOrDefault(a => !a.Starts && a.EventId == logged.EventId && logged.Message.Contains(a.Marker!, StringComparison.Ordinal));
            var problem = answer is null ? $"it started nothing and logged {logged.EventId} '{logged.Message}'"
                : !unchanged ? "it started nothing but changed the state blob"
                : answer == RecurringMatrix.Active && !logged.Message.Contains(previous!, StringComparison.Ordinal) ? $"the reason does not name the previous run: '{logged.Message}'"
                : null;
            return (answer, problem);
        }

        try
        {
            return started.Length > 1 ? (null, $"it started {started.Length} runs") : await StartedAsync(store, previous, started[0], logged);
        }
        finally
        {
            foreach (var run in started)
            {
                await StopAsync(on, run, wait: on == client);
            }
        }
    }

    // A tick that started a run: it logged the start and recorded the run, whose round 0 is seeded or the previous run's latest checkpoint.
    private async Task<(TickAnswer? Answer, string? Problem)> StartedAsync(BlobRecurringStore store, string? previous, string run, LoggedEvent logged)
    {
        if (logged.EventId != RecurringMatrix.Seeded.EventId)
        {
            return (null, $"it started {run} and logged {logged.EventId} '{logged.Message}'");
        }

        if (await store.GetLastRunIdAsync(default) != run)
        {
            return (null, $"it started {run} but the state does not name it");
        }

        var container = RunSpecParser.Parse(template).Spec!.Checkpoints.Container;
        var latest = previous is null ? null : await checkpoints.GetLatestAsync(container, previous, default);
        var origin = latest is null ? null : new ModelOrigin(previous!, latest.Round, latest.Model);
        var deadline = DateTime.UtcNow.AddMinutes(3);
        RoundManifest? round0;
        while ((round0 = await checkpoints.GetManifestAsync(container, run, 0, default)) is null)
        {
            if (DateTime.UtcNow > deadline)
            {
                return (null, $"{run} committed no round 0");
            }

            await Task.Delay(100);
        }

        return round0.ResumedFrom is null ? (RecurringMatrix.Seeded, null)
            : round0.ResumedFrom == origin ? (RecurringMatrix.Resumed, null)
            : (null, $"{run}'s round 0 is {round0.ResumedFrom}, not the previous run's latest checkpoint ({origin?.ToString() ?? "none"})");
    }

    private static DurableTaskClient Seen(DurableTaskClient inner, StatusOverridingClient shown)
    {
        var seen = new StatusOverridingClient(inner);
        foreach (var (id, status) in shown.Overrides)
        {
            seen.Overrides[id] = status;
        }

        return seen;
    }

    private static async Task<byte[]?> ReadAsync(BlobContainerClient container, string blob)
    {
        var b = container.GetBlobClient(blob);
        return await b.ExistsAsync() ? (await b.DownloadContentAsync()).Value.Content.ToArray() : null;
    }

    private static async Task<HashSet<string>> IdsAsync(DurableTaskClient on, string runIdPrefix)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var meta in on.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = runIdPrefix + "-" }))
        {
            ids.Add(meta.InstanceId);
        }

        return ids;
    }

    // Stops a run a tick started, so that it blocks no later cell of its row; nothing runs on the pending hub, so there it is not waited for.
    private static async Task StopAsync(DurableTaskClient on, string run, bool wait)
    {
        if ((await on.GetInstanceAsync(run))?.RuntimeStatus is { } status && InstanceStarts.IsActive(status))
        {
            await on.TerminateInstanceAsync(run, "the recurring matrix moves on");
            if (wait)
            {
                await WaitAsync(on, run, s => !InstanceStarts.IsActive(s));
            }
        }
    }

    // The host's hub may be shared with other tests: the matrix's runs still going stop here.
    private async Task StopAllAsync()
    {
        await foreach (var going in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = prefix + "-", Statuses = [.. InstanceStarts.Active] }))
        {
            if (going.RuntimeStatus == OrchestrationRuntimeStatus.Suspended)
            {
                await client.ResumeInstanceAsync(going.InstanceId, "the recurring matrix is done");
            }

            await client.TerminateInstanceAsync(going.InstanceId, "the recurring matrix is done");
        }
    }

    private static async Task WaitAsync(DurableTaskClient on, string id, Func<OrchestrationRuntimeStatus, bool> reached)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!((await on.GetInstanceAsync(id)) is { } meta && reached(meta.RuntimeStatus)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{id} did not reach its state");
            await Task.Delay(100);
        }
    }
}
