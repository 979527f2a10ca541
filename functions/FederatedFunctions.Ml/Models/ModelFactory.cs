using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>Builds the models a run spec names, from their plans (<see cref="ModelCatalog"/>), and their seeded initial weights.</summary>
/// <remarks>
/// <para>
/// Every model is its plan's layers held in a <c>Sequential</c> named <c>layers</c>, so parameter names are stable and
/// match what PyTorch would produce for the same module: <c>logreg</c> is <c>layers.0.{weight,bias}</c>
/// (<c>Linear(inputs, classes)</c>); an <c>mlp</c> with hidden widths <c>[h0, h1]</c> is
/// <c>Linear(inputs,h0), ReLU, Linear(h0,h1), ReLU, Linear(h1,classes)</c>, i.e. <c>layers.0</c>, <c>layers.2</c>,
/// <c>layers.4</c>; a <c>cnn</c> starts with <c>Unflatten</c> (<c>layers.0</c>) and its declared layers follow. Every
/// parameter is float32. The model outputs logits (no softmax).
/// </para>
/// <para>
/// <see cref="Create"/> leaves libtorch's default, unseeded initialisation in place: callers import a state into it.
/// <see cref="InitialState"/> is the seeded initialisation, drawn from a private <see cref="torch.Generator"/>, so it
/// never touches or depends on the global generator and is safe to call concurrently. Dropout draws its masks from the
/// generator the trainer gives, so training stays reproducible.
/// </para>
/// </remarks>
public static class ModelFactory
{
    /// <summary>A new, untrained module for <paramref name="model"/>. The caller owns and disposes it.</summary>
    /// <param name="model">The model spec.</param>
    /// <param name="inputs">Number of input features; must equal <see cref="ModelSpec.Inputs"/> when that is set.</param>
    /// <param name="classes">Number of classes (output logits).</param>
    /// <param name="dropout">The generator dropout layers draw their masks from while training; the global one when null.</param>
    /// <exception cref="ArgumentException">Unknown architecture, or a model the spec validator refuses.</exception>
    public static nn.Module<Tensor, Tensor> Create(ModelSpec model, int inputs, int classes, torch.Generator? dropout = null)
    {
        var plan = ModelCatalog.Plan(model, inputs, classes);
        TorchRuntime.EnsureInitialized();
        return new Planned(plan, dropout);
    }

    /// <summary>The seeded initial weights of <paramref name="model"/>, as a state dict sorted by name.</summary>
    /// <remarks>
    /// Weights and biases of linear and convolution layers are drawn uniformly from <c>[-1/√fan_in, 1/√fan_in)</c>, the
    /// bound PyTorch's defaults use (fan_in: the weight's elements per output), from a generator seeded with
    /// <paramref name="seed"/>; parameters are filled in ordinal name order. A normalization layer's scale starts at 1
    /// and its shift at 0, as in PyTorch. The same arguments always give bit-identical bytes, on any thread count.
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
                var bias = name.EndsWith(".bias", StringComparison.Ordinal);
                var weight = parameters[bias ? name[..^".bias".Length] + ".weight" : name];
                if (weight.shape.Length < 2)
                {
                    // A normalization layer's scale and shift.
                    _ = bias ? parameter.zero_() : parameter.fill_(1);
                    continue;
                }

                var fanIn = weight.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
                var bound = 1.0 / Math.Sqrt(fanIn);
                var uniform = torch.rand(parameter.shape, ScalarType.Float32, generator: generator);
                parameter.copy_(uniform.mul_(2 * bound).sub_(bound));
            }
        }

        return StateDicts.Export(module);
    }

    /// <summary>A plan's layers, registered as <c>layers</c>.</summary>
    private sealed class Planned : nn.Module<Tensor, Tensor>
    {
        // The field name is the state-dict prefix ("layers.0.weight"): RegisterComponents uses it.
        private readonly Sequential layers;

        public Planned(ModelPlan plan, torch.Generator? dropout)
            : base(nameof(Planned))
        {
            var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
            foreach (var layer in plan.Layers)
            {
                nn.Module<Tensor, Tensor> module = layer switch
                {
                    LinearLayer l => nn.Linear(l.In, l.Out),
                    ReluLayer => nn.ReLU(),
                    Conv2dLayer c => nn.Conv2d(c.InChannels, c.OutChannels, c.Kernel, stride: c.Stride, padding: c.Padding),
                    MaxPool2dLayer m => nn.MaxPool2d(m.Kernel, m.Stride),
                    GroupNormLayer g => nn.GroupNorm(g.Groups, g.Channels),
                    DropoutLayer d => new SeededDropout(d.P, dropout),
                    UnflattenLayer u => nn.Unflatten(1, [u.Channels, u.Height, u.Width]),
                    FlattenLayer => nn.Flatten(),
                    _ => throw new ArgumentException($"No module for a {layer.GetType().Name}.", nameof(plan)),
                };
                modules.Add((modules.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
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

    /// <summary>Inverted dropout whose masks come from a given generator, so that a seeded training run is reproducible.</summary>
    private sealed class SeededDropout(double p, torch.Generator? generator) : nn.Module<Tensor, Tensor>(nameof(SeededDropout))
    {
        public override Tensor forward(Tensor input)
        {
            if (!training || p == 0)
            {
                return input.alias();
            }

            using var keep = torch.rand(input.shape, ScalarType.Float32, generator: generator).ge_(p);
            return input.mul(keep).div_(1 - p);
        }
    }
}
