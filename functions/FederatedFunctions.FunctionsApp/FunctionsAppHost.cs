using FederatedFunctions.Adapters;
using FederatedFunctions.Api;
using FederatedFunctions.Workflow;
using Microsoft.Extensions.Hosting;

namespace FederatedFunctions.FunctionsApp;

/// <summary>The composition of the Functions worker host: <c>Program.cs</c> runs what <see cref="CreateBuilder"/> builds.</summary>
/// <remarks>
/// Tests build the same host without starting it, then activate and invoke every function class through it, so a
/// service the wrappers need but the composition lacks fails a test instead of the deployed app.
/// </remarks>
public static class FunctionsAppHost
{
    /// <summary>The worker host builder: triggers and wiring only; the orchestrator, activities and request handling are the shared classes.</summary>
    public static IHostBuilder CreateBuilder(string[] args) =>
        new HostBuilder()
            .ConfigureFunctionsWorkerDefaults()
            .ConfigureServices((context, services) => services
                .AddFederatedWorkflow()
                .AddFederatedTaskClasses()
                .AddFederatedAdapters(context.Configuration)
                .AddFederatedApi(context.Configuration)
                .AddFederatedTelemetry(context.Configuration));
}
