using System.Net;
using System.Text.Json;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.TestSupport;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Xunit.Abstractions;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>
/// <see cref="RouteMatrix"/> on the Functions app: every one of its own routes (the management routes are the Durable
/// extension's) against a run in every state, each call made to the HTTP function as the worker activates and invokes it.
/// </summary>
[Collection(FunctionsAppCollection.Name)]
public sealed class FunctionsRouteMatrixTests(FunctionsAppFixture app, ITestOutputHelper log)
{
    private const string Host = "https://contoso-fl.azurewebsites.net";

    [Fact]
    public async Task EveryRouteOfTheAppInEveryRunStateButPending_AnswersAsDocumented_NeverA500()
    {
        var client = new StatusOverridingClient(app.Client);
        var maker = new RunStateMaker(
            "fmx",
            client,
            Spec,
            async spec => Accepted(await CallAsync<RunsHttpFunctions>((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", Host + "/api/runs", spec), client))),
            async id => Accepted(await CallAsync<RunsHttpFunctions>((f, c) => f.CancelRunAsync(new FakeRequest(c, "POST", $"{Host}/api/runs/{id}/cancel"), client, id))),
            async id => JsonDocument.Parse((await CallAsync<RunsHttpFunctions>((f, c) => f.GetRunAsync(new FakeRequest(c, "GET", $"{Host}/api/runs/{id}"), client, id))).Text).RootElement.GetProperty("rounds").GetArrayLength());
        var matrix = new RouteMatrixRunner<RunState>(RouteMatrix.Shape, maker.CreateAsync, (route, state, id) => CallAsync(client, route, RouteMatrix.Shape.PathOf(route, state, id), id), beforePending: null);

        // Pending needs a host that starts no new run: this app's worker is shared by the other tests of its collection, so
        // that column is shown on fl serve (RouteMatrixTests), over the same handlers.
        var routes = RouteMatrix.Routes.Where(r => !r.Management).ToArray();
        var states = RouteMatrix.States.Where(s => s != RunState.Pending).ToArray();
        IReadOnlyList<string> failures;
        try
        {
            failures = await matrix.RunAsync(routes, states);
        }
        finally
        {
            // The fixture's worker is shared: the matrix's runs still going stop here.
            await foreach (var going in app.Client.GetAllInstancesAsync(new Microsoft.DurableTask.Client.OrchestrationQuery { InstanceIdPrefix = "fmx-", Statuses = [.. Api.InstanceStarts.Active] }))
            {
                await app.Client.TerminateInstanceAsync(going.InstanceId, "the route matrix is done");
            }
        }


        log.WriteLine($"{routes.Length} routes × {states.Length} states = {matrix.Actual.Count} cells");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    // The fixture's silos on the local compute (its process silo would start a runner process for every step of every round).
    private static readonly string[] Silos = FunctionsAppFixture.Data.Select(d => d.SiloId).Where(s => s != FunctionsAppFixture.ProcessSilo).ToArray();

    private static readonly MatrixSpec Spec = MatrixSpecs.For(Silos, classes: 4);

    [Fact]
    public async Task EveryAnalysisRouteAndRunRouteOfTheAppInEveryAnalysisStateButPending_AnswersAsDocumented_NeverA500()
    {
        var analyses = new AnalysisStateMaker("fmxa", app.Client, Silos, async spec => Accepted(await CallAsync<AnalysesHttpFunctions>((f, c) => f.StartAnalysisAsync(FakeRequest.Json(c, "POST", Host + "/api/analyses", spec), app.Client))));
        var matrix = new RouteMatrixRunner<AnalysisInstanceState>(AnalysisMatrix.Shape, analyses.CreateAsync, (route, state, id) => CallAsync(app.Client, route, AnalysisMatrix.Shape.PathOf(route, state, id), id), beforePending: null);
        var routes = AnalysisMatrix.Routes.Where(r => !r.Management).ToArray();
        var states = AnalysisMatrix.States.Where(s => s != AnalysisInstanceState.Pending).ToArray();
        var failures = await matrix.RunAsync(routes, states);

        log.WriteLine($"{routes.Length} routes × {states.Length} states = {matrix.Actual.Count} cells");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    private static void Accepted(FakeResponse response) =>
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{response.StatusCode}: {response.Text}");

    private async Task<CellResponse> CallAsync(Microsoft.DurableTask.Client.DurableTaskClient client, MatrixRoute route, string path, string id)
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
