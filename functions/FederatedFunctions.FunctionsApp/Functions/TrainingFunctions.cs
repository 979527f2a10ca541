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
/// Function names are the shared classes' names, so the orchestrator's <c>CallActivityAsync(nameof(TrainActivity))</c>
/// resolves to the same code here as on the local host. No logic lives in this file.
/// </remarks>
public sealed class TrainingFunctions(
    InitializeModelActivity initialize,
    TrainActivity train,
    AggregateActivity aggregate,
    EvaluateActivity evaluate,
    SummarizeEvaluationActivity summarize,
    CommitRoundActivity commit,
    PublishMaskingKeyActivity publishKey,
    MaskUpdateActivity mask,
    RevealSelfMaskActivity reveal,
    SecureAggregateActivity secureAggregate)
{
    /// <summary>The training orchestrator.</summary>
    [Function(nameof(TrainingOrchestrator))]
    public static Task<TrainingOutcome?> RunTrainingAsync([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var input = context.GetInput<TrainingState>() ?? throw new InvalidOperationException("The training orchestrator needs a TrainingState input.");
        return new TrainingOrchestrator().RunAsync(context, input);
    }

    /// <summary>Writes round 0.</summary>
    [Function(nameof(InitializeModelActivity))]
    public Task<InitializeModelResult> InitializeModelAsync([ActivityTrigger] InitializeModelRequest input, FunctionContext context) =>
        initialize.RunAsync(new FunctionActivityContext(nameof(InitializeModelActivity), context), input);

    /// <summary>Trains one silo for one round.</summary>
    [Function(nameof(TrainActivity))]
    public Task<SiloUpdate> TrainAsync([ActivityTrigger] TrainRequest input, FunctionContext context) =>
        train.RunAsync(new FunctionActivityContext(nameof(TrainActivity), context), input);

    /// <summary>Aggregates one round.</summary>
    [Function(nameof(AggregateActivity))]
    public Task<AggregateResult> AggregateAsync([ActivityTrigger] AggregateRequest input, FunctionContext context) =>
        aggregate.RunAsync(new FunctionActivityContext(nameof(AggregateActivity), context), input);

    /// <summary>Evaluates the global model on one silo.</summary>
    [Function(nameof(EvaluateActivity))]
    public Task<SiloEvaluation> EvaluateAsync([ActivityTrigger] EvaluateRequest input, FunctionContext context) =>
        evaluate.RunAsync(new FunctionActivityContext(nameof(EvaluateActivity), context), input);

    /// <summary>Aggregates the silos' evaluation reports (eyes-off).</summary>
    [Function(nameof(SummarizeEvaluationActivity))]
    public Task<EvaluateSummary?> SummarizeEvaluationAsync([ActivityTrigger] SummarizeEvaluationRequest input, FunctionContext context) =>
        summarize.RunAsync(new FunctionActivityContext(nameof(SummarizeEvaluationActivity), context), input);

    /// <summary>Secure aggregation: one silo's public key for one attempt.</summary>
    [Function(nameof(PublishMaskingKeyActivity))]
    public Task<MaskingPublicKey> PublishMaskingKeyAsync([ActivityTrigger] MaskingKeyRequest input, FunctionContext context) =>
        publishKey.RunAsync(new FunctionActivityContext(nameof(PublishMaskingKeyActivity), context), input);

    /// <summary>Secure aggregation: one silo masks its update.</summary>
    [Function(nameof(MaskUpdateActivity))]
    public Task<MaskedUpdateRef> MaskUpdateAsync([ActivityTrigger] MaskUpdateRequest input, FunctionContext context) =>
        mask.RunAsync(new FunctionActivityContext(nameof(MaskUpdateActivity), context), input);

    /// <summary>Secure aggregation: one silo reveals its self-mask seed.</summary>
    [Function(nameof(RevealSelfMaskActivity))]
    public Task<SelfMaskReveal> RevealSelfMaskAsync([ActivityTrigger] RevealSelfMaskRequest input, FunctionContext context) =>
        reveal.RunAsync(new FunctionActivityContext(nameof(RevealSelfMaskActivity), context), input);

    /// <summary>Secure aggregation: unmasks the sum of one attempt and writes the model.</summary>
    [Function(nameof(SecureAggregateActivity))]
    public Task<SecureAggregateResult> SecureAggregateAsync([ActivityTrigger] SecureAggregateRequest input, FunctionContext context) =>
        secureAggregate.RunAsync(new FunctionActivityContext(nameof(SecureAggregateActivity), context), input);

    /// <summary>Commits one round.</summary>
    [Function(nameof(CommitRoundActivity))]
    public Task<CommitRoundResult> CommitRoundAsync([ActivityTrigger] CommitRoundRequest input, FunctionContext context) =>
        commit.RunAsync(new FunctionActivityContext(nameof(CommitRoundActivity), context), input);
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
