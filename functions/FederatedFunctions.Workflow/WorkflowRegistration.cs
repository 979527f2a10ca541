using System.Reflection;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FederatedFunctions.Workflow;

/// <summary>Composition of the workflow layer, shared by every host.</summary>
/// <remarks>
/// <see cref="Orchestrators"/> and <see cref="Activities"/> are the one list of the workflow's durable tasks. The local
/// host registers them with a Durable Task worker (<see cref="AddFederatedTasks"/>); the Functions host registers the same
/// classes in its container (<see cref="AddFederatedTaskClasses"/>) so that its trigger wrappers can be activated, and a
/// test checks that every class in the lists has a trigger function of the same name. Nothing else lists them.
/// </remarks>
public static class WorkflowRegistration
{
    /// <summary>Every orchestrator class of the workflow.</summary>
    public static IReadOnlyList<Type> Orchestrators { get; } = [typeof(TrainingOrchestrator), typeof(SiloJobOrchestrator), typeof(CancelSiloJobsOrchestrator), typeof(AnalysisOrchestrator)];

    /// <summary>Every activity class of the workflow.</summary>
    public static IReadOnlyList<Type> Activities { get; } =
    [
        typeof(InitializeModelActivity),
        typeof(PlanSilosActivity),
        typeof(StartSiloJobActivity),
        typeof(GetSiloJobActivity),
        typeof(CancelSiloJobActivity),
        typeof(AggregateActivity),
        typeof(SecureAggregateActivity),
        typeof(SummarizeEvaluationActivity),
        typeof(SecureEvaluationActivity),
        typeof(CommitRoundActivity),
        typeof(RecordRunActivity),
        typeof(PublishLocalModelsActivity),
        typeof(WriteCrossSiteActivity),
        typeof(ChargeAnalysisBudgetActivity),
        typeof(MergeAnalysisPassActivity),
        typeof(CommitAnalysisActivity),
        typeof(ReadStandardizationActivity),
    ];

    /// <summary>The durable task name of a workflow class: its <see cref="DurableTaskAttribute"/> name, which is the class name.</summary>
    public static string TaskName(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return type.GetCustomAttribute<DurableTaskAttribute>()?.Name.Name ?? type.Name;
    }

    /// <summary>Registers every orchestrator and activity with a Durable Task worker.</summary>
    public static DurableTaskRegistry AddFederatedTasks(this DurableTaskRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (var orchestrator in Orchestrators)
        {
            registry.AddOrchestrator(orchestrator);
        }

        foreach (var activity in Activities)
        {
            registry.AddActivity(activity);
        }

        return registry;
    }

    /// <summary>
    /// Registers every activity class in a service container, for hosts that activate their own trigger wrappers (the
    /// Functions isolated worker) instead of letting a Durable Task worker create the activities.
    /// </summary>
    /// <remarks>Transient, as a Durable Task worker creates an activity per call.</remarks>
    public static IServiceCollection AddFederatedTaskClasses(this IServiceCollection services)
    {
        foreach (var activity in Activities)
        {
            services.AddTransient(activity);
        }

        return services;
    }

    /// <summary>Registers the plain services the activities delegate to. Adapters (checkpoint store, silo backend, update store) are registered by the host.</summary>
    /// <remarks>
    /// Analyses get no privacy budget (<see cref="AnalysisOptions"/>) and cryptographic noise (<see cref="AnalysisNoise"/>)
    /// unless the host registered others: the adapters bind the budgets from configuration, and only tests seed the noise.
    /// </remarks>
    public static IServiceCollection AddFederatedWorkflow(this IServiceCollection services)
    {
        services.TryAddSingleton(new AnalysisOptions());
        services.TryAddSingleton(AnalysisNoise.Cryptographic);
        services.AddSingleton<AnalysisBudgetService>();
        services.AddSingleton<AggregationService>();
        services.AddSingleton<SecureAggregationService>();
        services.AddSingleton<SiloJobService>();
        services.AddSingleton<CheckpointService>();
        services.AddSingleton<EvaluationService>();
        services.AddSingleton<CrossSiteService>();
        services.AddSingleton<AnalysisService>();
        return services;
    }
}
