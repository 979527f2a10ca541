using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.DurableTask;

namespace FederatedFunctions.Workflow.Activities;

// Activities are thin adapters: each one forwards to a plain service. They run at least once; the services
// write only deterministic blob names, so a re-execution overwrites its own output with the same bytes.

/// <summary>Writes the seeded round-0 model.</summary>
[DurableTask(nameof(InitializeModelActivity))]
public sealed class InitializeModelActivity(CheckpointService service) : TaskActivity<InitializeModelRequest, InitializeModelResult>
{
    /// <inheritdoc />
    public override Task<InitializeModelResult> RunAsync(TaskActivityContext context, InitializeModelRequest input) =>
        service.InitializeAsync(input, CancellationToken.None);
}

/// <summary>Aggregates one round's updates and writes the model checkpoint.</summary>
[DurableTask(nameof(AggregateActivity))]
public sealed class AggregateActivity(AggregationService service) : TaskActivity<AggregateRequest, AggregateResult>
{
    /// <inheritdoc />
    public override Task<AggregateResult> RunAsync(TaskActivityContext context, AggregateRequest input) =>
        service.AggregateAsync(input, CancellationToken.None);
}

/// <summary>Secure aggregation: sums one attempt's masked updates, decodes the sum and writes the model checkpoint.</summary>
[DurableTask(nameof(SecureAggregateActivity))]
public sealed class SecureAggregateActivity(SecureAggregationService service) : TaskActivity<SecureAggregateRequest, SecureAggregateResult>
{
    /// <inheritdoc />
    public override Task<SecureAggregateResult> RunAsync(TaskActivityContext context, SecureAggregateRequest input) =>
        service.AggregateAsync(input, CancellationToken.None);
}

/// <summary>Aggregates the silos' evaluation reports of a round over enough silos (eyes-off).</summary>
[DurableTask(nameof(SummarizeEvaluationActivity))]
public sealed class SummarizeEvaluationActivity(EvaluationService service) : TaskActivity<SummarizeEvaluationRequest, EvaluateSummary?>
{
    /// <inheritdoc />
    public override Task<EvaluateSummary?> RunAsync(TaskActivityContext context, SummarizeEvaluationRequest input) =>
        service.SummarizeAsync(input, CancellationToken.None);
}

/// <summary>Secure aggregation of a round's evaluation: checks an attempt's masked evaluations, or unmasks their sum into the round's metrics.</summary>
[DurableTask(nameof(SecureEvaluationActivity))]
public sealed class SecureEvaluationActivity(EvaluationService service) : TaskActivity<SecureEvaluationRequest, SecureEvaluationResult>
{
    /// <inheritdoc />
    public override Task<SecureEvaluationResult> RunAsync(TaskActivityContext context, SecureEvaluationRequest input) =>
        service.SumAsync(input, CancellationToken.None);
}

/// <summary>Appends a round's audit entries, writes its manifest and moves the run's latest pointer.</summary>
[DurableTask(nameof(CommitRoundActivity))]
public sealed class CommitRoundActivity(CheckpointService service) : TaskActivity<CommitRoundRequest, CommitRoundResult>
{
    /// <inheritdoc />
    public override Task<CommitRoundResult> RunAsync(TaskActivityContext context, CommitRoundRequest input) =>
        service.CommitAsync(input, CancellationToken.None);
}

/// <summary>Emits a run's span, when the run has completed, stopped or failed (orchestrator code opens no span: it replays).</summary>
[DurableTask(nameof(RecordRunActivity))]
public sealed class RecordRunActivity : TaskActivity<RunEnded, bool>
{
    /// <inheritdoc />
    public override Task<bool> RunAsync(TaskActivityContext context, RunEnded input)
    {
        FederatedTelemetry.RunEnded(input);
        return Task.FromResult(true);
    }
}

/// <summary>Places a run's silos: each silo's compute kind and polling interval, from the silo registry (no credential).</summary>
[DurableTask(nameof(PlanSilosActivity))]
public sealed class PlanSilosActivity(SiloJobService service) : TaskActivity<PlanSilosRequest, SiloPlan>
{
    /// <inheritdoc />
    public override Task<SiloPlan> RunAsync(TaskActivityContext context, PlanSilosRequest input) => Task.FromResult(service.Plan(input));
}

