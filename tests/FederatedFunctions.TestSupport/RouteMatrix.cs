namespace FederatedFunctions.TestSupport;

/// <summary>A state a training run can be in, as the routes see it.</summary>
public enum RunState
{
    /// <summary>No instance and no checkpoints of that id.</summary>
    Unknown,

    /// <summary>Scheduled, not started (a start time in the future).</summary>
    Pending,

    /// <summary>Training.</summary>
    Running,

    /// <summary>Between two instances of a long run (<c>orchestration.roundsPerInstance</c>): the backend reports <c>ContinuedAsNew</c>.</summary>
    ContinuedAsNew,

    /// <summary>Completed every round.</summary>
    Completed,

    /// <summary>Failed (every silo failed) in an eyes-on run.</summary>
    FailedEyesOn,

    /// <summary>Failed (every silo failed) in an eyes-off run.</summary>
    FailedEyesOff,

    /// <summary>Cancelled.</summary>
    Terminated,

    /// <summary>Completed, then its instance history purged; its checkpoints stay.</summary>
    Purged,

    /// <summary>Cancelled, with its checkpoints in another container than the default (<see cref="RouteMatrix.OtherContainer"/>).</summary>
    OtherContainer,
}

/// <summary>One route of the matrix. <see cref="Path"/> holds <c>{id}</c> for the run id and <c>{status}</c> for the run's own status.</summary>
/// <param name="Key">Short name.</param>
/// <param name="Method">HTTP method.</param>
/// <param name="Path">Path and query.</param>
/// <param name="Management">One of the Durable management routes, which the Functions host serves itself: only <c>fl serve</c> implements them.</param>
public sealed record MatrixRoute(string Key, string Method, string Path, bool Management = false)
{
    /// <summary>Whether the call changes the run (start, cancel, resume, terminate, purge): each such cell gets a fresh run in its state.</summary>
    public bool Mutates => Method != "GET";

    /// <summary>The route as the table shows it.</summary>
    public string Title => $"`{Method} {Path}`";
}

/// <summary>The documented answer of one cell: the status code, the problem type of an error, and for a list whether the run is in it.</summary>
public sealed record CellAnswer(int Status, string? Problem = null, bool? Listed = null)
{
    /// <inheritdoc />
    public override string ToString() =>
        Status.ToString(System.Globalization.CultureInfo.InvariantCulture) + (Problem is null ? string.Empty : " " + Problem) + (Listed switch { true => ", listed", false => ", not listed", null => string.Empty });
}

/// <summary>
/// Every route of the runs API crossed with every state a run can be in, and the one answer each cell gives: the source of the
/// table in <c>docs/api.md</c> (checked against it) and of the tests that call every cell on both hosts. Every answer is a
/// status code and a body that parses as JSON (a problem document for errors); none is a 500.
/// </summary>
public static class RouteMatrix
{
    /// <summary>The container of <see cref="RunState.OtherContainer"/>'s checkpoints.</summary>
    public const string OtherContainer = "mxother";

    /// <summary>The markers around the table in <c>docs/api.md</c>.</summary>
    public const string BeginMarker = "<!-- route-state matrix: generated from tests/FederatedFunctions.TestSupport/RouteMatrix.cs; RouteMatrixDocsTests checks it -->";

    /// <summary>The end marker.</summary>
    public const string EndMarker = "<!-- end of route-state matrix -->";

    /// <summary>The routes, in the table's order.</summary>
    public static IReadOnlyList<MatrixRoute> Routes { get; } =
    [
        new("start", "POST", "/api/runs"),
        new("get", "GET", "/api/runs/{id}"),
        new("list", "GET", "/api/runs?pageSize=100"),
        new("list-own-status", "GET", "/api/runs?status={status}&pageSize=100"),
        new("list-other-status", "GET", "/api/runs?status=Suspended&pageSize=100"),
        new("cancel", "POST", "/api/runs/{id}/cancel"),
        new("resume", "POST", "/api/runs/{id}/resume"),
        new("resume-other", "POST", "/api/runs/{id}/resume?container=" + OtherContainer),
        new("checkpoints", "GET", "/api/runs/{id}/checkpoints"),
        new("model", "GET", "/api/runs/{id}/checkpoints/latest/model"),
        new("audit", "GET", "/api/runs/{id}/audit"),
        new("analysis-start", "POST", "/api/analyses"),
        new("analysis-get", "GET", "/api/analyses/{id}"),
        new("status", "GET", "/runtime/webhooks/durabletask/instances/{id}", Management: true),
        new("terminate", "POST", "/runtime/webhooks/durabletask/instances/{id}/terminate?reason=matrix", Management: true),
        new("purge", "DELETE", "/runtime/webhooks/durabletask/instances/{id}", Management: true),
    ];

    /// <summary>The states, in the table's order.</summary>
    public static IReadOnlyList<RunState> States { get; } = Enum.GetValues<RunState>();

