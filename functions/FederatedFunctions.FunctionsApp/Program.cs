using FederatedFunctions.FunctionsApp;
using Microsoft.Extensions.Hosting;

using var host = FunctionsAppHost.CreateBuilder(args).Build();
await host.RunAsync().ConfigureAwait(false);
