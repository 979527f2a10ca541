using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Activities;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Orchestration;

/// <summary>A round's training and evaluation under secure aggregation: each a <see cref="SecureSum"/> over the round's silos.</summary>
/// <remarks>
/// <para>Training: each silo masks its kept update (clipped, weighted by its example count, with its count and loss
/// inside the vector), and <see cref="SecureAggregateActivity"/> checks the masked updates and unmasks their sum into the
/// next global model.</para>
/// <para>Evaluation: each silo scores the round's model on its test split, keeps the result, and masks
/// <c>[examples, correct, scored, loss × examples]</c> (<see cref="SecureEvaluationVector"/>); <see cref="SecureEvaluationActivity"/>
/// unmasks the sum into the round's mean loss and accuracy, over at least k silos. No silo's metrics leave it.</para>
/// <para>See <c>docs/trust-model.md</c>.</para>
/// </remarks>
public sealed partial class SecureAggregationRound(TaskOrchestrationContext context, ILogger logger, RunSpec spec, string runId, SiloFanOut silos)
{
    private PrivacySpec Privacy => spec.Privacy;

    private SecureAggregationSpec Secure => Privacy.SecureAggregation ?? throw new InvalidOperationException("The run has no secure aggregation.");

    private int MinimumSilos => Minimum(Privacy);

    /// <summary>
    /// Fewest silos a secure sum of the run adds up: never fewer than two (a lone masked vector has no mask), nor fewer than
    /// the eyes-off aggregate needs (<see cref="PrivacySpec.MinAggregateSilos"/>).
    /// </summary>
    public static int Minimum(PrivacySpec privacy)
    {
        ArgumentNullException.ThrowIfNull(privacy);
        return Math.Max(SecureAggregationAttempt.AbsoluteMinimumParticipants, privacy.Mode == PrivacyModes.EyesOff ? privacy.MinAggregateSilos : 1);
    }

    /// <summary>Aggregates one round's updates by secure aggregation; throws <see cref="NoAcceptedUpdatesException"/> when no attempt can complete.</summary>
    /// <param name="round">The round.</param>
    /// <param name="global">The round's global model.</param>
    /// <param name="strategyState">The strategy's server state after the previous round, or null.</param>
    /// <param name="trained">The silos' training results: references to the updates they keep.</param>
    /// <param name="sampled">Silos sampled this round: the fixed-point encoding's bound and the DP denominator.</param>
    /// <param name="minAccepted">The participation policy's minimum.</param>
    public async Task<(AggregateResult Aggregate, IReadOnlyList<SecureAttemptRecord> Attempts)> AggregateAsync(int round, BlobRef global, BlobRef? strategyState, IReadOnlyList<SiloUpdate> trained, int sampled, int minAccepted)
    {
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(trained);
        var sa = Secure;
        var dp = Privacy.DifferentialPrivacy;
        var clip = sa.ClipNorm ?? dp?.ClipNorm ?? throw new InvalidOperationException("Secure aggregation needs a clipping norm.");
        var encoding = SecureAggregationEncoding.For(sampled);
        var updates = trained.ToDictionary(u => u.SiloId, StringComparer.Ordinal);
        var outcome = await new SecureSum(silos, logger, runId, round, Privacy.Mode, spec.Participation.RoundDeadlineSeconds).RunAsync<AggregateResult>(
            updates.Keys.ToArray(),
            new SecureSumPolicy(Math.Max(MinimumSilos, minAccepted), sa.MaxAttempts, EverySilo: false, "masked update"),
            (silo, m) => new SiloStep(Mask: new MaskUpdateRequest(runId, round, m.Attempt, silo, global, updates[silo].Update, m.KeyExchange, encoding, clip, sa.MaxExamples, dp is not null, Privacy.Mode)),
            "mask-failed",
            async attempt =>
            {
                var request = new SecureAggregateRequest(runId, round, spec.Checkpoints.Container, spec.Strategy, global, attempt.Attempt, attempt.KeyExchange, attempt.Masked, encoding, Privacy, sampled, clip, attempt.Reveals, spec.Training.Freeze, strategyState);
                var result = await context.CallActivityAsync<SecureAggregateResult>(nameof(SecureAggregateActivity), request, TaskPolicies.StorageRetry);
                return new SecureSumStep<AggregateResult>(result.Aggregate, result.Refused);
            });
        if (outcome.Result is not { } aggregate)
        {
            throw new NoAcceptedUpdatesException($"Round {round} of run '{runId}': {outcome.Message}" +
                (outcome.Failure == SecureSumFailure.NotRevealed ? " Start a new run with resumeFrom this run's latest round." : string.Empty));
        }

        return (aggregate with { Rejected = [.. outcome.Left, .. aggregate.Rejected] }, outcome.Attempts);
    }

    /// <summary>
    /// Evaluates the round's model by a secure sum over <paramref name="evaluating"/>: the round's mean loss and accuracy
    /// over at least k silos, or no summary (and every silo's failure) when too few silos deliver.
    /// </summary>
    /// <remarks>
    /// What the silos do never fails a round: a round whose secure sum cannot complete (too few silos, a withheld self-mask,
    /// a vector changed after its check) commits without metrics, as it does when too few silos report without secure
    /// aggregation. The aggregator's own activity failing after its retries fails the round, as any activity does.
    /// </remarks>
    /// <param name="round">The round.</param>
    /// <param name="model">The round's new global model.</param>
    /// <param name="evaluating">The silos that evaluate.</param>
    /// <param name="request">A silo's evaluate request, without its masking.</param>
    public async Task<(EvaluateSummary? Summary, IReadOnlyList<RejectedUpdate> Failures, IReadOnlyList<SecureAttemptRecord> Attempts)> EvaluateAsync(int round, BlobRef model, IReadOnlyList<string> evaluating, Func<string, EvaluateRequest> request)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        var maskingRun = MaskingAttempt.ForEvaluation(runId);
        var minimum = MinimumSilos;
        var outcome = await new SecureSum(silos, logger, maskingRun, round, Privacy.Mode, spec.Participation.RoundDeadlineSeconds).RunAsync<SecureEvaluationResult>(
            evaluating,
            new SecureSumPolicy(minimum, Secure.MaxAttempts, EverySilo: false, "masked evaluation"),
            (silo, m) => new SiloStep(Evaluate: request(silo) with { Masking = m }),
            "evaluate-failed",
            async attempt =>
            {
                var result = await context.CallActivityAsync<SecureEvaluationResult>(
                    nameof(SecureEvaluationActivity),
                    new SecureEvaluationRequest(runId, maskingRun, round, attempt.Attempt, attempt.KeyExchange, attempt.Masked, attempt.Reveals, Privacy.Mode, minimum),
                    TaskPolicies.StorageRetry);
                // Summed, the result stands even without a summary (fewer than k silos scored an example).
                return new SecureSumStep<SecureEvaluationResult>(result.Summed ? result : null, result.Refused);
            });
        if (outcome.Result is null)
        {
            LogEvaluationWithoutSum(logger, runId, round, outcome.Message ?? string.Empty);
        }
        else if (outcome.Result.Summary is null)
        {
            // Summed, but over fewer than k silos that scored an example: no silo failed, and nothing is released.
            LogEvaluationWithoutSum(logger, runId, round, $"fewer than {minimum} of the silos that delivered scored an example");
        }

        return (outcome.Result?.Summary, outcome.Left, outcome.Attempts);
    }

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: the secure sum of the evaluation gave no result, and the round commits without evaluation metrics: {Detail}")]
    private static partial void LogEvaluationWithoutSum(ILogger logger, string runId, int round, string detail);
}
