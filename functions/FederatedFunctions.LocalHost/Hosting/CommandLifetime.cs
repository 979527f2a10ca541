using Microsoft.Extensions.Hosting;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>A host lifetime that leaves Ctrl+C and SIGTERM to the command line.</summary>
/// <remarks>
/// The default console lifetime of each embedded host would swallow the signal and stop only itself, leaving the
/// command waiting forever. With this lifetime the command's cancellation token fires, and the command disposes
/// the hosts in order.
/// </remarks>
internal sealed class CommandLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
