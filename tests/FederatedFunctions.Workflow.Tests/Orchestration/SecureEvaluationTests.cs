using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// Evaluation under secure aggregation, on the test host: each silo keeps its evaluation and sends only a masked vector;
/// the round's metrics are the unmasked sum's, equal to the plain summary of the same evaluations within the stated bound.
/// </summary>
public sealed class SecureEvaluationTests(ITestOutputHelper output)
{
    private const double Unit = 1.0 / (1L << 53);

    // Distinct train (240, 180, 120, 60) and test (80, 67, 54, 41) sizes, so that weighting by example count shows.
    private static readonly IReadOnlyList<SiloDataset> Unequal = TrainingOrchestratorTests.Data
        .Select((d, i) => d with { Train = Take(d.Train, 240 - (60 * i)), Test = Take(d.Test, 80 - (13 * i)) })
        .ToArray();

    private static readonly string[] Silos = Unequal.Select(d => d.SiloId).ToArray();

    private static TabularData Take(TabularData t, int rows) =>
        new(t.Features[..(rows * t.Columns)], t.Labels[..rows], rows, t.Columns, t.FeatureNames);

    private static RunSpec Spec(string runId, int rounds = 2, string mode = PrivacyModes.EyesOff, int minAggregate = 2) =>
        TrainingOrchestratorTests.Spec(runId, rounds) with
        {
            Privacy = new PrivacySpec
            {
                Mode = mode,
                MinAggregateSilos = minAggregate,
                SecureAggregation = new SecureAggregationSpec { ClipNorm = 10, MaxExamples = 240 },
            },
        };

