using FederatedFunctions.Api;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>Recurring training on an NCRONTAB schedule from the app setting <c>RECURRING_SCHEDULE</c>.</summary>
/// <remarks>
/// Turn it off with the one app setting <c>AzureWebJobs.RecurringTraining.Disabled = true</c> (the Functions host
/// then never fires it). Timer triggers are singletons across instances, and <see cref="RecurringTrainingService"/>
/// starts nothing while the previous recurring run is still going.
/// </remarks>
public sealed class RecurringTrainingFunction(RecurringTrainingService service)
{
    /// <summary>Name of the function, as used by the disable setting.</summary>
    public const string Name = "RecurringTraining";

    /// <summary>One tick.</summary>
    [Function(Name)]
    public async Task RunAsync(
        [TimerTrigger("%RECURRING_SCHEDULE%", RunOnStartup = false)] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        await service.TickAsync(client, ManagementUrls.ApiRoutes, context.CancellationToken).ConfigureAwait(false);
    }
}