/// <summary>Starts a silo job on the silo's compute (an in-process compute runs the step here), or finds the one already started.</summary>
[DurableTask(nameof(StartSiloJobActivity))]
public sealed class StartSiloJobActivity(SiloJobService service) : TaskActivity<SiloJob, SiloJobStatus>
{
    /// <inheritdoc />
    public override Task<SiloJobStatus> RunAsync(TaskActivityContext context, SiloJob input) =>
        service.StartAsync(input, CancellationToken.None);
}

/// <summary>Reads a silo job's state and, once it has ended, collects its outcome from the silo's outbox.</summary>
[DurableTask(nameof(GetSiloJobActivity))]
public sealed class GetSiloJobActivity(SiloJobService service) : TaskActivity<SiloJob, SiloJobStatus>
{
    /// <inheritdoc />
    public override Task<SiloJobStatus> RunAsync(TaskActivityContext context, SiloJob input) =>
        service.GetAsync(input, CancellationToken.None);
}

/// <summary>Asks a silo job's compute to cancel it.</summary>
[DurableTask(nameof(CancelSiloJobActivity))]
public sealed class CancelSiloJobActivity(SiloJobService service) : TaskActivity<SiloJob, bool>
{
    /// <inheritdoc />
    public override Task<bool> RunAsync(TaskActivityContext context, SiloJob input) =>
        service.CancelAsync(input, CancellationToken.None);
}

/// <summary>Merges one pass of an analysis: aggregates the orchestrator needs for the next pass, no per-silo value.</summary>
[DurableTask(nameof(MergeAnalysisPassActivity))]
public sealed class MergeAnalysisPassActivity(AnalysisService service) : TaskActivity<MergeAnalysisPassRequest, AnalysisPassSummary>
{
    /// <inheritdoc />
    public override Task<AnalysisPassSummary> RunAsync(TaskActivityContext context, MergeAnalysisPassRequest input) =>
        service.MergePassAsync(input, CancellationToken.None);
}

/// <summary>Reads the standardization a training run's analysis computed (aggregates only).</summary>
[DurableTask(nameof(ReadStandardizationActivity))]
public sealed class ReadStandardizationActivity(AnalysisService service) : TaskActivity<ReadStandardizationRequest, Core.Specs.FeatureStandardization>
{
    /// <inheritdoc />
    public override Task<Core.Specs.FeatureStandardization> RunAsync(TaskActivityContext context, ReadStandardizationRequest input) =>
        service.ReadStandardizationAsync(input, CancellationToken.None);
}

/// <summary>Writes an analysis's result, small cells suppressed, and its manifest.</summary>
[DurableTask(nameof(CommitAnalysisActivity))]
public sealed class CommitAnalysisActivity(AnalysisService service) : TaskActivity<CommitAnalysisRequest, AnalysisOutcome>
{
    /// <inheritdoc />
    public override Task<AnalysisOutcome> RunAsync(TaskActivityContext context, CommitAnalysisRequest input) =>
        service.CommitAsync(input, CancellationToken.None);
}

/// <summary>Charges a differentially private analysis's ε to its dataset's budget, or refuses it, before any silo reads a row.</summary>
[DurableTask(nameof(ChargeAnalysisBudgetActivity))]
public sealed class ChargeAnalysisBudgetActivity(AnalysisBudgetService service) : TaskActivity<ChargeBudgetRequest, BudgetCharge>
{
    /// <inheritdoc />
    public override Task<BudgetCharge> RunAsync(TaskActivityContext context, ChargeBudgetRequest input) =>
        service.ChargeAsync(input, CancellationToken.None);
}

/// <summary>Publishes each silo's local model of the last round for cross-site evaluation.</summary>
[DurableTask(nameof(PublishLocalModelsActivity))]
public sealed class PublishLocalModelsActivity(CrossSiteService service) : TaskActivity<PublishLocalModelsRequest, IReadOnlyList<PublishedModel>>
{
    /// <inheritdoc />
    public override Task<IReadOnlyList<PublishedModel>> RunAsync(TaskActivityContext context, PublishLocalModelsRequest input) =>
        service.PublishAsync(input, CancellationToken.None);
}

/// <summary>Writes a run's cross-site evaluation matrix.</summary>
[DurableTask(nameof(WriteCrossSiteActivity))]
public sealed class WriteCrossSiteActivity(CrossSiteService service) : TaskActivity<WriteCrossSiteRequest, BlobRef>
{
    /// <inheritdoc />
    public override Task<BlobRef> RunAsync(TaskActivityContext context, WriteCrossSiteRequest input) =>
        service.WriteAsync(input, CancellationToken.None);
}
