using System.Runtime.InteropServices;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Logging.Abstractions;

namespace FederatedFunctions.Workflow.Tests.Services;

/// <summary>DP-FedAvg in the aggregation activity: every change is clipped to C, noise N(0, (z·C)²) is added to the sum, the sum is divided by the silos sampled.</summary>
public sealed class DifferentialPrivacyAggregationTests
{
    private const int Size = 40_000;
    private readonly InMemoryBlobs blobs = new();
    private readonly InMemoryCheckpointStore store;
    private readonly AggregationService service;

    public DifferentialPrivacyAggregationTests()
    {
        store = new InMemoryCheckpointStore(blobs);
        service = new AggregationService(store, new InMemorySiloBackend(blobs, new Dictionary<string, FederatedFunctions.Ml.SiloDataset>()), new FederatedFunctions.Ml.TorchTensorEngine(), NullLogger<AggregationService>.Instance);
    }

    private static byte[] Model(Func<int, float> value) =>
        Safetensors.Serialize([new NamedTensor("w", TensorDType.F32, [Size], MemoryMarshal.AsBytes(Enumerable.Range(0, Size).Select(value).ToArray().AsSpan()).ToArray())]);

    private SiloUpdate Update(string silo, byte[] bytes, long examples) =>
        new(silo, 1, blobs.Put($"mem://{silo}/outbox/dp/round-00001/update.safetensors", bytes), examples, 0.5, new Dictionary<string, double>());

    private Task<float[]> AggregateAsync(double z, double clip, int sampled, params SiloUpdate[] updates) => AggregateAsync("dp", z, clip, sampled, updates);

    private async Task<float[]> AggregateAsync(string runId, double z, double clip, int sampled, params SiloUpdate[] updates)
    {
        var global = blobs.Put("mem://orchestrator/checkpoints/dp/round-00000/model.safetensors", Model(_ => 1f));
        var privacy = new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec { NoiseMultiplier = z, ClipNorm = clip } };
        var result = await service.AggregateAsync(new AggregateRequest(runId, 1, "checkpoints", new StrategySpec(), global, updates, Privacy: privacy, Sampled: sampled), default);
        return MemoryMarshal.Cast<byte, float>(Safetensors.Parse(await store.ReadModelAsync(result.Model, default)).Tensors[0].Data.Span).ToArray();
    }

    [Fact]
    public async Task Aggregate_LargeChanges_AreClippedToTheNormAndAveragedOverTheSampledSilos()
    {
        // Each silo moved every coordinate by +1 (norm 200) and by different example counts; z is negligible.
        var updates = new[] { Update("a", Model(_ => 2f), 10), Update("b", Model(_ => 2f), 1000), Update("c", Model(_ => 2f), 5) };

        var output = await AggregateAsync(z: 1e-9, clip: 3, sampled: 4, updates);

        // Three changes, each clipped to norm 3, in the same direction, summed and divided by 4 sampled silos.
        var change = Math.Sqrt(output.Sum(v => (v - 1.0) * (v - 1.0)));
        Assert.Equal(3 * 3.0 / 4, change, 3);
        Assert.All(output, v => Assert.Equal(1 + (3 * 3.0 / 4 / Math.Sqrt(Size)), v, 1e-5));
    }

    [Fact]
    public async Task Aggregate_SmallChanges_AreNotScaledUp()
    {
        // a's change has norm 0.01 · sqrt(40 000) = 2, under C = 5.
        var output = await AggregateAsync(z: 1e-9, clip: 5, sampled: 2, Update("a", Model(i => 1f + (i % 2 == 0 ? 0.01f : -0.01f)), 10), Update("b", Model(_ => 1f), 10));

        // Unclipped: the mean change over 2 sampled silos is half of a's change.
        Assert.Equal(1.005, output[0], 1e-5);
        Assert.Equal(0.995, output[1], 1e-5);
    }

    [Fact]
    public async Task Aggregate_Noise_HasStandardDeviationZTimesCOverTheSampledSilos()
    {
        // The silos send the global model back unchanged, so the output minus the global model is the noise / n alone.
        const double z = 1.3, clip = 2.0;
        const int sampled = 4;
        var updates = new[] { Update("a", Model(_ => 1f), 10), Update("b", Model(_ => 1f), 20), Update("c", Model(_ => 1f), 30) };

        var output = await AggregateAsync(z, clip, sampled, updates);

        var noise = output.Select(v => (v - 1.0) * sampled).ToArray();
        var mean = noise.Average();
        var std = Math.Sqrt(noise.Sum(v => (v - mean) * (v - mean)) / (noise.Length - 1));
        var expected = z * clip;
        // Standard error of a sample standard deviation: σ / sqrt(2(n - 1)), about 0.35% here; allow 5 of them.
        Assert.InRange(std, expected * (1 - (5 / Math.Sqrt(2.0 * (Size - 1)))), expected * (1 + (5 / Math.Sqrt(2.0 * (Size - 1)))));
        Assert.InRange(mean, -5 * expected / Math.Sqrt(Size), 5 * expected / Math.Sqrt(Size));
        Assert.InRange(noise.Count(v => Math.Abs(v) <= expected) / (double)Size, 0.6827 - 0.01, 0.6827 + 0.01);
    }

    [Fact]
    public async Task Aggregate_SameInputsInTwoRuns_NoiseDiffers()
    {
        // Noise comes from a cryptographic source, never from the spec's seed: an observer who knows the seed cannot remove it.
        var a = await AggregateAsync("dp-a", 1, 1, 2, Update("a", Model(_ => 1f), 10), Update("b", Model(_ => 1f), 10));
        var b = await AggregateAsync("dp-b", 1, 1, 2, Update("a", Model(_ => 1f), 10), Update("b", Model(_ => 1f), 10));

        Assert.False(a.AsSpan().SequenceEqual(b));
    }

    [Fact]
    public async Task Aggregate_ExecutedTwice_KeepsTheFirstNoisyModel()
    {
        // At-least-once delivery: a second execution draws other noise, but the model recorded is the first one written,
        // so the hash in history matches the blob and no second noisy release is stored.
        var a = await AggregateAsync(1, 1, 2, Update("a", Model(_ => 1f), 10), Update("b", Model(_ => 1f), 10));
        var b = await AggregateAsync(1, 1, 2, Update("a", Model(_ => 1f), 10), Update("b", Model(_ => 1f), 10));

        Assert.True(a.AsSpan().SequenceEqual(b));
        Assert.Contains(a, v => v != 1f);
    }
}
