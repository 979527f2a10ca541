using FederatedFunctions.Workflow.Activities;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.FunctionsApp;

/// <summary>Composition specific to the Functions host.</summary>
public static class FunctionsRegistration
{
    /// <summary>Registers the shared activity classes so the activity-trigger wrappers can call them.</summary>
    public static IServiceCollection AddFunctionActivities(this IServiceCollection services)
    {
        services.AddSingleton<InitializeModelActivity>();
        services.AddSingleton<TrainActivity>();
        services.AddSingleton<AggregateActivity>();
        services.AddSingleton<EvaluateActivity>();
        services.AddSingleton<CommitRoundActivity>();
        services.AddSingleton<PublishMaskingKeyActivity>();
        services.AddSingleton<MaskUpdateActivity>();
        services.AddSingleton<RevealSelfMaskActivity>();
        services.AddSingleton<SecureAggregateActivity>();
        return services;
    }
}
