using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.TestSupport;

/// <summary>What a host answered to one cell: status code, <c>Content-Type</c> media type and body.</summary>
public sealed record CellResponse(int Status, string? MediaType, byte[] Body);

/// <summary>What a matrix is to its runner: the answer of each cell, its unknown and pending states, and each state's runtime status.</summary>
/// <typeparam name="TState">The states of its columns.</typeparam>
/// <param name="Expected">The documented answer of a cell.</param>
/// <param name="Unknown">The state of an id nothing has used: each cell gets a new id.</param>
/// <param name="Pending">The state made only once the host starts no new instance, if the matrix has one.</param>
/// <param name="OwnStatus">The runtime status an instance in that state lists under (the <c>{status}</c> of a path).</param>
public sealed record MatrixShape<TState>(Func<MatrixRoute, TState, CellAnswer> Expected, TState Unknown, TState? Pending, Func<TState, string> OwnStatus)
    where TState : struct, Enum
{
    /// <summary>The path of a cell for instance <paramref name="id"/>.</summary>
    public string PathOf(MatrixRoute route, TState state, string id)
    {
        ArgumentNullException.ThrowIfNull(route);
        return route.Path.Replace("{id}", id, StringComparison.Ordinal).Replace("{status}", OwnStatus(state), StringComparison.Ordinal);
    }

    /// <summary>The table as <c>docs/api.md</c> shows it.</summary>
    public string Markdown(IReadOnlyList<MatrixRoute> routes, IReadOnlyList<TState> states, Func<TState, string> name)
    {
        ArgumentNullException.ThrowIfNull(routes);
        ArgumentNullException.ThrowIfNull(states);
        var md = new StringBuilder();
        md.Append("| Route | ").AppendJoin(" | ", states.Select(name)).Append(" |\n");
        md.Append("|---|").AppendJoin(string.Empty, states.Select(_ => "---|")).Append('\n');
        foreach (var route in routes)
        {
            md.Append("| ").Append(route.Title).Append(route.Management ? " ¹" : string.Empty).Append(" | ")
                .AppendJoin(" | ", states.Select(s => Expected(route, s).ToString())).Append(" |\n");
        }

        return md.ToString();
    }
}

/// <summary>The bodies the matrix's routes send.</summary>
public static class MatrixRequests
{
    /// <summary>The body a cell sends, or null: a run spec for a run start, an analysis spec for an analysis start, both under <paramref name="id"/>.</summary>
    public static string? BodyOf(MatrixRoute route, string id, string runSpec, IReadOnlyList<string> silos)
    {
        ArgumentNullException.ThrowIfNull(route);
        return route.Key switch
        {
            "start" => runSpec,
            "analysis-start" => AnalysisSpec(id, silos),
            _ => null,
        };
    }

    /// <summary>An analysis of <paramref name="silos"/> (the count of <c>x0</c> in <paramref name="path"/>) with at least <paramref name="minSilos"/> silos.</summary>
    public static string AnalysisSpec(string id, IReadOnlyList<string> silos, string path = "data/train.csv", int minSilos = 2) =>
        JsonSerializer.Serialize(new
        {
            analysisId = id,
            silos,
            data = new { format = "csv", path },
            features = new[] { new { column = "x0", statistics = new[] { "count" } } },
            privacy = new { minCount = 1, minSilos },
        });
}

/// <summary>
/// Runs a route × state matrix (<see cref="RouteMatrix"/>, <see cref="AnalysisMatrix"/>) on one host: puts an instance into each
/// state (one more for each cell that changes it), calls every cell, and reports each answer that is not the documented one or
/// whose body does not parse.
/// </summary>
/// <typeparam name="TState">The matrix's states.</typeparam>
/// <param name="shape">The matrix.</param>
/// <param name="create">Makes a new instance in a state and returns its id; called for the pending state only after <paramref name="beforePending"/>.</param>
/// <param name="call">Calls one cell for an id on the host.</param>
/// <param name="beforePending">Makes the host start no new instance (stops its worker), so that one made next stays Pending; null when the host cannot.</param>
public sealed class RouteMatrixRunner<TState>(MatrixShape<TState> shape, Func<TState, Task<string>> create, Func<MatrixRoute, TState, string, Task<CellResponse>> call, Func<Task>? beforePending)
    where TState : struct, Enum
{
    /// <summary>The answers each cell gave.</summary>
    public Dictionary<(string Route, TState State), CellAnswer> Actual { get; } = [];

    /// <summary>One instance per state, as the cells that change nothing used them.</summary>
    public Dictionary<TState, string> Runs { get; } = [];

    /// <summary>Runs <paramref name="routes"/> × <paramref name="states"/>; returns one line per wrong cell.</summary>
    public async Task<IReadOnlyList<string>> RunAsync(IReadOnlyList<MatrixRoute> routes, IReadOnlyList<TState> states)
    {
        ArgumentNullException.ThrowIfNull(routes);
        ArgumentNullException.ThrowIfNull(states);
        var cells = routes.SelectMany(r => states.Select(s => (Route: r, State: s))).ToArray();
        bool IsUnknown(TState s) => EqualityComparer<TState>.Default.Equals(s, shape.Unknown);
        bool IsPending(TState s) => shape.Pending is { } p && EqualityComparer<TState>.Default.Equals(s, p);
        var fresh = cells.Where(c => !IsUnknown(c.State) && c.Route.Mutates && shape.Expected(c.Route, c.State).Status is >= 200 and < 300).ToHashSet();
        var wanted = states.Where(s => !IsUnknown(s)).Select(s => (State: s, Count: 1 + fresh.Count(c => EqualityComparer<TState>.Default.Equals(c.State, s)))).ToArray();
        var pools = new Dictionary<TState, Queue<string>>();
        foreach (var (state, ids) in await Task.WhenAll(wanted.Where(w => !IsPending(w.State)).Select(async w => (w.State, await Task.WhenAll(Enumerable.Range(0, w.Count).Select(_ => create(w.State)))))))
        {
            pools[state] = new Queue<string>(ids);
        }

        if (wanted.FirstOrDefault(w => IsPending(w.State)) is { Count: > 0 } pending)
        {
            await (beforePending ?? throw new InvalidOperationException("This host cannot hold an instance Pending."))();
            pools[pending.State] = new Queue<string>(await Task.WhenAll(Enumerable.Range(0, pending.Count).Select(_ => create(pending.State))));
        }

        foreach (var (state, pool) in pools)
        {
            Runs[state] = pool.Dequeue();
        }

        var failures = new List<string>();
        foreach (var (route, state) in cells)
        {
            var expected = shape.Expected(route, state);
            var id = IsUnknown(state) ? await create(state) : fresh.Contains((route, state)) ? pools[state].Dequeue() : Runs[state];
            var (answer, problem) = Read(route, id, await call(route, state, id));
            Actual[(route.Key, state)] = answer;
            if (answer != expected || problem is not null)
            {
                failures.Add($"{route.Method} {route.Path} on {state} ({id}): expected {expected}, got {answer}{(problem is null ? string.Empty : "; " + problem)}");
            }
        }

        return failures;
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

        var (list, idProperty) = route.Path.StartsWith("/api/analyses", StringComparison.Ordinal) ? ("analyses", "analysisId") : ("runs", "runId");
        bool? listed = route.Key.Contains("list", StringComparison.Ordinal)
            ? body.GetProperty(list).EnumerateArray().Any(r => r.GetProperty(idProperty).GetString() == id)
            : null;
        return (new CellAnswer(status, Listed: listed), type == "application/json" ? null : $"a success as {type}, not JSON");
    }
}
