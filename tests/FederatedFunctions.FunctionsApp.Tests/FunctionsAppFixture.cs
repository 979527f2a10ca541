using FederatedFunctions.Core.Silos;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>
/// The Functions app as deployed, minus the Functions host: the worker host Program.cs builds, with its real adapters on a
/// real Azurite (checkpoints, three silos with container-scoped SAS), its orchestration and activity functions run by a
/// Durable Task worker through the app's own trigger methods, and a <c>[DurableClient]</c> bound by the Durable extension's
/// converter to that worker's gRPC endpoint. A second <c>[DurableClient]</c>, <see cref="PendingClient"/>, is bound the same
/// way to an in-memory task hub that no worker polls.
/// </summary>
public sealed class FunctionsAppFixture : IAsyncLifetime
{
    public const string TaskHub = "FederatedFunctions";
    public const string SystemKey = "test-system-key";

    public static readonly IReadOnlyList<SiloDataset> Data =
        SyntheticData.Generate(new SyntheticOptions(Silos: 3, Classes: 4, Features: 8, TrainPerSilo: 160, TestPerSilo: 60, DirichletAlpha: 0.5, Seed: 11));

    private readonly AzuriteFixture azurite = new();
    private readonly TempDirectory home = new();

    /// <summary>The silo whose steps run as separate silo runner processes.</summary>
    public static string ProcessSilo => Data[^1].SiloId;

    /// <summary>The folder of the process compute's jobs.</summary>
    public string JobsDirectory => Path.Combine(home.Path, "jobs");
    private DurableTestHost? durable;
    private DurableTestHost? idle;
    private WorkerHost? worker;

    public WorkerHost Worker => worker ?? throw new InvalidOperationException("Not started.");

    public DurableTaskClient Client { get; private set; } = null!;

    /// <summary>
    /// The app's <c>[DurableClient]</c> on a task hub of its own that no worker polls: an instance started through it stays
    /// Pending, as one does when every worker of a hub is down or busy. The matrices' Pending columns use it.
    /// </summary>
    public DurableTaskClient PendingClient { get; private set; } = null!;

    /// <summary>The app settings the worker host was built with.</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; private set; } = new Dictionary<string, string?>();

    public AzuriteFixture Azurite => azurite;

    public async Task InitializeAsync()
    {
        await azurite.InitializeAsync();

        // The first silos train in the worker's process; the last one runs each step as a separate silo runner process,
        // with a credential file the app never opens, so the app's silo job orchestration and activities run too.
        var local = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, Data.SkipLast(1).Select(d => d.SiloId).ToArray(), TimeSpan.FromHours(2));
        var process = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, [ProcessSilo], TimeSpan.FromHours(2), SiloComputeKinds.Process, id => Path.Combine(home.Path, id + ".json"));
        var silos = local.Concat(process).ToDictionary();
        foreach (var d in Data)
        {
            await LocalSiloProvisioner.WriteSplitsAsync(silos[d.SiloId], d);
            await SiloRegistryFile.WriteCredentialsAsync(Path.Combine(home.Path, d.SiloId + ".json"), silos[d.SiloId].Credentials, default);
        }

        var settings = LocalSiloProvisioner.ToSettings(silos);
        settings["Silos:" + ProcessSilo + ":Compute:PollSeconds"] = "1";
        settings["Compute:Process:JobsDirectory"] = Path.Combine(home.Path, "jobs");
        foreach (var (arg, i) in Workspace.RunnerCommand.Select((a, i) => (a, i)))
        {
            settings[$"Compute:Process:Runner:{i}"] = arg;
        }

        settings["AzureWebJobsStorage"] = azurite.ConnectionString;
        settings["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated";
        settings["DURABLE_TASK_HUB"] = TaskHub;
        settings["Trust:ApprovedTrainers:0:Id"] = LocalTrainerIdentity.Value.Id;
        settings["Trust:ApprovedTrainers:0:Sha256"] = LocalTrainerIdentity.Value.Sha256;
        Settings = settings;
        worker = WorkerHost.Build(settings);

        var port = LocalHost.Local.Azurite.FreePort();
        var converter = worker.DataConverter;
        void UseConverter(IServiceCollection s)
        {
            s.Configure<DurableTaskWorkerOptions>(o => o.DataConverter = converter);
            s.Configure<DurableTaskClientOptions>(o => o.DataConverter = converter);
        }

        durable = await DurableTestHost.StartAsync(r => worker.AddFunctionTasks(r), new DurableTestHostOptions { Port = port, ConfigureServices = UseConverter });
        Client = await worker.BindDurableClientAsync(port, TaskHub, SystemKey);

        var idlePort = LocalHost.Local.Azurite.FreePort();
        idle = await DurableTestHost.StartAsync(_ => { }, new DurableTestHostOptions { Port = idlePort, ConfigureServices = UseConverter, RunWorker = false });
        PendingClient = await worker.BindDurableClientAsync(idlePort, TaskHub, SystemKey);
    }

    public async Task DisposeAsync()
    {
        if (durable is not null)
        {
            await durable.DisposeAsync();
        }

        if (idle is not null)
        {
            await idle.DisposeAsync();
        }

        worker?.Dispose();
        await azurite.DisposeAsync();
        home.Dispose();
    }

    public static string SpecJson(string runId, int rounds, string privacy = "") =>
        $$"""
        { "runId": "{{runId}}",
          "model": { "architecture": "mlp", "inputs": 8, "hidden": [16] },
          "data": { "classes": 4 },
          "training": { "rounds": {{rounds}}, "learningRate": 0.1, "seed": 3 },
          {{privacy}}
          "silos": [{{string.Join(", ", Data.Select(d => $"\"{d.SiloId}\""))}}] }
        """;

    public async Task AssertCompletesAsync(string runId)
    {
        var done = await WaitAsync(runId);
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, $"{runId}: {done.RuntimeStatus} {done.FailureDetails?.ErrorType}: {done.FailureDetails?.ErrorMessage} {done.FailureDetails?.StackTrace}");
    }

    public async Task<OrchestrationMetadata> WaitAsync(string runId)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        // The worker's own client: the Functions-bound one has the binding's 100 s gRPC timeout per call.
        return await durable!.Client.WaitForInstanceCompletionAsync(runId, getInputsAndOutputs: true, cts.Token);
    }
}

[CollectionDefinition(Name)]
public sealed class FunctionsAppCollection : ICollectionFixture<FunctionsAppFixture>
{
    public const string Name = "functions-app";
}
