using System.Globalization;
using System.Runtime.InteropServices;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>Secure aggregation wired into runs: the orchestrator, the silo masking step and the secure aggregate activity, on the test host.</summary>
public sealed class SecureAggregationTests(ITestOutputHelper output)
{
    private const double ClipNorm = 10;
    private const long MaxExamples = 240;

    // Two float32 roundings (2⁻²⁴ each, relative): the silo's change, and the aggregated model.
    private const double FloatRounding = 2.0 / (1 << 24);

    // Unequal silos (240, 180, 120 and 60 train rows), so that weighting by example count shows in the sum.
    private static readonly IReadOnlyList<SiloDataset> Unequal = TrainingOrchestratorTests.Data
        .Select((d, i) => d with { Train = Take(d.Train, 240 - (60 * i)) })
        .ToArray();

    private static TabularData Take(TabularData t, int rows) =>
        new(t.Features[..(rows * t.Columns)], t.Labels[..rows], rows, t.Columns, t.FeatureNames);

    private static RunSpec Spec(string runId, int rounds = 2, DifferentialPrivacySpec? dp = null, string mode = PrivacyModes.EyesOn) =>
        TrainingOrchestratorTests.Spec(runId, rounds) with
        {
            Privacy = new PrivacySpec
            {
                Mode = mode,
                DifferentialPrivacy = dp,
                SecureAggregation = new SecureAggregationSpec { ClipNorm = dp is null ? ClipNorm : null, MaxExamples = MaxExamples },
            },
        };

