using System.Runtime.InteropServices;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>DP-FedAvg around a streaming strategy: every update is clipped and weighs the same, and the released mean gets Gaussian noise.</summary>
/// <remarks>
/// McMahan et al., "Learning Differentially Private Recurrent Language Models" (2018): each update's change from the
/// global model is scaled to an L2 norm of at most <c>C</c>, every silo weighs 1 (so one silo's influence on the sum is
/// bounded by <c>C</c>), and the sum of the <c>m</c> clipped changes gets <c>N(0, (z·C)²)</c> noise before it is divided
/// by the fixed denominator <c>n</c>, the silos sampled. Noise comes from a CSPRNG. A server optimizer after it works on
/// the released aggregate, which is post-processing and keeps the guarantee. Under secure aggregation the silos clip and
/// this wrapper adds the noise to the unmasked sum.
/// </remarks>
public sealed class DifferentiallyPrivate(IFederatedStrategy inner, DifferentialPrivacySpec dp) : StrategyDecorator(inner)
{
    /// <summary>The mechanism's parameters.</summary>
    public DifferentialPrivacySpec Dp { get; } = dp ?? throw new ArgumentNullException(nameof(dp));

    /// <inheritdoc />
    public override bool NeedsDistances => true;

    /// <inheritdoc />
    public override IReadOnlyList<double> AggregationWeights(IReadOnlyList<FitOutcome> accepted) =>
        accepted.Select(_ => 1.0 / accepted.Count).ToArray();

    /// <inheritdoc />
    public override double ClipScale(double distance) => GaussianMechanism.ClipScale(distance, Dp.ClipNorm) * Inner.ClipScale(distance);

    /// <summary>
    /// <c>global + (m / n)·(mean − global) + N(0, (z·C)²) / n</c>: the noisy sum of the <c>m</c> clipped changes over the
    /// fixed denominator <c>n</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">A tensor that is not float32 (it would escape clipping and noise).</exception>
    public override IReadOnlyList<NamedTensor> Release(IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> global, int contributors, int sampled)
    {
        ArgumentNullException.ThrowIfNull(aggregate);
        ArgumentNullException.ThrowIfNull(global);
        var mean = Inner.Release(aggregate, global, contributors, sampled);
        if (mean.Any(t => t.DType != TensorDType.F32))
        {
            throw new InvalidOperationException("Differential privacy needs a model whose tensors are all float32.");
        }

        var source = new CryptoGaussianSource();
        var byName = StrategyTensors.ByName(global);
        var output = new List<NamedTensor>(mean.Count);
        foreach (var t in mean)
        {
            var values = MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray();
            var start = MemoryMarshal.Cast<byte, float>(byName[t.Name].Data.Span);
            var sum = new float[values.Length];
            for (var i = 0; i < values.Length; i++)
            {
                sum[i] = (float)(contributors * ((double)values[i] - start[i]));
            }

            GaussianMechanism.AddNoise(sum, Dp.NoiseMultiplier, Dp.ClipNorm, source);
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)(start[i] + (sum[i] / (double)sampled));
            }

            output.Add(t with { Data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray() });
        }

        return output;
    }
}
