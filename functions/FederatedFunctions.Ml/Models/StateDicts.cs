using FederatedFunctions.Core.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>Converts between TorchSharp modules and tensors and the framework-neutral <see cref="NamedTensor"/>.</summary>
/// <remarks>
/// Every conversion copies: a <see cref="NamedTensor"/> never aliases a tensor's storage, and a tensor built from one never
/// aliases its bytes, so either side may be disposed or mutated freely afterwards. Bytes are little-endian, row-major,
/// which is also the in-memory layout of a contiguous CPU tensor on every platform TorchSharp supports.
/// </remarks>
public static class StateDicts
{
    /// <summary>Copies a module's state dict out, sorted by ordinal name.</summary>
    /// <remarks>Dtypes are kept; every module <see cref="ModelFactory"/> builds holds float32 only, so its export is all <see cref="TensorDType.F32"/>.</remarks>
    public static IReadOnlyList<NamedTensor> Export(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var state = module.state_dict();
        return state.Keys.Order(StringComparer.Ordinal).Select(name => FromTensor(name, state[name])).ToArray();
    }

    /// <summary>Copies <paramref name="state"/> into a module's parameters and buffers.</summary>
    /// <remarks>All keys, shapes and dtypes are checked before anything is written, so a rejected state leaves the module unchanged.</remarks>
    /// <exception cref="ModelStateException">A key is missing, unexpected or duplicated, or a shape, dtype or byte length differs; the message names the key.</exception>
    public static void Import(nn.Module module, IReadOnlyList<NamedTensor> state)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(state);
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var targets = module.state_dict();
        var given = new Dictionary<string, NamedTensor>(StringComparer.Ordinal);
        foreach (var tensor in state)
        {
            if (!given.TryAdd(tensor.Name, tensor))
            {
                throw new ModelStateException(tensor.Name, "appears more than once in the state");
            }
        }

        foreach (var name in targets.Keys.Order(StringComparer.Ordinal))
        {
            if (!given.TryGetValue(name, out var source))
            {
                throw new ModelStateException(name, "is missing from the state");
            }

            var target = targets[name];
            var expectedDType = ToDType(target.dtype);
            if (source.DType != expectedDType)
            {
                throw new ModelStateException(name, $"has dtype {source.DType}, the model expects {expectedDType}");
            }

            if (!source.Shape.AsSpan().SequenceEqual(target.shape))
            {
                throw new ModelStateException(name, $"has shape {FormatShape(source.Shape)}, the model expects {FormatShape(target.shape)}");
            }

            CheckLength(source);
        }

        foreach (var name in given.Keys.Order(StringComparer.Ordinal))
        {
            if (!targets.ContainsKey(name))
            {
                throw new ModelStateException(name, "is not a tensor of this model");
            }
        }

        using (torch.no_grad())
        {
            foreach (var (name, target) in targets)
            {
                using var source = ToTensor(given[name]);
                target.copy_(source);
            }
        }
    }

    /// <summary>A new CPU tensor holding a copy of <paramref name="tensor"/>'s bytes. The caller owns it.</summary>
    /// <exception cref="ArgumentException">The byte length does not match the shape and dtype.</exception>
    public static Tensor ToTensor(NamedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        TorchRuntime.EnsureInitialized();
        try
        {
            CheckLength(tensor);
        }
        catch (ModelStateException ex)
        {
            throw new ArgumentException(ex.Message, nameof(tensor), ex);
        }

        var result = torch.empty(tensor.Shape, ToScalarType(tensor.DType));
        if (tensor.Data.Length > 0)
        {
            tensor.Data.Span.CopyTo(result.bytes);
        }

        return result;
    }

    /// <summary>Copies a tensor out as a <see cref="NamedTensor"/>; the tensor is not modified or disposed.</summary>
    /// <exception cref="ArgumentException">The tensor's dtype has no <see cref="TensorDType"/>.</exception>
    public static NamedTensor FromTensor(string name, Tensor tensor)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(tensor);
        TorchRuntime.EnsureInitialized();
        var dtype = ToDType(tensor.dtype);
        using var scope = torch.NewDisposeScope();
        var dense = tensor.detach().cpu().contiguous();
        byte[] bytes = [];
        if (dense.numel() > 0)
        {
            var source = dense.bytes;
            bytes = GC.AllocateUninitializedArray<byte>(source.Length);
            source.CopyTo(bytes);
        }

        return new NamedTensor(name, dtype, tensor.shape.ToArray(), bytes);
    }

    /// <summary>The <see cref="TensorDType"/> of a TorchSharp scalar type.</summary>
    /// <exception cref="ArgumentException">A type outside F32, F64, I64 and I32.</exception>
    public static TensorDType ToDType(ScalarType type) => type switch
    {
        ScalarType.Float32 => TensorDType.F32,
        ScalarType.Float64 => TensorDType.F64,
        ScalarType.Int64 => TensorDType.I64,
        ScalarType.Int32 => TensorDType.I32,
        _ => throw new ArgumentException($"Tensors of type {type} cannot be exported; expected Float32, Float64, Int64 or Int32.", nameof(type)),
    };

    /// <summary>The TorchSharp scalar type of a <see cref="TensorDType"/>.</summary>
    public static ScalarType ToScalarType(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => ScalarType.Float32,
        TensorDType.F64 => ScalarType.Float64,
        TensorDType.I64 => ScalarType.Int64,
        TensorDType.I32 => ScalarType.Int32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    internal static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";

    private static void CheckLength(NamedTensor tensor)
    {
        if (tensor.Shape.Any(d => d < 0))
        {
            throw new ModelStateException(tensor.Name, $"has a negative dimension in shape {FormatShape(tensor.Shape)}");
        }

        var expected = checked(tensor.ElementCount * tensor.DType.ElementSize());
        if (tensor.Data.Length != expected)
        {
            throw new ModelStateException(tensor.Name, $"holds {tensor.Data.Length} bytes, but shape {FormatShape(tensor.Shape)} of {tensor.DType} needs {expected}");
        }
    }
}

/// <summary>A state dict does not fit a model: a key is missing or unexpected, or a shape or dtype differs.</summary>
/// <remarks>The message always starts with the tensor's name, so a log line says which tensor was wrong.</remarks>
public sealed class ModelStateException : Exception
{
    /// <summary>Creates the exception for the tensor <paramref name="key"/>.</summary>
    public ModelStateException(string key, string problem)
        : base($"Tensor '{key}' {problem}.")
    {
        Key = key;
        Problem = problem;
    }

    /// <summary>The state-dict key (tensor name) at fault.</summary>
    public string Key { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}
