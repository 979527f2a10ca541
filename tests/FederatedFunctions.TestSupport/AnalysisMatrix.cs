using Microsoft.DurableTask.Client;

namespace FederatedFunctions.TestSupport;

/// <summary>A state a federated analysis can be in, as the routes see it.</summary>
public enum AnalysisInstanceState
{
    /// <summary>No instance and no result of that id.</summary>
    Unknown,

    /// <summary>Scheduled, not started.</summary>
    Pending,

    /// <summary>Completed, with its result stored.</summary>
    Completed,

    /// <summary>Failed (every silo failed), without a result.</summary>
    Failed,

    /// <summary>Completed, then its instance history purged; its result stays.</summary>
    Purged,
}

/// <summary>
/// The analyses API's routes, and the runs API's routes given an analysis's id, crossed with every state an analysis can be
/// in: the second table of <c>docs/api.md</c>'s matrix section, checked and called as <see cref="RouteMatrix"/> is.
/// </summary>
public static class AnalysisMatrix
{
    /// <summary>The markers around the table in <c>docs/api.md</c>.</summary>
    public const string BeginMarker = "<!-- analysis route-state matrix: generated from tests/FederatedFunctions.TestSupport/AnalysisMatrix.cs; RouteMatrixDocsTests checks it -->";

    /// <summary>The end marker.</summary>
    public const string EndMarker = "<!-- end of analysis route-state matrix -->";

    /// <summary>The routes, in the table's order.</summary>
    public static IReadOnlyList<MatrixRoute> Routes { get; } =
    [
        new("analysis-start", "POST", "/api/analyses"),
        new("analysis-get", "GET", "/api/analyses/{id}"),
        new("analysis-list", "GET", "/api/analyses?pageSize=100"),
        new("analysis-list-own-status", "GET", "/api/analyses?status={status}&pageSize=100"),
        new("start", "POST", "/api/runs"),
        new("get", "GET", "/api/runs/{id}"),
        new("cancel", "POST", "/api/runs/{id}/cancel"),
        new("resume", "POST", "/api/runs/{id}/resume"),
        new("status", "GET", "/runtime/webhooks/durabletask/instances/{id}", Management: true),
        new("terminate", "POST", "/runtime/webhooks/durabletask/instances/{id}/terminate?reason=matrix", Management: true),
        new("purge", "DELETE", "/runtime/webhooks/durabletask/instances/{id}", Management: true),
    ];

    /// <summary>The states, in the table's order.</summary>
    public static IReadOnlyList<AnalysisInstanceState> States { get; } = Enum.GetValues<AnalysisInstanceState>();

    // One row per route, one answer per state: Unknown, Pending, Completed, Failed, Purged.
    private static readonly Dictionary<string, CellAnswer[]> Answers = new(StringComparer.Ordinal)
    {
        ["analysis-start"] = [A(202), A(409, "analysis-exists"), A(409, "analysis-exists"), A(202), A(409, "analysis-exists")],
        ["analysis-get"] = [A(404, "analysis-not-found"), A(200), A(200), A(200), A(200)],
        ["analysis-list"] = [L(false), L(true), L(true), L(true), L(false)],
        ["analysis-list-own-status"] = [L(false), L(true), L(true), L(true), L(false)],
        ["start"] = [A(202), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use"), A(409, "id-in-use")],
        ["get"] = [A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found")],
        ["cancel"] = [A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found")],
        ["resume"] = [A(404, "no-checkpoint"), A(404, "run-not-found"), A(404, "run-not-found"), A(404, "run-not-found"), A(404, "no-checkpoint")],
        ["status"] = [A(404, "instance-not-found"), A(200), A(200), A(200), A(404, "instance-not-found")],
        ["terminate"] = [A(404, "instance-not-found"), A(202), A(410, "instance-ended"), A(410, "instance-ended"), A(404, "instance-not-found")],
        ["purge"] = [A(404, "instance-not-found"), A(409, "instance-running"), A(200), A(200), A(404, "instance-not-found")],
    };

    /// <summary>The matrix, for its runner.</summary>
    public static MatrixShape<AnalysisInstanceState> Shape { get; } = new(Expected, AnalysisInstanceState.Unknown, AnalysisInstanceState.Pending, state => state switch
    {
        AnalysisInstanceState.Pending => "Pending",
        AnalysisInstanceState.Failed => "Failed",
        _ => "Completed",
    });

    /// <summary>The documented answer of a cell.</summary>
    public static CellAnswer Expected(MatrixRoute route, AnalysisInstanceState state)
    {
        ArgumentNullException.ThrowIfNull(route);
        return Answers[route.Key][(int)state];
    }

    /// <summary>The table as <c>docs/api.md</c> shows it, between <see cref="BeginMarker"/> and <see cref="EndMarker"/>.</summary>
    public static string Markdown() => Shape.Markdown(Routes, States, s => s == AnalysisInstanceState.Purged ? "history purged, result kept" : s.ToString());

    private static CellAnswer A(int status, string? problem = null) => new(status, problem);

    private static CellAnswer L(bool listed) => new(200, Listed: listed);
}

/// <summary>Puts new analyses into each <see cref="AnalysisInstanceState"/> through a host's analysis start route.</summary>
/// <param name="prefix">Ids are <c>{prefix}-{state}-{n}</c>.</param>
/// <param name="client">The host's Durable client: it waits for statuses and purges.</param>
/// <param name="silos">The silos analysed.</param>
/// <param name="start">Starts an analysis from a spec; throws unless accepted.</param>
public sealed class AnalysisStateMaker(string prefix, DurableTaskClient client, IReadOnlyList<string> silos, Func<string, Task> start)
{
    private int next;

    /// <summary>A new analysis id, put into <paramref name="state"/>. A Pending one is made only once the host starts no new instance.</summary>
    public async Task<string> CreateAsync(AnalysisInstanceState state)
    {
        var id = $"{prefix}-{state.ToString().ToLowerInvariant()}-{Interlocked.Increment(ref next)}";
        switch (state)
        {
            case AnalysisInstanceState.Pending:
                await start(MatrixRequests.AnalysisSpec(id, silos));
                await WaitAsync(id, OrchestrationRuntimeStatus.Pending);
                break;
            case AnalysisInstanceState.Completed or AnalysisInstanceState.Purged:
                await start(MatrixRequests.AnalysisSpec(id, silos));
                await WaitAsync(id, OrchestrationRuntimeStatus.Completed);
                if (state == AnalysisInstanceState.Purged)
                {
                    Assert.Equal(1, (await client.PurgeInstanceAsync(id)).PurgedInstanceCount);
                }

                break;
            case AnalysisInstanceState.Failed:
                await start(MatrixRequests.AnalysisSpec(id, silos, path: "data/missing.csv"));
                await WaitAsync(id, OrchestrationRuntimeStatus.Failed);
                break;
        }

        return id;
    }

    private async Task WaitAsync(string id, OrchestrationRuntimeStatus status)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while ((await client.GetInstanceAsync(id))?.RuntimeStatus != status)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{id} did not reach {status}");
            await Task.Delay(100);
        }
    }
}
