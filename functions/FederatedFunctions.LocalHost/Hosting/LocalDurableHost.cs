using System.Net;
using DurableTask.AzureStorage;
using DurableTask.Core;
using FederatedFunctions.Adapters;
using FederatedFunctions.Api;
using FederatedFunctions.Workflow;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing.Sidecar;
using Microsoft.DurableTask.Testing.Sidecar.Grpc;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>Which durable backend the local host runs on.</summary>
public enum DurableBackendKind
{
    /// <summary>Embedded and in memory: nothing to start, nothing survives the process.</summary>
    InMemory,

    /// <summary>DurableTask.AzureStorage (the Durable Functions default provider) on Azurite or a real account: runs survive host restarts.</summary>
    AzureStorage,
}

/// <summary>Options of <see cref="LocalDurableHost"/>.</summary>
public sealed record LocalDurableHostOptions
{
    /// <summary>The durable backend.</summary>
    public DurableBackendKind Backend { get; init; } = DurableBackendKind.InMemory;

    /// <summary>Storage connection string for <see cref="DurableBackendKind.AzureStorage"/>.</summary>
    public string? DurableStorageConnectionString { get; init; }

    /// <summary>Task hub name for <see cref="DurableBackendKind.AzureStorage"/>.</summary>
    public string TaskHub { get; init; } = "flhub";

    /// <summary>
    /// Partitions of the task hub (Azure Storage backend): orchestrations are spread over this many control queues, each
    /// owned by one worker process at a time. Fixed when the hub is created; every host of a hub must use the hub's count
    /// (<see cref="TaskHubPartitions.ResolveAsync"/>). Activities are shared by all workers whatever the count.
    /// </summary>
    public int PartitionCount { get; init; } = TaskHubPartitions.Default;

    /// <summary>
    /// This process's name among the workers of the task hub (Azure Storage backend; partition leases are held under it).
    /// Null keeps the backend's default, the machine name, under which a restarted host takes its leases back at once;
    /// worker processes that share a machine need distinct names.
    /// </summary>
    public string? WorkerName { get; init; }

    /// <summary>Whether this process executes orchestrations and activities, or only manages instances.</summary>
    public bool RunWorker { get; init; } = true;

    /// <summary>
    /// How soon work that was in flight when a host died runs again (Azure Storage backend): the control and work-item
    /// queues' visibility timeout. A live host keeps the work it holds locked however long it runs (<see cref="SidecarStorageFix"/>).
    /// </summary>
    public TimeSpan WorkItemVisibilityTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait between polls of an empty queue (Azure Storage backend): lower is snappier, higher is cheaper.</summary>
    public TimeSpan MaxQueuePollingInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Activities run at once. Training is CPU-bound, so the default is the core count.</summary>
    public int MaxConcurrentActivities { get; init; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// Whether <see cref="MaxConcurrentActivities"/> also bounds the activities this process takes from the task hub, so that
    /// the rest wait in the queue for other worker processes (<c>fl worker</c>). Otherwise this process takes all it can
    /// (up to 256), which is fastest alone.
    /// </summary>
    public bool HoldOnlyRunnableActivities { get; init; }

    /// <summary>Host configuration (silo registry, orchestrator storage).</summary>
    public required IConfiguration Configuration { get; init; }

    /// <summary>Where the hosts log.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The variables that turn telemetry on (<see cref="LocalTelemetry"/>): the process's environment unless a test gives others.</summary>
    public IReadOnlyDictionary<string, string?> TelemetryEnvironment { get; init; } = LocalTelemetry.ProcessEnvironment();

    /// <summary>Extra service registrations (tests swap adapters here).</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>Extra orchestrations and activities, registered after the federated ones (the durable-step benchmark's no-op tasks).</summary>
    public Action<Microsoft.DurableTask.DurableTaskRegistry>? ConfigureTasks { get; init; }
}

/// <summary>
/// Runs the shared orchestrator and activities on this machine: a Durable Task gRPC sidecar in front of an
/// orchestration service, plus the standard Durable Task worker and client connected to it.
/// </summary>
/// <remarks>
/// The same <see cref="WorkflowRegistration.AddFederatedTasks"/> registrations run here and in the Functions
/// app; this host adds only wiring. The sidecar listens on a free loopback port, and gRPC message limits are
/// lifted on both ends (payloads are references, but history batches can be large).
/// </remarks>
public sealed class LocalDurableHost : IAsyncDisposable
{
    private readonly WebApplication sidecar;
    private readonly IHost worker;
    private readonly GrpcChannel channel;
    private readonly IOrchestrationService service;

    private LocalDurableHost(WebApplication sidecar, IHost worker, GrpcChannel channel, IOrchestrationService service, int partitionCount)
    {
        PartitionCount = partitionCount;
        this.sidecar = sidecar;
        this.worker = worker;
        this.channel = channel;
        this.service = service;
    }

    /// <summary>The task hub's partition count this host runs with (Azure Storage backend; <see cref="LocalDurableHostOptions.PartitionCount"/>).</summary>
    public int PartitionCount { get; }

    /// <summary>The durable client.</summary>
    public DurableTaskClient Client => worker.Services.GetRequiredService<DurableTaskClient>();

    /// <summary>The worker's services (adapters, stores).</summary>
    public IServiceProvider Services => worker.Services;

