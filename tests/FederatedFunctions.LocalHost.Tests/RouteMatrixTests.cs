using System.Net;
using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// <see cref="RouteMatrix"/> on <c>fl serve</c>: every route, over real HTTP, against a run in every state, on the Azure Storage
/// backend over Azurite. Each cell must give its documented status and problem type, and a body that parses (JSON, or the
/// model's safetensors); a cell that changes the run gets a run of its own in that state.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RouteMatrixTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private static readonly string[] Silos = ["mx-silo-1", "mx-silo-2"];
    private static readonly MatrixSpec Spec = MatrixSpecs.For(Silos, classes: 3);

    [Fact]
    public async Task EveryRouteInEveryRunState_AnswersAsDocumented_NeverA500()
    {
        await using var world = await MatrixWorld.StartAsync(azurite);
        var matrix = new RouteMatrixRunner<RunState>(RouteMatrix.Shape, world.CreateAsync, (route, state, id) => world.CallAsync(route, RouteMatrix.Shape.PathOf(route, state, id), id), world.StopWorkerAsync);
        var failures = (await matrix.RunAsync(RouteMatrix.Routes, RouteMatrix.States)).ToList();
        var bases = matrix.Runs;

        // The eyes-off failure says which step failed and a silo-side reference, never the silo's own error text.
        var eyesOff = await world.Http.GetStringAsync($"/api/runs/{bases[RunState.FailedEyesOff]}");
        var eyesOn = await world.Http.GetStringAsync($"/api/runs/{bases[RunState.FailedEyesOn]}");
        log.WriteLine("eyes-on failure: " + JsonDocument.Parse(eyesOn).RootElement.GetProperty("failure").GetString());
        log.WriteLine("eyes-off failure: " + JsonDocument.Parse(eyesOff).RootElement.GetProperty("failure").GetString());
        foreach (var leak in new[] { "missing.csv", "BlobNotFound", "does not exist" })
        {
            if (eyesOff.Contains(leak, StringComparison.Ordinal))
            {
                failures.Add($"the eyes-off failure shows the silo's error text ('{leak}'): {eyesOff}");
            }
        }

        log.WriteLine($"{RouteMatrix.Routes.Count} routes × {RouteMatrix.States.Count} states = {matrix.Actual.Count} cells");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public async Task EveryAnalysisRouteAndRunRouteInEveryAnalysisState_AnswersAsDocumented_NeverA500()
    {
        await using var world = await MatrixWorld.StartAsync(azurite);
        var matrix = new RouteMatrixRunner<AnalysisInstanceState>(AnalysisMatrix.Shape, world.Analyses.CreateAsync, (route, state, id) => world.CallAsync(route, AnalysisMatrix.Shape.PathOf(route, state, id), id), world.StopWorkerAsync);
        var failures = await matrix.RunAsync(AnalysisMatrix.Routes, AnalysisMatrix.States);

        log.WriteLine($"{AnalysisMatrix.Routes.Count} routes × {AnalysisMatrix.States.Count} states = {matrix.Actual.Count} cells");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    /// <summary>
    /// Silos, an <c>fl serve</c> (its API server over a local durable host that runs no work, as <c>fl serve</c> with its
    /// workers elsewhere), a worker host on the same task hub, and runs put into each state.
    /// </summary>
    private sealed class MatrixWorld : IAsyncDisposable
    {
        private readonly LocalDurableHost host;
        private readonly LocalApiServer server;
        private readonly RunStateMaker maker;
        private LocalDurableHost? worker;

        private MatrixWorld(LocalDurableHost host, LocalDurableHost worker, StatusOverridingClient client, LocalApiServer server)
        {
            (this.host, this.worker, this.server) = (host, worker, server);
            Http = new HttpClient { BaseAddress = new Uri(server.Address) };
            maker = new RunStateMaker("mx", client, Spec, StartAsync, CancelAsync, CommittedAsync);
            Analyses = new AnalysisStateMaker("mxa", client, Silos, spec => PostAcceptedAsync("/api/analyses", spec));
        }

        public HttpClient Http { get; }

        public static async Task<MatrixWorld> StartAsync(AzuriteFixture azurite)
        {
            var options = await MatrixHub.OptionsAsync(azurite, Silos, "flmatrix");
            var worker = await LocalDurableHost.StartAsync(options);
            var host = await LocalDurableHost.StartAsync(options with { RunWorker = false });
            var client = new StatusOverridingClient(host.Client);
            var server = await LocalApiServer.StartAsync(host, client, $"http://127.0.0.1:{Azurite.FreePort()}", NullLoggerFactory.Instance);
            return new MatrixWorld(host, worker, client, server);
        }

        /// <summary>Stops the worker: from then on nothing runs, so a run scheduled now stays Pending, and one running stays Running.</summary>
        public async Task StopWorkerAsync()
        {
            await worker!.DisposeAsync();
            worker = null;
        }

        /// <summary>A new run id, put into <paramref name="state"/> through this host's routes.</summary>
        public Task<string> CreateAsync(RunState state)
        {
            Assert.True(state != RunState.Pending || worker is null, "a Pending run is made once no worker is left");
            return maker.CreateAsync(state);
        }

        /// <summary>Makes analyses in each state.</summary>
        public AnalysisStateMaker Analyses { get; }

        /// <summary>Calls one cell over HTTP.</summary>
        public async Task<CellResponse> CallAsync(MatrixRoute route, string path, string id)
        {
            using var request = new HttpRequestMessage(new HttpMethod(route.Method), path);
            if (MatrixRequests.BodyOf(route, id, Spec(id, 1, PrivacyModes.EyesOn, null, null), Silos) is { } body)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            using var response = await Http.SendAsync(request);
            return new CellResponse((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsByteArrayAsync());
        }

        public async ValueTask DisposeAsync()
        {
            // The runs left running stop with the worker; their task hub is this test's own.
            Http.Dispose();
            await server.DisposeAsync();
            await host.DisposeAsync();
            if (worker is not null)
            {
                await worker.DisposeAsync();
            }
        }

        private Task StartAsync(string spec) => PostAcceptedAsync("/api/runs", spec);

        private Task CancelAsync(string id) => PostAcceptedAsync($"/api/runs/{id}/cancel", null);

        private async Task PostAcceptedAsync(string path, string? json)
        {
            using var response = await Http.PostAsync(path, json is null ? null : new StringContent(json, Encoding.UTF8, "application/json"));
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        }

        private async Task<int> CommittedAsync(string id)
        {
            using var run = JsonDocument.Parse(await Http.GetStringAsync($"/api/runs/{id}"));
            return run.RootElement.GetProperty("rounds").GetArrayLength();
        }
    }
}

/// <summary>
/// The tables in <c>docs/api.md</c> are <see cref="RouteMatrix"/>'s, <see cref="AnalysisMatrix"/>'s and <see cref="RecurringMatrix"/>'s,
/// so the documentation and the tests cannot drift.
/// </summary>
public sealed class RouteMatrixDocsTests
{
    [Theory]
    [InlineData(nameof(RouteMatrix))]
    [InlineData(nameof(AnalysisMatrix))]
    [InlineData(nameof(RecurringMatrix))]
    public void ApiDoc_HoldsTheMatrixTable_AsGeneratedFromTheTestsSource(string matrix)
    {
        var (beginMarker, endMarker, markdown) = matrix switch
        {
            nameof(RouteMatrix) => (RouteMatrix.BeginMarker, RouteMatrix.EndMarker, RouteMatrix.Markdown()),
            nameof(AnalysisMatrix) => (AnalysisMatrix.BeginMarker, AnalysisMatrix.EndMarker, AnalysisMatrix.Markdown()),
            _ => (RecurringMatrix.BeginMarker, RecurringMatrix.EndMarker, RecurringMatrix.Markdown()),
        };
        var doc = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "api.md")).ReplaceLineEndings("\n");
        var begin = doc.IndexOf(beginMarker, StringComparison.Ordinal);
        var end = doc.IndexOf(endMarker, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"docs/api.md has no {matrix} table between its markers");
        Assert.Equal(markdown, doc[(begin + beginMarker.Length)..end].Trim('\n') + "\n");
    }
}
