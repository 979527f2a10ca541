using System.Runtime.InteropServices;
using System.Text.Json;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Logging.Abstractions;

using FederatedFunctions.Ml;

namespace FederatedFunctions.Workflow.Tests.Services;

/// <summary>Eyes-off aggregation: counts come from inside the updates, and only aggregates over at least k silos come out.</summary>
public sealed class EyesOffAggregationTests
{
    private readonly InMemoryBlobs blobs = new();
    private readonly InMemoryCheckpointStore store;
    private readonly InMemorySiloBackend silos;
    private readonly BlobRef global;

    public EyesOffAggregationTests()
    {
        store = new InMemoryCheckpointStore(blobs);
        silos = new InMemorySiloBackend(blobs, new Dictionary<string, FederatedFunctions.Ml.SiloDataset>());
        global = blobs.Put("mem://orchestrator/checkpoints/r/round-00000/model.safetensors", Model(0, 0, null));
    }

    private static byte[] Model(float a, float b, long? examples, float? nan = null) =>
        Safetensors.Serialize(
            [new NamedTensor("w", TensorDType.F32, [2], MemoryMarshal.AsBytes(new[] { nan ?? a, b }.AsSpan()).ToArray())],
            examples is null ? null : new Dictionary<string, string> { [UpdateMetadata.Examples] = examples.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), [UpdateMetadata.Loss] = UpdateMetadata.FormatLoss(0.25) });

    // As an eyes-off silo reports it: no count, no loss, no metrics.
    private SiloUpdate Update(string silo, byte[] bytes) =>
        new(silo, 1, blobs.Put($"mem://{silo}/outbox/r/round-00001/update.safetensors", bytes), null, null, null);

    private Task<AggregateResult> AggregateAsync(int k, params SiloUpdate[] updates) =>
        new AggregationService(store, silos, new TorchTensorEngine(), NullLogger<AggregationService>.Instance).AggregateAsync(
            new AggregateRequest("r", 1, "checkpoints", new StrategySpec(), global, updates, Privacy: new PrivacySpec { Mode = PrivacyModes.EyesOff, MinAggregateSilos = k }), default);

    [Fact]
    public async Task Aggregate_EyesOff_WeightsByTheCountsInsideTheUpdatesAndReportsNoPerSiloValue()
    {
        var result = await AggregateAsync(2, Update("a", Model(1, 2, 120)), Update("b", Model(3, 4, 80)));

        var values = MemoryMarshal.Cast<byte, float>(Safetensors.Parse(await store.ReadModelAsync(result.Model, default)).Tensors[0].Data.Span).ToArray();
        Assert.Equal(1.8f, values[0], 1e-6f);
        Assert.All(result.Participants, p => Assert.Equal((null, null), (p.Examples, p.Weight)));
        Assert.Equal(new FitSummary(0, 0.25), result.Fit); // the loss over both; the example total withheld
    }

    [Fact]
    public async Task Aggregate_EyesOffWithFewerSilosThanK_WithholdsTheAggregate()
    {
        var result = await AggregateAsync(3, Update("a", Model(1, 2, 120)), Update("b", Model(3, 4, 80)));

        Assert.Null(result.Fit);
        Assert.Equal(2, result.Participants.Count);
    }

    [Fact]
    public async Task Aggregate_EyesOffBadUpdates_AreRefusedWithValueDetailsWithheld()
    {
        var result = await AggregateAsync(1, Update("a", Model(1, 2, 120)), Update("b", Model(3, 4, null)), Update("c", Model(0, 4, 50, float.NaN)));

        Assert.Equal(
            [("b", "bad-example-count", AggregationService.WithheldDetail), ("c", "non-finite", AggregationService.WithheldDetail)],
            result.Rejected.Select(r => (r.SiloId, r.Reason, r.Detail)).OrderBy(r => r.SiloId));
    }

    private SiloEvaluation Report(string silo, long examples, long correct, double loss)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new EvaluateOutcome(silo, examples, loss, correct), new JsonSerializerOptions(JsonSerializerDefaults.Web));
        return new SiloEvaluation(silo, null, blobs.Put($"mem://{silo}/outbox/r/round-00001/evaluation.json", bytes));
    }

    [Fact]
    public async Task Summarize_ReportsOverAtLeastK_AggregatesAndFewerWithholds()
    {
        var service = new EvaluationService(silos);
        var reports = new[] { Report("a", 100, 80, 0.5), Report("b", 300, 150, 1.0) };

        var summary = await service.SummarizeAsync(new SummarizeEvaluationRequest("r", 1, "fedavg", reports, 2), default);
        var withheld = await service.SummarizeAsync(new SummarizeEvaluationRequest("r", 1, "fedavg", reports, 3), default);

        Assert.Equal(new EvaluateSummary(0, 0.875, 230 / 400.0), summary);
        Assert.Null(withheld);
    }

    [Fact]
    public async Task Summarize_TamperedOrForeignReport_IsNotCounted()
    {
        var service = new EvaluationService(silos);
        var tampered = Report("a", 100, 80, 0.5);
        blobs.Items[tampered.Report!.Uri] = JsonSerializer.SerializeToUtf8Bytes(new EvaluateOutcome("a", 100, 0.1, 100));
        var foreign = Report("b", 300, 150, 1.0) with { SiloId = "c" }; // b's report claimed by c: outside c's outbox

        var summary = await service.SummarizeAsync(new SummarizeEvaluationRequest("r", 1, "fedavg", [tampered, foreign, Report("d", 50, 25, 0.7)], 1), default);

        Assert.Equal(new EvaluateSummary(0, 0.7, 0.5), summary);
    }
}
