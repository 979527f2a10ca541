using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>The federated analysis's orchestration and activity triggers: each delegates to the shared class of the same name.</summary>
public sealed class AnalysisFunctions(ChargeAnalysisBudgetActivity charge, MergeAnalysisPassActivity merge, CommitAnalysisActivity commit, ReadStandardizationActivity standardization)
{
    /// <summary>The analysis orchestrator.</summary>
    [Function(nameof(AnalysisOrchestrator))]
    public static Task<AnalysisOutcome> RunAnalysisAsync([OrchestrationTrigger] TaskOrchestrationContext context) =>
        new AnalysisOrchestrator().RunAsync(
            context ?? throw new ArgumentNullException(nameof(context)),
            context.GetInput<AnalysisState>() ?? throw new InvalidOperationException($"The orchestration needs a {nameof(AnalysisState)} input."));

    /// <summary>Charges a differentially private analysis to its dataset's budget, or refuses it.</summary>
    [Function(nameof(ChargeAnalysisBudgetActivity))]
    public Task<BudgetCharge> ChargeAnalysisBudgetAsync([ActivityTrigger] ChargeBudgetRequest input, FunctionContext context) =>
        charge.RunAsync(new FunctionActivityContext(nameof(ChargeAnalysisBudgetActivity), context), input);

    /// <summary>Merges one pass of an analysis.</summary>
    [Function(nameof(MergeAnalysisPassActivity))]
    public Task<AnalysisPassSummary> MergeAnalysisPassAsync([ActivityTrigger] MergeAnalysisPassRequest input, FunctionContext context) =>
        merge.RunAsync(new FunctionActivityContext(nameof(MergeAnalysisPassActivity), context), input);

    /// <summary>Writes an analysis's result and manifest.</summary>
    [Function(nameof(CommitAnalysisActivity))]
    public Task<AnalysisOutcome> CommitAnalysisAsync([ActivityTrigger] CommitAnalysisRequest input, FunctionContext context) =>
        commit.RunAsync(new FunctionActivityContext(nameof(CommitAnalysisActivity), context), input);

    /// <summary>Reads the standardization a training run's analysis computed.</summary>
    [Function(nameof(ReadStandardizationActivity))]
    public Task<Core.Specs.FeatureStandardization> ReadStandardizationAsync([ActivityTrigger] ReadStandardizationRequest input, FunctionContext context) =>
        standardization.RunAsync(new FunctionActivityContext(nameof(ReadStandardizationActivity), context), input);
}
