using System.Text;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Api.Tests;

/// <summary>The shared API over a real DurableTaskClient (DurableTestHost) and the real orchestrator, with in-memory storage ports.</summary>
internal sealed class ApiHarness : IAsyncDisposable
{
    public static readonly IReadOnlyList<SiloDataset> Data =
        SyntheticData.Generate(new SyntheticOptions(Silos: 3, Classes: 4, Features: 8, TrainPerSilo: 160, TestPerSilo: 60, DirichletAlpha: 0.5, Seed: 4));

    private ApiHarness(DurableTestHost host, InMemoryBlobs blobs, InMemoryCheckpointStore store, InMemorySiloBackend backend, InMemoryRecurringStore recurring, RecurringOptions options, TrustOptions? trust)
    {
        Host = host;
        Blobs = blobs;
        Store = store;
        Backend = backend;
        RecurringStore = recurring;
        RecurringOptions = options;
        Api = new RunsApi(store, backend, TimeProvider.System, NullLogger<RunsApi>.Instance, Options.Create(trust ?? new TrustOptions()));
        Recurring = new RecurringTrainingService(Api, store, recurring, Options.Create(options), NullLogger<RecurringTrainingService>.Instance);
        Analyses = new AnalysesApi(store, backend, TimeProvider.System, NullLogger<AnalysesApi>.Instance, Options.Create(trust ?? new TrustOptions()));
    }

    public DurableTestHost Host { get; }
    public DurableTaskClient Client => Host.Client;
    public InMemoryBlobs Blobs { get; }
    public InMemoryCheckpointStore Store { get; }
    public InMemorySiloBackend Backend { get; }
    public InMemoryRecurringStore RecurringStore { get; }
    public RecurringOptions RecurringOptions { get; }
    public RunsApi Api { get; }
    public RecurringTrainingService Recurring { get; }
    public AnalysesApi Analyses { get; }

    public static ManagementUrls Urls(string id) => new(id, $"http://test/status/{id}", $"http://test/terminate/{id}", $"http://test/purge/{id}");

    public static async Task<ApiHarness> StartAsync(TrustOptions? trust = null)
    {
        var blobs = new InMemoryBlobs();
        var store = new InMemoryCheckpointStore(blobs);
        var backend = new InMemorySiloBackend(blobs, Data.ToDictionary(d => d.SiloId));
        var host = await DurableTestHost.StartAsync(r => r.AddFederatedTasks(), new DurableTestHostOptions
        {
            ConfigureServices = services =>
            {
                services.AddLogging();
                services.AddFederatedWorkflow();
                services.AddInMemorySilos(backend, store);
            },
        });
        return new ApiHarness(host, blobs, store, backend, new InMemoryRecurringStore(), new RecurringOptions(), trust);
    }

    public static string SpecJson(string? runId, int rounds) =>
        $$"""
        { {{(runId is null ? string.Empty : $"\"runId\": \"{runId}\",")}}
          "model": { "architecture": "mlp", "inputs": 8, "hidden": [16] },
          "data": { "classes": 4 },
          "training": { "rounds": {{rounds}}, "learningRate": 0.1, "seed": 3 },
          "silos": [{{string.Join(", ", Data.Select(d => $"\"{d.SiloId}\""))}}] }
        """;

    public Task<ApiResponse> StartAsync(string json) =>
        Api.StartAsync(Client, Encoding.UTF8.GetBytes(json), Urls, default);

    /// <summary><c>POST /api/analyses</c> with a JSON body.</summary>
    public Task<ApiResponse> StartAnalysisAsync(string json) =>
        Analyses.StartFromHttpAsync(Client, "application/json", Encoding.UTF8.GetBytes(json), Urls, default);

    /// <summary>An analysis spec over every silo: count, mean and quantiles of x0, value counts of the label.</summary>
    public static string AnalysisSpecJson(string? analysisId, string path = "data/train.csv", IEnumerable<string>? silos = null) =>
        $$"""
        { {{(analysisId is null ? string.Empty : $"\"analysisId\": \"{analysisId}\",")}}
          "silos": [{{string.Join(", ", (silos ?? Data.Select(d => d.SiloId)).Select(s => $"\"{s}\""))}}],
          "data": { "format": "csv", "path": "{{path}}" },
          "features": [
            { "column": "x0", "statistics": ["count", "missing", "mean", "quantiles"], "quantiles": [0.5] },
            { "column": "label", "statistics": ["valueCounts"] } ],
          "privacy": { "mode": "eyes-on", "minCount": 1 } }
        """;

    public async Task<OrchestrationMetadata> WaitAsync(string runId)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        return await Client.WaitForInstanceCompletionAsync(runId, getInputsAndOutputs: true, cts.Token);
    }

    public async Task WaitForRoundAsync(string runId, int round)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while ((await Store.GetLatestAsync("checkpoints", runId, default))?.Round < round || await Store.GetLatestAsync("checkpoints", runId, default) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"run {runId} did not reach round {round}");
            await Task.Delay(50);
        }
    }

    /// <summary>Puts <paramref name="silo"/>'s steps on a scripted remote compute, read every second.</summary>
    public ScriptedRemoteCompute UseRemote(string silo)
    {
        var compute = new ScriptedRemoteCompute(Backend, Blobs);
        Backend.Remote = compute;
        Backend.RemoteSilos.Add(silo);
        Backend.RemotePollSeconds = 1;
        return compute;
    }

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}
