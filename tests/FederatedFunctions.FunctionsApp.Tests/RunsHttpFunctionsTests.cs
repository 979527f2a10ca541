using System.Net;
using System.Text.Json;
using FederatedFunctions.Adapters.Local;
using FederatedFunctions.Api;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>The HTTP trigger methods themselves, called with a real DurableTaskClient.</summary>
public sealed class RunsHttpFunctionsTests : IAsyncLifetime
{
    private readonly InMemoryCheckpointStore store = new(new InMemoryBlobs());
    private DurableTaskTestHost host = null!;
    private RunsHttpFunctions functions = null!;

    public async Task InitializeAsync()
    {
        host = await DurableTaskTestHost.StartAsync(r => r.AddFederatedTasks(), new DurableTaskTestHostOptions
        {
            Port = Azurite.FreePort(),
            ConfigureServices = s => s.AddLogging().AddFederatedWorkflow().AddSingleton<ICheckpointStore>(store),
        });
        functions = new RunsHttpFunctions(new RunsApi(store, TimeProvider.System, NullLogger<RunsApi>.Instance));
    }

    public async Task DisposeAsync() => await host.DisposeAsync();

    [Fact]
    public async Task StartRun_InvalidSpec_WritesA400ProblemDocument()
    {
        var request = FakeRequest.Json("POST", "http://localhost:7071/api/runs", """{ "training": { "rounds": -1 }, "silos": [] }""");
        var response = (FakeResponse)await functions.StartRunAsync(request, host.Client);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("application/problem+json", response.Headers.GetValues("Content-Type").Single(), StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(response.Text);
        var paths = doc.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToArray();
        Assert.Contains("$.training.rounds", paths);
        Assert.Contains("$.silos", paths);
    }

    [Fact]
    public async Task StartRun_BodyOverTheLimit_Writes413WithoutParsing()
    {
        var big = new byte[RunsApi.MaxBodyBytes + 1];
        Array.Fill(big, (byte)' ');
        var response = (FakeResponse)await functions.StartRunAsync(new FakeRequest("POST", "http://localhost:7071/api/runs", big), host.Client);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("body-too-large", response.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetRunAndCheckpoints_UnknownId_Write404()
    {
        var get = (FakeResponse)await functions.GetRunAsync(new FakeRequest("GET", "http://localhost:7071/api/runs/ghost"), host.Client, "ghost");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        Assert.Contains("run-not-found", get.Text, StringComparison.Ordinal);
        var checkpoints = (FakeResponse)await functions.GetRunCheckpointsAsync(new FakeRequest("GET", "http://localhost:7071/api/runs/ghost/checkpoints"), host.Client, "ghost");
        Assert.Equal(HttpStatusCode.NotFound, checkpoints.StatusCode);
    }

    [Fact]
    public async Task ListRuns_QueryString_IsPassedToTheHandler()
    {
        var bad = (FakeResponse)await functions.ListRunsAsync(new FakeRequest("GET", "http://localhost:7071/api/runs?pageSize=0"), host.Client);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var ok = (FakeResponse)await functions.ListRunsAsync(new FakeRequest("GET", "http://localhost:7071/api/runs?status=Completed&pageSize=5"), host.Client);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("""{"runs":[]}""", ok.Text);
    }
}