    // One row per route, one answer per state in the order of RunState:
    // Unknown, Pending, Running, ContinuedAsNew, Completed, FailedEyesOn, FailedEyesOff, Terminated, Purged, OtherContainer.
    private static readonly Dictionary<string, CellAnswer[]> Answers = new(StringComparer.Ordinal)
    {
        ["start"] = [A(202), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists"), A(409, "run-exists")],
        ["get"] = [A(404, "run-not-found"), A(200), A(200), A(200), A(200), A(200), A(200), A(200), A(404, "run-not-found"), A(200)],
        ["list"] = [L(false), L(true), L(true), L(true), L(true), L(true), L(true), L(true), L(false), L(true)],
        ["list-own-status"] = [L(false), L(true), L(true), L(true), L(true), L(true), L(true), L(true), L(false), L(true)],
        ["list-other-status"] = [L(false), L(false), L(false), L(false), L(false), L(false), L(false), L(false), L(false), L(false)],
        ["cancel"] = [A(404, "run-not-found"), A(202), A(202), A(202), A(409, "run-not-running"), A(409, "run-not-running"), A(409, "run-not-running"), A(409, "run-not-running"), A(404, "run-not-found"), A(409, "run-not-running")],
        ["resume"] = [A(404, "no-checkpoint"), A(409, "run-running"), A(409, "run-running"), A(409, "run-running"), A(409, "run-completed"), A(202), A(202), A(202), A(409, "run-completed"), A(404, "no-checkpoint")],
        ["resume-other"] = [A(404, "no-checkpoint"), A(409, "run-running"), A(409, "run-running"), A(409, "run-running"), A(409, "run-completed"), A(404, "no-checkpoint"), A(404, "no-checkpoint"), A(404, "no-checkpoint"), A(404, "no-checkpoint"), A(202)],
        ["checkpoints"] = [A(404, "run-not-found"), A(200), A(200), A(200), A(200), A(200), A(200), A(200), A(404, "run-not-found"), A(200)],
        ["model"] = [A(404, "run-not-found"), A(404, "checkpoint-not-found"), A(200), A(200), A(200), A(200), A(200), A(200), A(404, "run-not-found"), A(200)],
        ["audit"] = [A(404, "run-not-found"), A(200), A(200), A(200), A(200), A(200), A(200), A(200), A(404, "run-not-found"), A(200)],
        ["analysis-start"] = [A(202), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use")],
        ["analysis-get"] = [A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found"), A(404, "analysis-not-found")],
        ["status"] = [A(404, "instance-not-found"), A(200), A(200), A(200), A(200), A(200), A(200), A(200), A(404, "instance-not-found"), A(200)],
        ["terminate"] = [A(404, "instance-not-found"), A(202), A(202), A(202), A(410, "instance-ended"), A(410, "instance-ended"), A(410, "instance-ended"), A(410, "instance-ended"), A(404, "instance-not-found"), A(410, "instance-ended")],
        ["purge"] = [A(404, "instance-not-found"), A(409, "instance-running"), A(409, "instance-running"), A(409, "instance-running"), A(200), A(200), A(200), A(200), A(404, "instance-not-found"), A(200)],
    };

    /// <summary>The documented answer of a cell.</summary>
    public static CellAnswer Expected(MatrixRoute route, RunState state)
    {
        ArgumentNullException.ThrowIfNull(route);
        return Answers[route.Key][(int)state];
    }

    /// <summary>The matrix, for its runner.</summary>
    public static MatrixShape<RunState> Shape { get; } = new(Expected, RunState.Unknown, RunState.Pending, state => state switch
    {
        RunState.Pending => "Pending",
        RunState.ContinuedAsNew => "ContinuedAsNew",
        RunState.Completed or RunState.Purged => "Completed",
        RunState.FailedEyesOn or RunState.FailedEyesOff => "Failed",
        RunState.Terminated or RunState.OtherContainer => "Terminated",
        _ => "Running",
    });

    /// <summary>The table as <c>docs/api.md</c> shows it, between <see cref="BeginMarker"/> and <see cref="EndMarker"/>.</summary>
    public static string Markdown() => Shape.Markdown(Routes, States, Name);

    /// <summary>A state's column heading.</summary>
    public static string Name(RunState state) => state switch
    {
        RunState.ContinuedAsNew => "ContinuedAsNew (between instances)",
        RunState.FailedEyesOn => "Failed (eyes-on)",
        RunState.FailedEyesOff => "Failed (eyes-off)",
        RunState.Purged => "history purged, checkpoints kept",
        RunState.OtherContainer => $"Terminated, checkpoints in `{OtherContainer}`",
        _ => state.ToString(),
    };

    private static CellAnswer A(int status, string? problem = null) => new(status, problem);

    private static CellAnswer L(bool listed) => new(200, Listed: listed);
}
