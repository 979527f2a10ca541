using FederatedFunctions.LocalHost.Hosting;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing.Sidecar;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FederatedFunctions.TestSupport;

/// <summary>Options of <see cref="DurableTestHost"/>.</summary>
public sealed class DurableTestHostOptions
{
    /// <summary>The sidecar's loopback port; a free one when null.</summary>
    public int? Port { get; init; }

    /// <summary>Services of the worker host, registered before the durable worker and client.</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>
    /// Whether a worker executes orchestrations and activities. Without one the sidecar only serves the client API, so an
    /// instance scheduled there stays <c>Pending</c> for the life of the host.
    /// </summary>
    public bool RunWorker { get; init; } = true;
}

/// <summary>
/// The Durable Task SDK's in-process test host (<c>DurableTaskTestHost</c>: its in-memory orchestration service behind its
/// gRPC sidecar, with the standard worker and client), composed the way the local host composes it: the service is wrapped in
/// <see cref="SidecarStorageFix"/> so that the sidecar's dispatcher does not sleep in 500 ms steps whenever more work items than
/// the processor count are in flight. Without it every fan-out of more than two silos waited about a second on this machine.
/// </summary>
public sealed class DurableTestHost : IAsyncDisposable
{
    private readonly WebApplication sidecar;
    private readonly IHost worker;
    private readonly GrpcChannel channel;

    private DurableTestHost(WebApplication sidecar, IHost worker, GrpcChannel channel)
    {
        this.sidecar = sidecar;
        this.worker = worker;
        this.channel = channel;
    }

    /// <summary>The durable client.</summary>
    public DurableTaskClient Client => worker.Services.GetRequiredService<DurableTaskClient>();

    /// <summary>The worker host's services.</summary>
    public IServiceProvider Services => worker.Services;

    /// <summary>
    /// Starts the sidecar, then a worker with <paramref name="registry"/>'s tasks (unless <see cref="DurableTestHostOptions.RunWorker"/>
    /// is false) and a client, both on the sidecar.
    /// </summary>
    public static async Task<DurableTestHost> StartAsync(Action<DurableTaskRegistry> registry, DurableTestHostOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        options ??= new DurableTestHostOptions();
        var service = new SidecarStorageFix(new InMemoryOrchestrationService(), LocalDurableHost.SidecarWorkItems);
        var (sidecar, channel) = await LocalDurableHost.StartSidecarAsync(service, dispatch: options.RunWorker, options.Port ?? 0, NullLoggerFactory.Instance);

        var hostBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        hostBuilder.Logging.ClearProviders();
        options.ConfigureServices?.Invoke(hostBuilder.Services);
        if (options.RunWorker)
        {
            hostBuilder.Services.AddDurableTaskWorker(b =>
            {
                b.UseGrpc(channel);
                b.AddTasks(registry);
            });
        }

        hostBuilder.Services.AddDurableTaskClient(b =>
        {
            b.UseGrpc(channel);
            b.RegisterDirectly();
        });
        var worker = hostBuilder.Build();
        try
        {
            await worker.StartAsync();
        }
        catch
        {
            worker.Dispose();
            channel.Dispose();
            await sidecar.DisposeAsync();
            throw;
        }

        return new DurableTestHost(sidecar, worker, channel);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await worker.StopAsync();
        worker.Dispose();
        await channel.ShutdownAsync();
        channel.Dispose();
        await sidecar.StopAsync();
        await sidecar.DisposeAsync();
    }
}
