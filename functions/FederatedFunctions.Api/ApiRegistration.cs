using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FederatedFunctions.Api;

/// <summary>Composition of the API layer.</summary>
public static class ApiRegistration
{
    /// <summary>Registers <see cref="RunsApi"/> and <see cref="RecurringTrainingService"/>. Needs the adapters (checkpoint and recurring stores).</summary>
    public static IServiceCollection AddFederatedApi(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<RunsApi>();
        services.AddSingleton<RecurringTrainingService>();
        return services;
    }
}
