using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>Builds the models a run spec names, and their seeded initial weights.</summary>
/// <remarks>
/// <para>
/// Both architectures are a stack of <c>Linear</c> layers held in a <c>Sequential</c> named <c>layers</c>, so parameter
/// names are stable and match what PyTorch would produce for the same module: <c>logreg</c> is
/// <c>layers.0.{weight,bias}</c> (<c>Linear(inputs, classes)</c>); an <c>mlp</c> with hidden widths <c>[h0, h1]</c>
/// is <c>Linear(inputs,h0), ReLU, Linear(h0,h1), ReLU, Linear(h1,classes)</c>, i.e. <c>layers.0</c>, <c>layers.2</c>,
/// <c>layers.4</c>. Every parameter is float32. The model outputs logits (no softmax).
/// </para>
/// <para>
/// <see cref="Create"/> leaves libtorch's default, unseeded initialisation in place: callers import a state into it.
/// <see cref="InitialState"/> is the seeded initialisation, drawn from a private <see cref="torch.Generator"/>, so it
/// never touches or depends on the global generator and is safe to call concurrently.
/// </para>
/// </remarks>
public static class ModelFactory
{
    /// <summary>A new, untrained module for <paramref name="model"/>. The caller owns and disposes it.</summary>
    /// <param name="model">Architecture and hidden widths.</param>
    /// <param name="inputs">Number of input features; must equal <see cref="ModelSpec.Inputs"/> when that is set.</param>
    /// <param name="classes">Number of classes (output logits).</param>
    /// <exception cref="ArgumentException">Unknown architecture, inconsistent sizes, or a hidden width that is not positive.</exception>
    public static nn.Module<Tensor, Tensor> Create(ModelSpec model, int inputs, int classes)
    {
        var widths = LayerWidths(model, inputs, classes);
        TorchRuntime.EnsureInitialized();
        return new FeedForward(widths);
    }

    /// <summary>The seeded initial weights of <paramref name="model"/>, as a state dict sorted by name.</summary>
    /// <remarks>
    /// Weights and biases are drawn uniformly from <c>[-1/√fan_in, 1/√fan_in)</c>, the distribution PyTorch's
    /// <c>Linear</c> uses by default, from a generator seeded with <paramref name="seed"/>; parameters are filled in
    /// ordinal name order. The same arguments always give bit-identical bytes, on any thread count.
    /// </remarks>
    public static IReadOnlyList<NamedTensor> InitialState(ModelSpec model, int inputs, int classes, long seed)
    {
        using var module = Create(model, inputs, classes);
        using var scope = torch.NewDisposeScope();
        using var generator = new torch.Generator(unchecked((ulong)seed));
        using (torch.no_grad())
        {
            var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            foreach (var name in parameters.Keys.Order(StringComparer.Ordinal))
            {
                var parameter = parameters[name];
                var weightName = name.EndsWith(".bias", StringComparison.Ordinal) ? name[..^".bias".Length] + ".weight" : name;
                var fanIn = parameters[weightName].shape[1];
                var bound = 1.0 / Math.Sqrt(fanIn);
                var uniform = torch.rand(parameter.shape, ScalarType.Float32, generator: generator);
                parameter.copy_(uniform.mul_(2 * bound).sub_(bound));
            }
        }

        return StateDicts.Export(module);
    }

    /// <summary>The widths of the linear layers, <c>[inputs, hidden..., classes]</c>, after checking the spec.</summary>
    internal static int[] LayerWidths(ModelSpec model, int inputs, int classes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        if (model.Inputs is { } declared && declared != inputs)
        {
            throw new ArgumentException($"The model declares {declared} inputs but {inputs} were given.", nameof(inputs));
        }

        var hidden = model.Hidden ?? [];
        switch (model.Architecture)
        {
            case ModelArchitectures.LogisticRegression:
                if (hidden.Count != 0)
                {
                    throw new ArgumentException("A logreg model has no hidden layers.", nameof(model));
                }

                return [inputs, classes];
            case ModelArchitectures.MultilayerPerceptron:
                if (hidden.Count == 0)
                {
                    throw new ArgumentException("An mlp model needs at least one hidden layer.", nameof(model));
                }

                if (hidden.Any(h => h < 1))
                {
                    throw new ArgumentException("Hidden layer widths must be positive.", nameof(model));
                }

                return [inputs, .. hidden, classes];
            default:
                throw new ArgumentException(
                    $"Unknown model architecture '{model.Architecture}'; expected one of: {string.Join(", ", ModelArchitectures.All)}.",
                    nameof(model));
        }
    }

    /// <summary>Linear layers with ReLU between them, registered as <c>layers</c>.</summary>
    private sealed class FeedForward : nn.Module<Tensor, Tensor>
    {
        // The field name is the state-dict prefix ("layers.0.weight"): RegisterComponents uses it.
        private readonly Sequential layers;

        public FeedForward(int[] widths)
            : base(nameof(FeedForward))
        {
            var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (var i = 0; i < widths.Length - 1; i++)
            {
                modules.Add((modules.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), nn.Linear(widths[i], widths[i + 1])));
                if (i < widths.Length - 2)
                {
                    modules.Add((modules.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), nn.ReLU()));
                }
            }

            layers = nn.Sequential(modules);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => layers.forward(input);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                layers.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
