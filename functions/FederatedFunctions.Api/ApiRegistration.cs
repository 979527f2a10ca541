using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FederatedFunctions.Api;

/// <summary>Composition of the API layer.</summary>
public static class ApiRegistration
{
    /// <summary>Registers <see cref="RunsApi"/>, <see cref="AnalysesApi"/> and <see cref="RecurringTrainingService"/>, and binds <see cref="TrustOptions"/>. Needs the adapters (checkpoint and recurring stores).</summary>
    public static IServiceCollection AddFederatedApi(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.Configure<TrustOptions>(o => configuration.GetSection(TrustOptions.Section).Bind(o));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<RunsApi>();
        services.AddSingleton<AnalysesApi>();
        services.AddSingleton<RecurringTrainingService>();
        return services;
    }
}
