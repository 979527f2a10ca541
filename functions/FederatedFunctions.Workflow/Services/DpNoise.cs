using System.Runtime.InteropServices;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Workflow.Services;

/// <summary>The Gaussian noise of DP-FedAvg, added to a round's mean of clipped updates.</summary>
/// <remarks>Shared by plain and secure aggregation: with secure aggregation the noise goes on the unmasked sum.</remarks>
public static class DpNoise
{
    /// <summary>
    /// <c>global + (m / n)·(mean − global) + N(0, (z·C)²) / n</c>: the noisy sum of the <c>m</c> clipped changes over the fixed
    /// denominator <c>n</c> (the silos sampled), as in DP-FedAvg, with noise from a CSPRNG.
    /// </summary>
    /// <exception cref="IncompatibleCheckpointException">A tensor that is not float32.</exception>
    public static List<NamedTensor> Apply(IReadOnlyList<NamedTensor> mean, IReadOnlyList<NamedTensor> global, int accepted, int sampled, DifferentialPrivacySpec dp)
    {
        if (mean.Any(t => t.DType != TensorDType.F32))
        {
            // Clipping measures float tensors only; a tensor that escaped clipping and noise would escape the guarantee.
            throw new IncompatibleCheckpointException("Differential privacy needs a model whose tensors are all float32.");
        }

        var source = new CryptoGaussianSource();
        var byName = global.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var output = new List<NamedTensor>(mean.Count);
        foreach (var t in mean)
        {
            var values = MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray();
            var start = MemoryMarshal.Cast<byte, float>(byName[t.Name].Data.Span);
            // The sum of the m clipped changes, m·(mean − global), gets the mechanism's noise; then it is divided by n.
            var sum = new float[values.Length];
            for (var i = 0; i < values.Length; i++)
            {
                sum[i] = (float)(accepted * ((double)values[i] - start[i]));
            }

            GaussianMechanism.AddNoise(sum, dp.NoiseMultiplier, dp.ClipNorm, source);
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)(start[i] + (sum[i] / (double)sampled));
            }

            output.Add(t with { Data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray() });
        }

        return output;
    }
}