    [Fact]
    public async Task RunAsync_SecureEvaluation_EqualsThePlainSummaryOfTheSilosEvaluationsWithinTheBound()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var spec = Spec("seceval-sum");
        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        foreach (var m in (await h.Store.ListAsync("checkpoints", spec.RunId!, default)).Skip(1))
        {
            // What each silo scored, read from its private area as only the silo can, and checked against a fresh scoring of
            // the round's model here; then the plain eyes-off summary of those evaluations.
            var kept = Silos.Select(s => Kept(h, spec.RunId!, m.Round, s)).ToArray();
            var model = Safetensors.Parse(h.Blobs.Items[m.Model.Uri]).Tensors;
            foreach (var (silo, outcome) in Silos.Zip(kept))
            {
                var fresh = LocalTrainer.Evaluate(spec.Model, spec.Data.Classes, model, Unequal.Single(d => d.SiloId == silo).Test);
                Assert.Equal((fresh.Examples, fresh.Correct), (outcome.Examples, outcome.Correct));
                Assert.Equal(fresh.Loss, outcome.Loss, 9);
            }

            Assert.Equal([80, 67, 54, 41], kept.Select(k => k.Examples));
            var plain = StrategyCatalog.Create(spec.Strategy).AggregateEvaluate(kept);
            var bound = ((2 * Silos.Length) + 2) * Unit * Math.Abs(plain.Loss);
            var error = Math.Abs(m.Metrics.EvalLoss!.Value - plain.Loss);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {m.Round}: secure loss {m.Metrics.EvalLoss:R}, plain {plain.Loss:R}, |difference| {error:E2} (bound {bound:E2}); accuracy {m.Metrics.EvalAccuracy:R} vs {plain.Accuracy:R}"));
            Assert.True(error <= bound, $"round {m.Round}: |secure - plain| = {error} over the bound {bound}");
            Assert.Equal(plain.Accuracy, m.Metrics.EvalAccuracy!.Value);

            // Eyes-off: the example total is withheld, and no silo wrote an evaluation report to its outbox.
            Assert.Null(m.Metrics.EvalExamples);
            Assert.Empty(m.EvaluationFailures!);
            Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.EndsWith(BlobLayout.SiloEvaluation(spec.RunId!, m.Round), StringComparison.Ordinal));
        }

        // One masked evaluation per silo and evaluated round, audited like the masked updates, in the silos' outboxes.
        var audit = AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", spec.RunId!, 2, default));
        var masked = audit.Where(e => e.Kind == AuditKinds.MaskedMetrics).ToArray();
        Assert.Equal(2 * Silos.Length, masked.Length);
        Assert.DoesNotContain(audit, e => e.Kind == AuditKinds.Metrics);
        Assert.All(masked, e => Assert.Contains($"/outbox/{MaskingAttempt.ForEvaluation(spec.RunId!)}/", e.Blob, StringComparison.Ordinal));
        Assert.All(masked, e => Assert.Contains("secure evaluation attempt 0 over 4 silos", e.Policy.Checks, StringComparison.Ordinal));
        Assert.All(masked, e => Assert.Contains(": summed, released only over at least 2 silos that scored", e.Policy.Checks, StringComparison.Ordinal));
        Assert.Single(masked.Select(e => e.Bytes).Distinct());
        Assert.True(AuditChain.Verify(audit).IsValid);
    }

    [Fact]
    public async Task RunAsync_EyesOnSecureEvaluation_ReportsTheExampleTotalAndNoSiloMetricInHistory()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var meta = await h.RunAsync(Spec("seceval-on", rounds: 1, mode: PrivacyModes.EyesOn));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "seceval-on", default)).Single(x => x.Round == 1);
        Assert.Equal(80 + 67 + 54 + 41, m.Metrics.EvalExamples);
        Assert.NotNull(m.Metrics.EvalLoss);

        // No evaluate step answered with an outcome: every one of them masked its evaluation.
        Assert.Contains(h.Converter.Texts, t => Regex.IsMatch(t, "\"masked\":\\s*\\{", RegexOptions.IgnoreCase));
        Assert.DoesNotContain(h.Converter.Texts, t => Regex.IsMatch(t, "\"outcome\":\\s*\\{", RegexOptions.IgnoreCase));
        Assert.Equal(Silos.Order(StringComparer.Ordinal), h.Backend.MaskedEvaluationCalls.Select(c => c.Silo).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task RunAsync_SiloDropsOutOfTheEvaluationAttempt_TheRoundIsEvaluatedOverTheOthersWithFreshKeys()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var dropped = Silos[1];
        h.Backend.EvaluationMaskFailures[(dropped, 0)] = true;
        var spec = Spec("seceval-drop", rounds: 1);
        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", spec.RunId!, default)).Single(x => x.Round == 1);
        var failure = Assert.Single(m.EvaluationFailures!);
        Assert.Equal((dropped, "dropped-out"), (failure.SiloId, failure.Reason));
        Assert.Empty(m.Rejected);

        // The metrics are the survivors' only; attempt 1 asked the survivors only.
        var survivors = Silos.Where(s => s != dropped).ToArray();
        var plain = StrategyCatalog.Create(spec.Strategy).AggregateEvaluate(survivors.Select(s => Kept(h, spec.RunId!, 1, s)).ToArray());
        Assert.True(Math.Abs(m.Metrics.EvalLoss!.Value - plain.Loss) <= 10 * Unit * plain.Loss);
        Assert.Equal(plain.Accuracy, m.Metrics.EvalAccuracy);
        Assert.Equal(survivors.Order(StringComparer.Ordinal), h.Backend.MaskedEvaluationCalls.Where(c => c.Attempt == 1).Select(c => c.Silo).Order(StringComparer.Ordinal));

        // Attempt 0's three masked evaluations are audited as discarded, attempt 1's three as summed.
        var audit = AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", spec.RunId!, 1, default)).Where(e => e.Kind == AuditKinds.MaskedMetrics).ToArray();
        Assert.Equal(3, audit.Count(e => e.Policy.Checks.Contains("attempt 0 ", StringComparison.Ordinal) && e.Policy.Checks.EndsWith("redone without the silos that dropped out", StringComparison.Ordinal)));
        Assert.Equal(3, audit.Count(e => e.Policy.Checks.Contains("attempt 1 ", StringComparison.Ordinal) && e.Policy.Checks.Contains(": summed", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task RunAsync_TooFewSilosLeftForTheEvaluation_TheRoundCommitsWithoutMetricsAndSaysWhy()
    {
        // k = 3 of 4 silos; two drop out of the evaluation: two are left, too few for a release. Training is unaffected.
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        h.Backend.EvaluationMaskFailures[(Silos[0], 0)] = true;
        h.Backend.EvaluationMaskFailures[(Silos[3], 0)] = true;
        var meta = await h.RunAsync(Spec("seceval-few", rounds: 1, minAggregate: 3));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "seceval-few", default)).Single(x => x.Round == 1);
        Assert.Equal(4, m.Participants.Count);
        Assert.NotNull(m.Metrics.TrainLoss);
        Assert.Equal((null, null), (m.Metrics.EvalLoss, m.Metrics.EvalAccuracy));
        Assert.Equal([Silos[0], Silos[3]], m.EvaluationFailures!.Select(f => f.SiloId).Order(StringComparer.Ordinal));
        Assert.All(m.EvaluationFailures!, f => Assert.Equal("dropped-out", f.Reason));
        Assert.DoesNotContain(h.Backend.MaskedEvaluationCalls, c => c.Attempt > 0);
    }

    [Fact]
    public async Task RunAsync_SiloWithholdsItsEvaluationSelfMask_TheRoundCommitsWithoutMetricsAndTheRunGoesOn()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        h.Backend.EvaluationRevealFailures[(Silos[2], 1, 0)] = true;
        var meta = await h.RunAsync(Spec("seceval-reveal", rounds: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "seceval-reveal", default);
        var first = manifests.Single(x => x.Round == 1);
        Assert.Null(first.Metrics.EvalLoss);
        var failure = Assert.Single(first.EvaluationFailures!);
        Assert.Equal((Silos[2], "reveal-failed"), (failure.SiloId, failure.Reason));

        // The next round's evaluation is a new secure sum, under new masks, and completes.
        Assert.NotNull(manifests.Single(x => x.Round == 2).Metrics.EvalLoss);
    }

    [Fact]
    public async Task RunAsync_AMaskedEvaluationChangedAfterItsCheck_TheRoundCommitsWithoutMetrics_AndTheAuditSaysNothingWasReleased()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var changer = Silos[1];
        h.Backend.ChangesAfterCheck = k => k == (changer, MaskingAttempt.ForEvaluation("seceval-changed"), 1, 0);
        var meta = await h.RunAsync(Spec("seceval-changed", rounds: 2));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "seceval-changed", default);
        var first = manifests.Single(x => x.Round == 1);
        Assert.Equal((null, null), (first.Metrics.EvalLoss, first.Metrics.EvalAccuracy));
        var failure = Assert.Single(first.EvaluationFailures!);
        Assert.Equal((changer, "sha256-mismatch"), (failure.SiloId, failure.Reason));
        Assert.NotNull(manifests.Single(x => x.Round == 2).Metrics.EvalLoss);

        // No second attempt (the others revealed their self-masks): the audit says the attempt was not redone.
        var audit = AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "seceval-changed", 1, default)).Where(e => e.Kind == AuditKinds.MaskedMetrics).ToArray();
        Assert.Equal(4, audit.Length);
        Assert.Equal(3, audit.Count(e => e.Policy.Checks.EndsWith("the attempt failed and was not redone, nothing of it was released", StringComparison.Ordinal)));
        Assert.Single(audit, e => e.SiloId == changer && e.Policy.Checks.EndsWith("refused (sha256-mismatch)", StringComparison.Ordinal));
        Assert.DoesNotContain(h.Backend.MaskedEvaluationCalls, c => c.Round == 1 && c.Attempt > 0);
    }

    // A silo's kept evaluation of a round, from its private area.
    private static EvaluateOutcome Kept(TrainingOrchestratorTests.Harness h, string runId, int round, string silo)
    {
        using var document = JsonDocument.Parse(h.Blobs.Items[$"mem://{silo}/{BlobLayout.SiloPrivateEvaluation(runId, round)}"]);
        return document.RootElement.GetProperty("outcome").Deserialize<EvaluateOutcome>(JsonDefaults.Documents)!;
    }
}