    [Fact]
    public async Task RunAsync_SecureAggregation_EveryRoundIsTheWeightedFedAvgOfTheKeptUpdatesWithinQuantizationError()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var meta = await h.RunAsync(Spec("secagg-sum"));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "secagg-sum", default);
        var encoding = MaskedUpdateCodec.Encoding(Unequal.Count);
        foreach (var m in manifests.Skip(1))
        {
            var (expected, totalWeight) = ExpectedFedAvg(h, "secagg-sum", m.Round, Unequal.Select(d => d.SiloId), equalWeights: false);
            var actual = Floats(h.Blobs.Items[m.Model.Uri]);
            var error = MaxAbsDifference(expected, actual, out var scale);
            // Quantization (n · 0.5 / scale on the weighted sum of changes over C, times C, divided by Σw) plus float32
            // rounding of the silos' changes and of the result.
            var quantization = ClipNorm * encoding.MaxSumError / totalWeight;
            var bound = quantization + (FloatRounding * Math.Max(1, scale));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {m.Round}: max |secure - plain| = {error:E2}, bound {bound:E2} (quantization {quantization:E2}), largest |value| {scale:F3}"));
            Assert.True(error <= bound, $"round {m.Round}: error {error} over bound {bound}");

            // The aggregator learns no count or weight per silo, only the masked updates' hashes.
            Assert.Equal(Unequal.Select(d => d.SiloId).Order(), m.Participants.Select(p => p.SiloId));
            Assert.All(m.Participants, p => Assert.Null(p.Weight));
            Assert.All(m.Participants, p => Assert.Null(p.Examples));
            Assert.Equal(0, m.Privacy!.SecureAggregationAttempt);
            Assert.Equal(600, m.Metrics.TrainExamples);
        }

        // The trained models and the evaluations never left the silos: only masked updates and masked evaluations are
        // audited, one per silo and round each, and none of them is a kept update.
        var audit = AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "secagg-sum", 2, default));
        Assert.Equal(16, audit.Count);
        Assert.Equal(8, audit.Count(e => e.Kind == AuditKinds.MaskedUpdate));
        Assert.Equal(8, audit.Count(e => e.Kind == AuditKinds.MaskedMetrics));
        Assert.All(audit, e => Assert.Contains("/outbox/", e.Blob, StringComparison.Ordinal));
        Assert.All(audit, e => Assert.Contains(": summed", e.Policy.Checks, StringComparison.Ordinal));
        Assert.True(AuditChain.Verify(audit).IsValid);
    }

    [Fact]
    public async Task RunAsync_SiloDropsOutAfterKeyExchange_RedoesTheAttemptWithoutItWithFreshKeys()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var dropped = Unequal[1].SiloId;
        h.Backend.MaskFailures[(dropped, 0)] = true;
        var meta = await h.RunAsync(Spec("secagg-drop", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "secagg-drop", default)).Single(x => x.Round == 1);
        Assert.Equal(1, m.Privacy!.SecureAggregationAttempt);
        var survivors = Unequal.Select(d => d.SiloId).Where(s => s != dropped).Order().ToArray();
        Assert.Equal(survivors, m.Participants.Select(p => p.SiloId));
        var refusal = Assert.Single(m.Rejected);
        Assert.Equal((dropped, "dropped-out"), (refusal.SiloId, refusal.Reason));

        // Attempt 1 asks the survivors only, and its masked updates are new ones (fresh keys, new masks).
        Assert.Equal(survivors, h.Backend.MaskCalls.Where(c => c.Attempt == 1).Select(c => c.Silo).Order());
        var (expected, totalWeight) = ExpectedFedAvg(h, "secagg-drop", 1, survivors, equalWeights: false);
        var error = MaxAbsDifference(expected, Floats(h.Blobs.Items[m.Model.Uri]), out var scale);
        var bound = (ClipNorm * MaskedUpdateCodec.Encoding(Unequal.Count).MaxSumError / totalWeight) + (FloatRounding * Math.Max(1, scale));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"after a dropout: max |secure - plain over survivors| = {error:E2}, bound {bound:E2}"));
        Assert.True(error <= bound, $"error {error} over bound {bound}");

        var audit = AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "secagg-drop", 1, default)).Where(e => e.Kind == AuditKinds.MaskedUpdate).ToArray();
        Assert.Equal(6, audit.Length);
        Assert.Equal(3, audit.Count(e => e.Policy.Checks.Contains("attempt 0 ", StringComparison.Ordinal) && e.Policy.Checks.EndsWith("redone without the silos that dropped out", StringComparison.Ordinal)));
        Assert.Equal(3, audit.Count(e => e.Policy.Checks.Contains("attempt 1 ", StringComparison.Ordinal) && e.Policy.Checks.EndsWith(": summed", StringComparison.Ordinal)));
        var attempt0 = audit.Where(e => e.Policy.Checks.Contains("attempt 0 ", StringComparison.Ordinal)).Select(e => e.Sha256);
        var attempt1 = audit.Where(e => e.Policy.Checks.Contains("attempt 1 ", StringComparison.Ordinal)).Select(e => e.Sha256);
        Assert.Empty(attempt0.Intersect(attempt1));
    }

    [Fact]
    public async Task RunAsync_MaskedUpdateAlteredAfterDelivery_IsRefusedAndTheAttemptRedoneWithoutIt()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var tampered = Unequal[2].SiloId;
        h.Backend.TamperedMasks[(tampered, 0)] = true;
        var meta = await h.RunAsync(Spec("secagg-tamper", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "secagg-tamper", default)).Single(x => x.Round == 1);
        Assert.Equal(1, m.Privacy!.SecureAggregationAttempt);
        Assert.DoesNotContain(tampered, m.Participants.Select(p => p.SiloId));
        var refusal = Assert.Single(m.Rejected);
        Assert.Equal((tampered, "sha256-mismatch"), (refusal.SiloId, refusal.Reason));
    }

    [Fact]
    public async Task RunAsync_KeyExchangeFailsForOneSilo_TheFirstAttemptGoesOnWithoutIt()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var unreachable = Unequal[3].SiloId;
        h.Backend.KeyFailures[(unreachable, 0)] = true;
        var meta = await h.RunAsync(Spec("secagg-key", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "secagg-key", default)).Single(x => x.Round == 1);
        Assert.Equal(0, m.Privacy!.SecureAggregationAttempt);
        Assert.Equal(3, m.Participants.Count);
        Assert.Equal((unreachable, "key-exchange-failed"), (m.Rejected.Single().SiloId, m.Rejected.Single().Reason));
        Assert.DoesNotContain(h.Backend.MaskCalls, c => c.Silo == unreachable);
    }

    [Fact]
    public async Task RunAsync_TooFewSilosLeftForAnAttempt_FailsTheRoundNamingTheDropouts()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        foreach (var d in Unequal.Skip(1))
        {
            h.Backend.MaskFailures[(d.SiloId, 0)] = true;
        }

        var meta = await h.RunAsync(Spec("secagg-fail", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        var message = meta.FailureDetails!.ErrorMessage;
        Assert.Contains("secure aggregation found no attempt in which at least 2 silos", message, StringComparison.Ordinal);
        Assert.All(Unequal.Skip(1), d => Assert.Contains($"{d.SiloId}: dropped-out", message, StringComparison.Ordinal));
        Assert.DoesNotContain(h.Backend.MaskCalls, c => c.Attempt > 0);
    }

    [Fact]
    public async Task RunAsync_SiloFailsToRevealItsSelfMask_FailsTheRoundAndPointsToResumeFrom()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        h.Backend.RevealFailures[(Unequal[0].SiloId, 0)] = true;
        var meta = await h.RunAsync(Spec("secagg-noreveal", rounds: 1));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("cannot be unmasked", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("resumeFrom", meta.FailureDetails.ErrorMessage, StringComparison.Ordinal);
        // No redo: the silos that revealed attempt 0 would refuse attempt 1.
        Assert.DoesNotContain(h.Backend.MaskCalls, c => c.Attempt > 0);
        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.EndsWith(BlobLayout.Model("secagg-noreveal", 1), StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_RoundRedoneAfterTheReveals_TakesTheRevealedAttemptWithTheSameSilosAndNoOther()
    {
        // A first instance drops silo 1 in attempt 0 and reveals attempt 1 over the others. A second instance of the same
        // run (as after a crash before the commit) finds silo 1 healthy, but the others revealed attempt 1 already: the
        // round is redone as attempt 1 over the same silos, and silo 1's update is never part of a second, readable sum.
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var dropped = Unequal[1].SiloId;
        h.Backend.MaskFailures[(dropped, 0)] = true;
        var spec = Spec("secagg-again", rounds: 1);
        var first = await h.RunAsync(spec);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, first.RuntimeStatus);
        var model = (await h.Store.ListAsync("checkpoints", "secagg-again", default)).Single(x => x.Round == 1).Model;

        h.Backend.MaskFailures.Clear();
        await h.Host.Client.PurgeInstanceAsync("secagg-again");
        var second = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, second.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "secagg-again", default)).Single(x => x.Round == 1);
        Assert.Equal(1, m.Privacy!.SecureAggregationAttempt);
        Assert.DoesNotContain(dropped, m.Participants.Select(p => p.SiloId));
        Assert.Contains(m.Rejected, r => r.SiloId == dropped && r.Reason == "not-in-revealed-attempt");
        Assert.Equal(model, m.Model);
        var training = h.Backend.RevealCalls.Where(c => c.MaskingRun == "secagg-again").ToArray();
        Assert.NotEmpty(training);
        Assert.DoesNotContain(training, c => c.Silo == dropped);
        Assert.All(training, c => Assert.Equal(1, c.Attempt));

        // The silos enforce it themselves: after revealing attempt 1 they mask and reveal for no other attempt.
        var survivor = Unequal[0].SiloId;
        await Assert.ThrowsAsync<InvalidOperationException>(() => h.Backend.StartAsync(SiloJob.First("checkpoints", new SiloStep(Reveal: new RevealSelfMaskRequest("secagg-again", 1, 0, survivor))), null, default));
        var keptUri = $"mem://{survivor}/{BlobLayout.SiloPrivateUpdate("secagg-again", 1)}";
        var kept = h.Blobs.Items[keptUri];
        var keys = Unequal.Select(d => new MaskingPublicKey(d.SiloId, 2, new byte[91])).ToArray();
        var request = new MaskUpdateRequest("secagg-again", 1, 2, survivor, m.Model, new BlobRef(keptUri, Core.Hashing.Sha256Hex(kept), kept.Length), keys, SecureAggregationEncoding.For(4), ClipNorm, MaxExamples, false);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => h.Backend.StartAsync(SiloJob.First("checkpoints", new SiloStep(Mask: request)), null, default));
        Assert.Contains("revealed its self-mask for attempt 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_RoundRedoneWhileTheSilosThatRevealedAreUnreachable_FailsRatherThanRecordAnotherSumAgainstTheModel()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        h.Backend.MaskFailures[(Unequal[2].SiloId, 0)] = true;
        h.Backend.MaskFailures[(Unequal[3].SiloId, 0)] = true;
        var spec = Spec("secagg-split", rounds: 1);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.RunAsync(spec)).RuntimeStatus);

        // The re-run reaches only the two silos that never revealed: their own attempt would be a second release of round 1.
        h.Backend.MaskFailures.Clear();
        h.Backend.KeyFailures[(Unequal[0].SiloId, 0)] = true;
        h.Backend.KeyFailures[(Unequal[1].SiloId, 0)] = true;
        await h.Host.Client.PurgeInstanceAsync("secagg-split");
        var second = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, second.RuntimeStatus);
        Assert.Contains("already has a model from another secure-aggregation attempt", second.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        var m = (await h.Store.ListAsync("checkpoints", "secagg-split", default)).Single(x => x.Round == 1);
        Assert.Equal([Unequal[0].SiloId, Unequal[1].SiloId], m.Participants.Select(p => p.SiloId));
    }

    [Fact]
    public async Task RunAsync_SecureAggregationWithDifferentialPrivacy_AddsNoiseOfScaleZCOverNToTheUnmaskedMean()
    {
        await using var h = await new TrainingOrchestratorTests.Harness(Unequal).StartAsync();
        var dp = new DifferentialPrivacySpec { ClipNorm = 0.5, NoiseMultiplier = 1.0, Delta = 1e-5 };
        var meta = await h.RunAsync(Spec("secagg-dp", rounds: 1, dp: dp));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var m = (await h.Store.ListAsync("checkpoints", "secagg-dp", default)).Single(x => x.Round == 1);
        Assert.NotNull(m.Privacy!.Epsilon);
        var (expected, _) = ExpectedFedAvg(h, "secagg-dp", 1, Unequal.Select(d => d.SiloId), equalWeights: true, clipNorm: dp.ClipNorm);
        var actual = Floats(h.Blobs.Items[m.Model.Uri]);

        // Every silo contributed (m = n), so the model is the mean clipped change plus N(0, (zC)²)/n per coordinate.
        var residuals = expected.Zip(actual, (e, a) => a - e).ToArray();
        var sd = Math.Sqrt(residuals.Select(r => r * r).Average());
        var target = dp.NoiseMultiplier * dp.ClipNorm / Unequal.Count;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"noise sd {sd:F5} over {residuals.Length} coordinates, target {target:F5}"));
        Assert.InRange(sd, target * 0.85, target * 1.15);
    }

    // The plain weighted FedAvg of the kept updates of a round, computed here from the silos' private blobs in double
    // precision, with the same clipping: what secure aggregation must reproduce without ever seeing those blobs.
    private static (double[] Model, double TotalWeight) ExpectedFedAvg(TrainingOrchestratorTests.Harness h, string runId, int round, IEnumerable<string> silos, bool equalWeights, double clipNorm = ClipNorm)
    {
        var global = Parse(h.Blobs.Items[h.Blobs.Items.Keys.Single(k => k.StartsWith("mem://orchestrator/", StringComparison.Ordinal) && k.EndsWith(BlobLayout.Model(runId, round - 1), StringComparison.Ordinal))]);
        var g = Floats(global);
        var sum = new double[g.Length];
        double totalWeight = 0;
        foreach (var silo in silos)
        {
            var kept = Parse(h.Blobs.Items[$"mem://{silo}/{BlobLayout.SiloPrivateUpdate(runId, round)}"]);
            var u = Floats(kept);
            var examples = long.Parse(kept.Metadata[UpdateMetadata.Examples], CultureInfo.InvariantCulture);
            var w = SiloMasking.Weight(examples, MaxExamples, equalWeights);
            var delta = u.Zip(g, (a, b) => (double)a - b).ToArray();
            var norm = Math.Sqrt(delta.Sum(d => d * d));
            var clip = norm > clipNorm ? clipNorm / norm : 1;
            for (var i = 0; i < sum.Length; i++)
            {
                sum[i] += w * clip * delta[i];
            }

            totalWeight += w;
        }

        return (g.Select((v, i) => v + (sum[i] / totalWeight)).ToArray(), totalWeight);
    }

    private static SafetensorsFile Parse(byte[] bytes) => Safetensors.Parse(bytes);

    private static double[] Floats(byte[] safetensors) => Floats(Parse(safetensors));

    private static double[] Floats(SafetensorsFile file) =>
        file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal).SelectMany(t => MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray().Select(v => (double)v)).ToArray();

    private static double MaxAbsDifference(double[] expected, double[] actual, out double scale)
    {
        Assert.Equal(expected.Length, actual.Length);
        scale = expected.Max(Math.Abs);
        return expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
    }
}
