using System.Net;
using System.Text.Json;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>
/// <see cref="RouteMatrix"/> and <see cref="AnalysisMatrix"/> on the Functions app: every one of its own routes (the management
/// routes are the Durable extension's) against a run in every state, each call made to the HTTP function as the worker
/// activates and invokes it. A Pending run is one started through <see cref="FunctionsAppFixture.PendingClient"/>, the app's
/// <c>[DurableClient]</c> on a task hub that no worker polls; the cells of that column are called with that client. And
/// <see cref="RecurringMatrix"/>: the recurring-training timer function after a previous run in every state, in every setup.
/// </summary>
[Collection(FunctionsAppCollection.Name)]
public sealed class FunctionsRouteMatrixTests(FunctionsAppFixture app, ITestOutputHelper log)
{
    private const string Host = "https://contoso-fl.azurewebsites.net";

    // The fixture's silos on the local compute (its process silo would start a runner process for every step of every round).
    private static readonly string[] Silos = FunctionsAppFixture.Data.Select(d => d.SiloId).Where(s => s != FunctionsAppFixture.ProcessSilo).ToArray();

    private static readonly MatrixSpec Spec = MatrixSpecs.For(Silos, classes: 4);

    [Fact]
    public async Task EveryRouteOfTheAppInEveryRunState_AnswersAsDocumented_NeverA500()
    {
        // Pending runs are started through the app's [DurableClient] on a task hub no worker polls; every other state on
        // the fixture's hub, whose worker the other tests of the collection share.
        var (client, pending) = (new StatusOverridingClient(app.Client), new StatusOverridingClient(app.PendingClient));
        var matrix = Runner(RouteMatrix.Shape, (client, Maker("fmx", client).CreateAsync), (pending, Maker("fmxp", pending).CreateAsync));

        var routes = RouteMatrix.Routes.Where(r => !r.Management).ToArray();
        IReadOnlyList<string> failures;
        try
        {
            failures = await matrix.RunAsync(routes, RouteMatrix.States);
        }
        finally
        {
            // The fixture's worker is shared: the matrix's runs still going stop here.
            await foreach (var going in app.Client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = "fmx-", Statuses = [.. Api.InstanceStarts.Active] }))
            {
                await app.Client.TerminateInstanceAsync(going.InstanceId, "the route matrix is done");
            }
        }

        log.WriteLine($"{routes.Length} routes × {RouteMatrix.States.Count} states = {matrix.Actual.Count} cells");
        Assert.Equal(routes.Length * RouteMatrix.States.Count, matrix.Actual.Count);
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public async Task EveryAnalysisRouteAndRunRouteOfTheAppInEveryAnalysisState_AnswersAsDocumented_NeverA500()
    {
        AnalysisStateMaker Analyses(string prefix, DurableTaskClient on) =>
            new(prefix, on, Silos, async spec => Accepted(await CallAsync<AnalysesHttpFunctions>((f, c) => f.StartAnalysisAsync(FakeRequest.Json(c, "POST", Host + "/api/analyses", spec), on))));
        var matrix = Runner(AnalysisMatrix.Shape, (app.Client, Analyses("fmxa", app.Client).CreateAsync), (app.PendingClient, Analyses("fmxap", app.PendingClient).CreateAsync));
        var routes = AnalysisMatrix.Routes.Where(r => !r.Management).ToArray();
        var failures = await matrix.RunAsync(routes, AnalysisMatrix.States);

        log.WriteLine($"{routes.Length} routes × {AnalysisMatrix.States.Count} states = {matrix.Actual.Count} cells");
        Assert.Equal(routes.Length * AnalysisMatrix.States.Count, matrix.Actual.Count);
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public async Task RecurringTrainingTimerAfterEveryPreviousRunStateInEverySetup_DoesAsDocumented_NeverThrows()
    {
        // Each tick is the timer function activated and invoked as the worker does, in a worker host built as Program.cs
        // builds it from the fixture's app settings plus the cell's Recurring settings, with the app's [DurableClient].
        var matrix = new RecurringMatrixRunner(
            "frec",
            new StatusOverridingClient(app.Client),
            new StatusOverridingClient(app.PendingClient),
            Maker,
            app.Worker.Services.GetRequiredService<ICheckpointStore>(),
            app.Azurite.Blobs,
            Spec("template", 10_000, "eyes-on", null, null),
            async cell =>
            {
                using var worker = WorkerHost.Build(new Dictionary<string, string?>(app.Settings.Concat(cell.Settings)), s => s.AddSingleton<ILoggerProvider>(cell.Logs));
                var (functions, context, scope) = worker.Activate<RecurringTrainingFunction>();
                using (scope)
                {
                    await functions.RunAsync(new TimerInfo(), cell.Seen(cell.Pending ? app.PendingClient : app.Client), context);
                }
            });
        var failures = await matrix.RunAsync(RecurringMatrix.Rows, RecurringMatrix.Columns);

        log.WriteLine($"{RecurringMatrix.Rows.Count} previous-run states × {RecurringMatrix.Columns.Count} setups = {matrix.Actual.Count} cells answered");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
        Assert.Equal(RecurringMatrix.Rows.Count * RecurringMatrix.Columns.Count, matrix.Actual.Count);
    }

    // Makes runs in a state through the app's own HTTP functions, with the [DurableClient] given.
    private RunStateMaker Maker(string prefix, StatusOverridingClient on) => new(
        prefix,
        on,
        Spec,
        async spec => Accepted(await CallAsync<RunsHttpFunctions>((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", Host + "/api/runs", spec), on))),
        async id => Accepted(await CallAsync<RunsHttpFunctions>((f, c) => f.CancelRunAsync(new FakeRequest(c, "POST", $"{Host}/api/runs/{id}/cancel"), on, id))),
        async id => JsonDocument.Parse((await CallAsync<RunsHttpFunctions>((f, c) => f.GetRunAsync(new FakeRequest(c, "GET", $"{Host}/api/runs/{id}"), on, id))).Text).RootElement.GetProperty("rounds").GetArrayLength());

    // A matrix runner whose Pending column is made and called with the [DurableClient] of the hub no worker polls, every
    // other column with the fixture's.
    private RouteMatrixRunner<TState> Runner<TState>(
        MatrixShape<TState> shape, (DurableTaskClient Client, Func<TState, Task<string>> Create) hub, (DurableTaskClient Client, Func<TState, Task<string>> Create) idle)
        where TState : struct, Enum
    {
        var pending = shape.Pending ?? throw new ArgumentException("The matrix has no Pending column.", nameof(shape));
        (DurableTaskClient Client, Func<TState, Task<string>> Create) On(TState state) => EqualityComparer<TState>.Default.Equals(state, pending) ? idle : hub;
        return new RouteMatrixRunner<TState>(
            shape,
            state => On(state).Create(state),
            (route, state, id) => CallAsync(On(state).Client, route, shape.PathOf(route, state, id), id),
            beforePending: () => Task.CompletedTask);
    }

    private static void Accepted(FakeResponse response) =>
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{response.StatusCode}: {response.Text}");

    private async Task<CellResponse> CallAsync(DurableTaskClient client, MatrixRoute route, string path, string id)
    {
        var url = Host + path;
        var body = MatrixRequests.BodyOf(route, id, Spec(id, 1, "eyes-on", null, null), Silos);
        HttpRequestData Request(FunctionContext c) => body is null ? new FakeRequest(c, route.Method, url) : FakeRequest.Json(c, route.Method, url, body);
        var response = route.Key switch
        {
            "start" => await CallAsync<RunsHttpFunctions>((f, c) => f.StartRunAsync(Request(c), client)),
            "get" => await CallAsync<RunsHttpFunctions>((f, c) => f.GetRunAsync(Request(c), client, id)),
            "list" or "list-own-status" or "list-other-status" => await CallAsync<RunsHttpFunctions>((f, c) => f.ListRunsAsync(Request(c), client)),
            "cancel" => await CallAsync<RunsHttpFunctions>((f, c) => f.CancelRunAsync(Request(c), client, id)),
            "resume" or "resume-other" => await CallAsync<RunsHttpFunctions>((f, c) => f.ResumeRunAsync(Request(c), client, id)),
            "checkpoints" => await CallAsync<RunsHttpFunctions>((f, c) => f.GetRunCheckpointsAsync(Request(c), client, id)),
            "model" => await CallAsync<RunsHttpFunctions>((f, c) => f.GetRunModelAsync(Request(c), client, id, "latest")),
            "audit" => await CallAsync<RunsHttpFunctions>((f, c) => f.GetRunAuditAsync(Request(c), client, id)),
            "analysis-start" => await CallAsync<AnalysesHttpFunctions>((f, c) => f.StartAnalysisAsync(Request(c), client)),
            "analysis-list" or "analysis-list-own-status" => await CallAsync<AnalysesHttpFunctions>((f, c) => f.ListAnalysesAsync(Request(c), client)),
            "analysis-get" => await CallAsync<AnalysesHttpFunctions>((f, c) => f.GetAnalysisAsync(Request(c), client, id)),
            _ => throw new InvalidOperationException($"The app has no function for route {route.Key}."),
        };
        var type = response.Headers.TryGetValues("Content-Type", out var types) ? types.First().Split(';')[0] : null;
        return new CellResponse((int)response.StatusCode, type, ((MemoryStream)response.Body).ToArray());
    }

    private async Task<FakeResponse> CallAsync<TFunctions>(Func<TFunctions, FunctionContext, Task<HttpResponseData>> call)
        where TFunctions : class
    {
        var (functions, context, scope) = app.Worker.Activate<TFunctions>();
        using (scope)
        {
            return (FakeResponse)await call(functions, context);
        }
    }
}
