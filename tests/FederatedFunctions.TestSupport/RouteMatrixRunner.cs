using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.TestSupport;

/// <summary>What a host answered to one cell: status code, <c>Content-Type</c> media type and body.</summary>
public sealed record CellResponse(int Status, string? MediaType, byte[] Body);

/// <summary>
/// Runs <see cref="RouteMatrix"/> on one host: puts a run into each state (one more for each cell that changes it), calls every
/// cell, and reports each answer that is not the documented one or whose body does not parse.
/// </summary>
/// <param name="create">Makes a new run in a state and returns its id; called for <see cref="RunState.Pending"/> only after <paramref name="beforePending"/>.</param>
/// <param name="call">Calls one cell for a run id on the host.</param>
/// <param name="beforePending">Makes the host start no new run (stops its worker), so that a run made next stays Pending; null when the host cannot.</param>
public sealed class RouteMatrixRunner(Func<RunState, Task<string>> create, Func<MatrixRoute, RunState, string, Task<CellResponse>> call, Func<Task>? beforePending)
{
    /// <summary>The answers each cell gave.</summary>
    public Dictionary<(string Route, RunState State), CellAnswer> Actual { get; } = [];

    /// <summary>One run per state, as the read-only cells used them.</summary>
    public Dictionary<RunState, string> Runs { get; } = [];

    /// <summary>Runs <paramref name="routes"/> × <paramref name="states"/>; returns one line per wrong cell.</summary>
    public async Task<IReadOnlyList<string>> RunAsync(IReadOnlyList<MatrixRoute> routes, IReadOnlyList<RunState> states)
    {
        ArgumentNullException.ThrowIfNull(routes);
        ArgumentNullException.ThrowIfNull(states);
        var cells = routes.SelectMany(r => states.Select(s => (Route: r, State: s))).ToArray();
        var fresh = cells.Where(c => c.State != RunState.Unknown && c.Route.Mutates && RouteMatrix.Expected(c.Route, c.State).Status is >= 200 and < 300).ToHashSet();
        var wanted = states.Select(s => (State: s, Count: 1 + fresh.Count(c => c.State == s))).ToArray();
        var pools = new Dictionary<RunState, Queue<string>>();
        foreach (var (state, ids) in await Task.WhenAll(wanted.Where(w => w.State != RunState.Pending).Select(async w => (w.State, await Task.WhenAll(Enumerable.Range(0, w.Count).Select(_ => create(w.State)))))))
        {
            pools[state] = new Queue<string>(ids);
        }

        if (states.Contains(RunState.Pending))
        {
            await (beforePending ?? throw new InvalidOperationException("This host cannot hold a run Pending."))();
            pools[RunState.Pending] = new Queue<string>(await Task.WhenAll(Enumerable.Range(0, wanted.Single(w => w.State == RunState.Pending).Count).Select(_ => create(RunState.Pending))));
        }

        foreach (var (state, pool) in pools)
        {
            Runs[state] = pool.Dequeue();
        }

        var failures = new List<string>();
        foreach (var (route, state) in cells)
        {
            var expected = RouteMatrix.Expected(route, state);
            var id = state == RunState.Unknown ? await create(state) : fresh.Contains((route, state)) ? pools[state].Dequeue() : Runs[state];
            var (answer, problem) = Read(route, id, await call(route, state, id));
            Actual[(route.Key, state)] = answer;
            if (answer != expected || problem is not null)
            {
                failures.Add($"{route.Method} {route.Path} on {state} ({id}): expected {expected}, got {answer}{(problem is null ? string.Empty : "; " + problem)}");
            }
        }

        return failures;
    }

    /// <summary>The path of a cell for run <paramref name="id"/>.</summary>
    public static string PathOf(MatrixRoute route, RunState state, string id)
    {
        ArgumentNullException.ThrowIfNull(route);
        return route.Path.Replace("{id}", id, StringComparison.Ordinal).Replace("{status}", OwnStatus(state), StringComparison.Ordinal);
    }

    /// <summary>The body a cell sends, or null: a run spec for a start, an analysis spec for an analysis start, both under <paramref name="id"/>.</summary>
    public static string? BodyOf(MatrixRoute route, string id, string runSpec, IReadOnlyList<string> silos)
    {
        ArgumentNullException.ThrowIfNull(route);
        return route.Key switch
        {
            "start" => runSpec,
            "analysis-start" => JsonSerializer.Serialize(new { analysisId = id, silos, features = new[] { new { column = "x0", statistics = new[] { "count" } } }, privacy = new { minCount = 1 } }),
            _ => null,
        };
    }

    // The answer as the matrix writes it, and what else is wrong with the response, if anything.
    private static (CellAnswer Answer, string? Problem) Read(MatrixRoute route, string id, CellResponse response)
    {
        var (status, type, bytes) = (response.Status, response.MediaType, response.Body);
        if (route.Key == "model" && status == 200)
        {
            return (new CellAnswer(status), type == "application/octet-stream" && Safetensors.Parse(bytes).Tensors.Count > 0 ? null : $"not a safetensors download ({type})");
        }

        JsonElement body;
        try
        {
            body = JsonDocument.Parse(bytes).RootElement;
        }
        catch (JsonException)
        {
            return (new CellAnswer(status), $"the body is not JSON ({type}): {Encoding.UTF8.GetString(bytes)[..Math.Min(200, bytes.Length)]}");
        }

        if (status >= 400)
        {
            var problem = body.TryGetProperty("type", out var t) ? t.GetString()?.Replace("urn:federatedfunctions:problem:", string.Empty, StringComparison.Ordinal) : null;
            return (new CellAnswer(status, problem), type == "application/problem+json" ? null : $"an error as {type}, not a problem document");
        }

        bool? listed = route.Key.StartsWith("list", StringComparison.Ordinal)
            ? body.GetProperty("runs").EnumerateArray().Any(r => r.GetProperty("runId").GetString() == id)
            : null;
        return (new CellAnswer(status, Listed: listed), type == "application/json" ? null : $"a success as {type}, not JSON");
    }

    private static string OwnStatus(RunState state) => state switch
    {
        RunState.Pending => "Pending",
        RunState.ContinuedAsNew => "ContinuedAsNew",
        RunState.Completed or RunState.Purged => "Completed",
        RunState.FailedEyesOn or RunState.FailedEyesOff => "Failed",
        RunState.Terminated or RunState.OtherContainer => "Terminated",
        _ => "Running",
    };
}
