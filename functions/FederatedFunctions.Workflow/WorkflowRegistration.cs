using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.Workflow;

/// <summary>Composition of the workflow layer, shared by every host.</summary>
public static class WorkflowRegistration
{
    /// <summary>Registers the orchestrator and every activity with a Durable Task worker.</summary>
    public static DurableTaskRegistry AddFederatedTasks(this DurableTaskRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddOrchestrator<TrainingOrchestrator>();
        registry.AddActivity<InitializeModelActivity>();
        registry.AddActivity<TrainActivity>();
        registry.AddActivity<AggregateActivity>();
        registry.AddActivity<EvaluateActivity>();
        registry.AddActivity<SummarizeEvaluationActivity>();
        registry.AddActivity<CommitRoundActivity>();
        registry.AddActivity<PublishMaskingKeyActivity>();
        registry.AddActivity<MaskUpdateActivity>();
        registry.AddActivity<RevealSelfMaskActivity>();
        registry.AddActivity<SecureAggregateActivity>();
        return registry;
    }

    /// <summary>Registers the plain services the activities delegate to. Adapters (checkpoint store, silo backend, update store) are registered by the host.</summary>
    public static IServiceCollection AddFederatedWorkflow(this IServiceCollection services)
    {
        services.AddSingleton<AggregationService>();
        services.AddSingleton<SecureAggregationService>();
        services.AddSingleton<SiloTaskService>();
        services.AddSingleton<CheckpointService>();
        services.AddSingleton<EvaluationService>();
        return services;
    }
}
