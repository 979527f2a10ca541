using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
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

/// <summary>Trains one silo for one round.</summary>
[DurableTask(nameof(TrainActivity))]
public sealed class TrainActivity(SiloTaskService service) : TaskActivity<TrainRequest, SiloUpdate>
{
    /// <inheritdoc />
    public override Task<SiloUpdate> RunAsync(TaskActivityContext context, TrainRequest input) =>
        service.TrainAsync(input, CancellationToken.None);
}

/// <summary>Aggregates one round's updates and writes the model checkpoint.</summary>
[DurableTask(nameof(AggregateActivity))]
public sealed class AggregateActivity(AggregationService service) : TaskActivity<AggregateRequest, AggregateResult>
{
    /// <inheritdoc />
    public override Task<AggregateResult> RunAsync(TaskActivityContext context, AggregateRequest input) =>
        service.AggregateAsync(input, CancellationToken.None);
}

/// <summary>Secure aggregation: one silo publishes its public key for one attempt.</summary>
[DurableTask(nameof(PublishMaskingKeyActivity))]
public sealed class PublishMaskingKeyActivity(SiloTaskService service) : TaskActivity<MaskingKeyRequest, MaskingPublicKey>
{
    /// <inheritdoc />
    public override Task<MaskingPublicKey> RunAsync(TaskActivityContext context, MaskingKeyRequest input) =>
        service.PublishMaskingKeyAsync(input, CancellationToken.None);
}

/// <summary>Secure aggregation: one silo masks its update for one attempt.</summary>
[DurableTask(nameof(MaskUpdateActivity))]
public sealed class MaskUpdateActivity(SiloTaskService service) : TaskActivity<MaskUpdateRequest, MaskedUpdateRef>
{
    /// <inheritdoc />
    public override Task<MaskedUpdateRef> RunAsync(TaskActivityContext context, MaskUpdateRequest input) =>
        service.MaskUpdateAsync(input, CancellationToken.None);
}

/// <summary>Secure aggregation: one silo reveals its self-mask seed for the attempt whose masked updates all arrived.</summary>
[DurableTask(nameof(RevealSelfMaskActivity))]
public sealed class RevealSelfMaskActivity(SiloTaskService service) : TaskActivity<RevealSelfMaskRequest, SelfMaskReveal>
{
    /// <inheritdoc />
    public override Task<SelfMaskReveal> RunAsync(TaskActivityContext context, RevealSelfMaskRequest input) =>
        service.RevealSelfMaskAsync(input, CancellationToken.None);
}

/// <summary>Secure aggregation: sums one attempt's masked updates, decodes the sum and writes the model checkpoint.</summary>
[DurableTask(nameof(SecureAggregateActivity))]
public sealed class SecureAggregateActivity(SecureAggregationService service) : TaskActivity<SecureAggregateRequest, SecureAggregateResult>
{
    /// <inheritdoc />
    public override Task<SecureAggregateResult> RunAsync(TaskActivityContext context, SecureAggregateRequest input) =>
        service.AggregateAsync(input, CancellationToken.None);
}

/// <summary>Scores the global model on one silo's test split.</summary>
[DurableTask(nameof(EvaluateActivity))]
public sealed class EvaluateActivity(SiloTaskService service) : TaskActivity<EvaluateRequest, SiloEvaluation>
{
    /// <inheritdoc />
    public override Task<SiloEvaluation> RunAsync(TaskActivityContext context, EvaluateRequest input) =>
        service.EvaluateAsync(input, CancellationToken.None);
}

/// <summary>Aggregates the silos' evaluation reports of a round over enough silos (eyes-off).</summary>
[DurableTask(nameof(SummarizeEvaluationActivity))]
public sealed class SummarizeEvaluationActivity(EvaluationService service) : TaskActivity<SummarizeEvaluationRequest, EvaluateSummary?>
{
    /// <inheritdoc />
    public override Task<EvaluateSummary?> RunAsync(TaskActivityContext context, SummarizeEvaluationRequest input) =>
        service.SummarizeAsync(input, CancellationToken.None);
}

/// <summary>Appends a round's audit entries, writes its manifest and moves the run's latest pointer.</summary>
[DurableTask(nameof(CommitRoundActivity))]
public sealed class CommitRoundActivity(CheckpointService service) : TaskActivity<CommitRoundRequest, CommitRoundResult>
{
    /// <inheritdoc />
    public override Task<CommitRoundResult> RunAsync(TaskActivityContext context, CommitRoundRequest input) =>
        service.CommitAsync(input, CancellationToken.None);
}
