using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>The orchestration and activity triggers: each one delegates to the shared class of the same name.</summary>
/// <remarks>
/// Function names are the shared classes' names, so the orchestrator's <c>CallActivityAsync(nameof(StartSiloJobActivity))</c>
/// resolves to the same code here as on the local host. No logic lives in this file; a test checks that every class of
/// <c>WorkflowRegistration</c> has a trigger here with its input and output types.
/// </remarks>
public sealed class TrainingFunctions(
    InitializeModelActivity initialize,
    PlanSilosActivity planSilos,
    StartSiloJobActivity startJob,
    GetSiloJobActivity getJob,
    CancelSiloJobActivity cancelJob,
    AggregateActivity aggregate,
    SecureAggregateActivity secureAggregate,
    SummarizeEvaluationActivity summarize,
    SecureEvaluationActivity secureEvaluate,
    CommitRoundActivity commit,
    RecordRunActivity recordRun,
    PublishLocalModelsActivity publishLocalModels,
    WriteCrossSiteActivity writeCrossSite)
{
    /// <summary>The training orchestrator.</summary>
    [Function(nameof(TrainingOrchestrator))]
    public static Task<TrainingOutcome?> RunTrainingAsync([OrchestrationTrigger] TaskOrchestrationContext context) =>
        new TrainingOrchestrator().RunAsync(context ?? throw new ArgumentNullException(nameof(context)), Input<TrainingState>(context));

    /// <summary>One silo step on a remote compute: submit, wait, collect.</summary>
    [Function(nameof(SiloJobOrchestrator))]
    public static Task<SiloJobStatus> RunSiloJobAsync([OrchestrationTrigger] TaskOrchestrationContext context) =>
        new SiloJobOrchestrator().RunAsync(context ?? throw new ArgumentNullException(nameof(context)), Input<SiloJobInput>(context));

    /// <summary>Cancels the silo jobs a cancelled run had in flight.</summary>
    [Function(nameof(CancelSiloJobsOrchestrator))]
    public static Task<CancelSiloJobsResult> RunCancelSiloJobsAsync([OrchestrationTrigger] TaskOrchestrationContext context) =>
        new CancelSiloJobsOrchestrator().RunAsync(context ?? throw new ArgumentNullException(nameof(context)), Input<CancelSiloJobsInput>(context));

    /// <summary>Writes round 0.</summary>
    [Function(nameof(InitializeModelActivity))]
    public Task<InitializeModelResult> InitializeModelAsync([ActivityTrigger] InitializeModelRequest input, FunctionContext context) =>
        initialize.RunAsync(new FunctionActivityContext(nameof(InitializeModelActivity), context), input);

    /// <summary>Places a run's silos on their computes.</summary>
    [Function(nameof(PlanSilosActivity))]
    public Task<SiloPlan> PlanSilosAsync([ActivityTrigger] PlanSilosRequest input, FunctionContext context) =>
        planSilos.RunAsync(new FunctionActivityContext(nameof(PlanSilosActivity), context), input);

    /// <summary>Starts a silo job (an in-process step runs here).</summary>
    [Function(nameof(StartSiloJobActivity))]
    public Task<SiloJobStatus> StartSiloJobAsync([ActivityTrigger] SiloJob input, FunctionContext context) =>
        startJob.RunAsync(new FunctionActivityContext(nameof(StartSiloJobActivity), context), input);

    /// <summary>Reads a silo job's state and collects its outcome.</summary>
    [Function(nameof(GetSiloJobActivity))]
    public Task<SiloJobStatus> GetSiloJobAsync([ActivityTrigger] SiloJob input, FunctionContext context) =>
        getJob.RunAsync(new FunctionActivityContext(nameof(GetSiloJobActivity), context), input);

    /// <summary>Cancels a silo job.</summary>
    [Function(nameof(CancelSiloJobActivity))]
    public Task<bool> CancelSiloJobAsync([ActivityTrigger] SiloJob input, FunctionContext context) =>
        cancelJob.RunAsync(new FunctionActivityContext(nameof(CancelSiloJobActivity), context), input);

    /// <summary>Aggregates one round.</summary>
    [Function(nameof(AggregateActivity))]
    public Task<AggregateResult> AggregateAsync([ActivityTrigger] AggregateRequest input, FunctionContext context) =>
        aggregate.RunAsync(new FunctionActivityContext(nameof(AggregateActivity), context), input);

    /// <summary>Secure aggregation: unmasks the sum of one attempt and writes the model.</summary>
    [Function(nameof(SecureAggregateActivity))]
    public Task<SecureAggregateResult> SecureAggregateAsync([ActivityTrigger] SecureAggregateRequest input, FunctionContext context) =>
        secureAggregate.RunAsync(new FunctionActivityContext(nameof(SecureAggregateActivity), context), input);

    /// <summary>Aggregates the silos' evaluation reports (eyes-off).</summary>
    [Function(nameof(SummarizeEvaluationActivity))]
    public Task<EvaluateSummary?> SummarizeEvaluationAsync([ActivityTrigger] SummarizeEvaluationRequest input, FunctionContext context) =>
        summarize.RunAsync(new FunctionActivityContext(nameof(SummarizeEvaluationActivity), context), input);

    /// <summary>Secure aggregation of a round's evaluation: checks or unmasks one attempt's sum.</summary>
    [Function(nameof(SecureEvaluationActivity))]
    public Task<SecureEvaluationResult> SecureEvaluationAsync([ActivityTrigger] SecureEvaluationRequest input, FunctionContext context) =>
        secureEvaluate.RunAsync(new FunctionActivityContext(nameof(SecureEvaluationActivity), context), input);

    /// <summary>Commits one round.</summary>
    [Function(nameof(CommitRoundActivity))]
    public Task<CommitRoundResult> CommitRoundAsync([ActivityTrigger] CommitRoundRequest input, FunctionContext context) =>
        commit.RunAsync(new FunctionActivityContext(nameof(CommitRoundActivity), context), input);

    /// <summary>Emits a run's span once it has ended.</summary>
    [Function(nameof(RecordRunActivity))]
    public Task<bool> RecordRunAsync([ActivityTrigger] RunEnded input, FunctionContext context) =>
        recordRun.RunAsync(new FunctionActivityContext(nameof(RecordRunActivity), context), input);

    /// <summary>Publishes each silo's local model of the last round for cross-site evaluation.</summary>
    [Function(nameof(PublishLocalModelsActivity))]
    public Task<IReadOnlyList<PublishedModel>> PublishLocalModelsAsync([ActivityTrigger] PublishLocalModelsRequest input, FunctionContext context) =>
        publishLocalModels.RunAsync(new FunctionActivityContext(nameof(PublishLocalModelsActivity), context), input);

    /// <summary>Writes a run's cross-site evaluation matrix.</summary>
    [Function(nameof(WriteCrossSiteActivity))]
    public Task<BlobRef> WriteCrossSiteAsync([ActivityTrigger] WriteCrossSiteRequest input, FunctionContext context) =>
        writeCrossSite.RunAsync(new FunctionActivityContext(nameof(WriteCrossSiteActivity), context), input);

    private static T Input<T>(TaskOrchestrationContext context) =>
        context.GetInput<T>() ?? throw new InvalidOperationException($"The orchestration needs a {typeof(T).Name} input.");
}

/// <summary>The activity context the shared activity classes receive under the Functions host.</summary>
internal sealed class FunctionActivityContext(string name, FunctionContext context) : TaskActivityContext
{
    /// <inheritdoc />
    public override TaskName Name => name;

    /// <inheritdoc />
    public override string InstanceId =>
        context?.BindingContext.BindingData.TryGetValue("instanceId", out var id) == true ? id?.ToString() ?? string.Empty : string.Empty;
}