    /// <summary>Starts the sidecar, and the worker unless <see cref="LocalDurableHostOptions.RunWorker"/> is false.</summary>
    public static async Task<LocalDurableHost> StartAsync(LocalDurableHostOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var loggerFactory = options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        var service = await CreateServiceAsync(options, loggerFactory).ConfigureAwait(false);

        var (sidecar, channel) = await StartSidecarAsync(service, options.RunWorker, port: 0, loggerFactory, cancellationToken).ConfigureAwait(false);

        var hostBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        hostBuilder.Logging.ClearProviders();
        hostBuilder.Services.AddSingleton(loggerFactory);
        hostBuilder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        hostBuilder.Services.AddFederatedWorkflow();
        hostBuilder.Services.AddFederatedAdapters(options.Configuration);
        hostBuilder.Services.AddFederatedApi(options.Configuration);
        hostBuilder.AddFederatedTelemetry(options.TelemetryEnvironment);
        options.ConfigureServices?.Invoke(hostBuilder.Services);
        if (options.RunWorker)
        {
            hostBuilder.Services.AddDurableTaskWorker(b =>
            {
                b.UseGrpc(channel);
                b.AddTasks(r =>
                {
                    r.AddFederatedTasks();
                    options.ConfigureTasks?.Invoke(r);
                });
                b.Configure(o =>
                {
                    o.Concurrency.MaximumConcurrentActivityWorkItems = options.MaxConcurrentActivities;
                    o.Concurrency.MaximumConcurrentOrchestrationWorkItems = 4;
                });
            });
        }

        hostBuilder.Services.AddDurableTaskClient(b =>
        {
            b.UseGrpc(channel);
            b.RegisterDirectly();
        });
        var worker = hostBuilder.Build();
        await worker.StartAsync(cancellationToken).ConfigureAwait(false);
        return new LocalDurableHost(sidecar, worker, channel, service, options.PartitionCount);
    }

    /// <summary>Work items the sidecar may hold at once before its dispatcher starts sleeping in 500 ms steps (see <see cref="SidecarStorageFix"/>).</summary>
    public const int SidecarWorkItems = 256;

    /// <summary>
    /// Starts the Durable Task gRPC sidecar in front of <paramref name="service"/> on a loopback port (a free one for 0), with
    /// gRPC message limits lifted, and a channel to it for the worker and client.
    /// </summary>
    /// <param name="service">The orchestration service; it must also be its own <see cref="IOrchestrationServiceClient"/>.</param>
    /// <param name="dispatch">Whether the sidecar dispatches work to workers, or only serves the client API.</param>
    /// <param name="port">The port, or 0.</param>
    /// <param name="loggerFactory">Where the sidecar logs.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<(WebApplication Sidecar, GrpcChannel Channel)> StartSidecarAsync(
        IOrchestrationService service, bool dispatch, int port, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = null;
            o.MaxSendMessageSize = null;
        });
        builder.Services.AddSingleton(service);
        builder.Services.AddSingleton((IOrchestrationServiceClient)service);
        builder.Services.Configure<TaskHubGrpcServerOptions>(o =>
            o.Mode = dispatch ? TaskHubGrpcServerMode.ApiServerAndDispatcher : TaskHubGrpcServerMode.ApiServerOnly);
        builder.Services.AddSingleton<TaskHubGrpcServer>();
        var sidecar = builder.Build();
        sidecar.MapGrpcService<TaskHubGrpcServer>();
        await sidecar.StartAsync(cancellationToken).ConfigureAwait(false);

        var address = sidecar.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (sidecar, GrpcChannel.ForAddress(address, new GrpcChannelOptions { MaxReceiveMessageSize = null, MaxSendMessageSize = null }));
    }

    private static async Task<IOrchestrationService> CreateServiceAsync(LocalDurableHostOptions options, ILoggerFactory loggerFactory)
    {
        if (options.Backend == DurableBackendKind.InMemory)
        {
            return new SidecarStorageFix(new InMemoryOrchestrationService(loggerFactory), SidecarWorkItems);
        }

        if (string.IsNullOrWhiteSpace(options.DurableStorageConnectionString))
        {
            throw new InvalidOperationException("The azurestorage backend needs a storage connection string.");
        }

        var settings = new AzureStorageOrchestrationServiceSettings
        {
            TaskHubName = options.TaskHub,
            StorageAccountClientProvider = new StorageAccountClientProvider(options.DurableStorageConnectionString),
            WorkItemQueueVisibilityTimeout = options.WorkItemVisibilityTimeout,
            ControlQueueVisibilityTimeout = options.WorkItemVisibilityTimeout,
            MaxQueuePollingInterval = options.MaxQueuePollingInterval,
            PartitionCount = options.PartitionCount,
            MaxConcurrentTaskActivityWorkItems = options.MaxConcurrentActivities,
            LoggerFactory = loggerFactory,
        };
        if (options.WorkerName is { } name)
        {
            settings.WorkerId = name;
        }

        var service = new AzureStorageOrchestrationService(settings);
        await service.CreateIfNotExistsAsync().ConfigureAwait(false);
        return new SidecarStorageFix(service, SidecarWorkItems, options.HoldOnlyRunnableActivities ? options.MaxConcurrentActivities : null, options.WorkItemVisibilityTimeout);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await worker.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Shutting down anyway; in-flight work is redelivered by the backend.
        }

        worker.Dispose();
        await channel.ShutdownAsync().ConfigureAwait(false);
        channel.Dispose();
        try
        {
            await sidecar.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // See above.
        }

        if (service is SidecarStorageFix fix)
        {
            await fix.EndRenewalsAsync().ConfigureAwait(false);
        }

        await sidecar.DisposeAsync().ConfigureAwait(false);
        if (service is SidecarStorageFix { Inner: IDisposable wrapped })
        {
            wrapped.Dispose();
        }
        else if (service is IDisposable d)
        {
            d.Dispose();
        }
    }
}
