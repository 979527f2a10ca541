using System.Runtime.InteropServices;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Element access to model tensors for the strategies' arithmetic, which is done in double and stored as the tensor's dtype.</summary>
public static class StrategyTensors
{
    /// <summary>The elements of <paramref name="tensor"/> as doubles (float32, float64 or int64).</summary>
    public static double[] Values(NamedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var span = tensor.Data.Span;
        return tensor.DType switch
        {
            TensorDType.F32 => Widen(MemoryMarshal.Cast<byte, float>(span)),
            TensorDType.F64 => MemoryMarshal.Cast<byte, double>(span).ToArray(),
            TensorDType.I64 => MemoryMarshal.Cast<byte, long>(span).ToArray().Select(v => (double)v).ToArray(),
            _ => throw new ArgumentException($"Tensor '{tensor.Name}' has dtype {tensor.DType}, which strategies do not combine.", nameof(tensor)),
        };
    }

    /// <summary>A tensor like <paramref name="like"/> (name, dtype, shape) holding <paramref name="values"/>, rounded to its dtype (int64 to nearest).</summary>
    public static NamedTensor WithValues(NamedTensor like, double[] values)
    {
        ArgumentNullException.ThrowIfNull(like);
        ArgumentNullException.ThrowIfNull(values);
        byte[] data = like.DType switch
        {
            TensorDType.F32 => MemoryMarshal.AsBytes(values.Select(v => (float)v).ToArray().AsSpan()).ToArray(),
            TensorDType.F64 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
            TensorDType.I64 => MemoryMarshal.AsBytes(values.Select(v => (long)Math.Round(v)).ToArray().AsSpan()).ToArray(),
            _ => throw new ArgumentException($"Tensor '{like.Name}' has dtype {like.DType}, which strategies do not combine.", nameof(like)),
        };
        return like with { Data = data };
    }

    /// <summary>A float32 tensor named <paramref name="name"/> with <paramref name="shape"/> holding <paramref name="values"/> rounded to float32.</summary>
    public static NamedTensor Float32(string name, long[] shape, double[] values) =>
        WithValues(new NamedTensor(name, TensorDType.F32, shape, ReadOnlyMemory<byte>.Empty), values);

    /// <summary>Tensors by name.</summary>
    public static Dictionary<string, NamedTensor> ByName(IReadOnlyList<NamedTensor> tensors) =>
        tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);

    /// <summary>Applies <paramref name="combine"/> to every coordinate of every tensor: its values across the updates, in update order.</summary>
    /// <remarks>The updates are already checked to have the same tensors, so the first one is the template.</remarks>
    public static List<NamedTensor> PerCoordinate(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, Func<double[], double> combine)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0)
        {
            throw new ArgumentException("At least one update is needed to aggregate.", nameof(updates));
        }

        var result = new List<NamedTensor>(updates[0].Count);
        var lookups = updates.Select(ByName).ToArray();
        foreach (var template in updates[0])
        {
            var columns = lookups.Select(l => Values(l[template.Name])).ToArray();
            var output = new double[columns[0].Length];
            var column = new double[columns.Length];
            for (var i = 0; i < output.Length; i++)
            {
                for (var k = 0; k < columns.Length; k++)
                {
                    column[k] = columns[k][i];
                }

                output[i] = combine(column);
            }

            result.Add(WithValues(template, output));
        }

        return result;
    }

    /// <summary>The mean of the chosen updates, weighted by <paramref name="weights"/> (normalised), coordinate by coordinate.</summary>
    public static List<NamedTensor> WeightedMean(IReadOnlyList<IReadOnlyList<NamedTensor>> updates, IReadOnlyList<double> weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var total = weights.Sum();
        return PerCoordinate(updates, column =>
        {
            double sum = 0;
            for (var k = 0; k < column.Length; k++)
            {
                sum += weights[k] * column[k];
            }

            return sum / total;
        });
    }

    /// <summary>
    /// A server optimizer's next model: each float32 tensor of <paramref name="global"/> moved by <paramref name="move"/>
    /// (given the tensor, its values, and the state tensors by name; it changes the values in place), every other tensor
    /// taken from <paramref name="aggregate"/>.
    /// </summary>
    public static NamedTensor[] MoveFloats(IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> state, Action<NamedTensor, double[], Dictionary<string, NamedTensor>> move)
    {
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(move);
        var slots = ByName(state);
        var averaged = ByName(aggregate);
        return global.Select(w =>
        {
            if (w.DType != TensorDType.F32)
            {
                return averaged[w.Name];
            }

            var x = Values(w);
            move(w, x, slots);
            return WithValues(w, x);
        }).ToArray();
    }

    /// <summary>Squared L2 distance between two updates over their floating-point tensors (integer counters such as batch counts are not weights and are left out, as <see cref="TensorMath.L2Distance"/> does).</summary>
    public static double SquaredDistance(IReadOnlyList<NamedTensor> a, IReadOnlyList<NamedTensor> b)
    {
        var other = ByName(b);
        double sum = 0;
        foreach (var t in a.Where(t => t.DType is TensorDType.F32 or TensorDType.F64))
        {
            var x = Values(t);
            var y = Values(other[t.Name]);
            for (var i = 0; i < x.Length; i++)
            {
                var d = x[i] - y[i];
                sum += d * d;
            }
        }

        return sum;
    }

    private static double[] Widen(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = values[i];
        }

        return result;
    }
}
