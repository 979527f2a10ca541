using FederatedFunctions.Adapters;
using FederatedFunctions.Api;
using FederatedFunctions.FunctionsApp;
using FederatedFunctions.Workflow;
using Microsoft.Extensions.Hosting;

// Triggers and wiring only: the orchestrator, activities and request handling are the shared classes.
var host = new HostBuilder()
    .ConfigureFunctionsWorkerDefaults()
    .ConfigureServices((context, services) => services
        .AddFederatedWorkflow()
        .AddFederatedAdapters(context.Configuration)
        .AddFederatedApi(context.Configuration)
        .AddFunctionActivities())
    .Build();
await host.RunAsync().ConfigureAwait(false);
