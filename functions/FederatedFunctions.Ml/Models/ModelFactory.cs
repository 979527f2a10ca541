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
/// Every model is its plan's layers held in a module list named <c>layers</c> and applied in order, so parameter names
/// are stable and match what PyTorch would produce for the same module (an <c>nn.Sequential</c> or <c>nn.ModuleList</c>
/// attribute named <c>layers</c>): <c>logreg</c> is <c>layers.0.{weight,bias}</c> (<c>Linear(inputs, classes)</c>); an
/// <c>mlp</c> with hidden widths <c>[h0, h1]</c> is <c>Linear(inputs,h0), ReLU, Linear(h0,h1), ReLU, Linear(h1,classes)</c>,
/// i.e. <c>layers.0</c>, <c>layers.2</c>, <c>layers.4</c>; a <c>cnn</c> starts with <c>Unflatten</c> (<c>layers.0</c>)
/// and its declared layers follow; a <c>gru</c> or <c>lstm</c> is <c>Unflatten</c> to <c>[steps, features]</c>, one
/// <c>nn.GRU</c> (<c>nn.LSTM</c>) per hidden size with <c>batch_first</c> (<c>layers.1.weight_ih_l0</c>, …), the last
/// step, and <c>Linear(hₙ, classes)</c>. Every parameter is float32. The model outputs logits (no softmax).
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
    // The parameters of a one-layer nn.GRU or nn.LSTM, as PyTorch names them; weight_hh_l0 is [gates · hidden, hidden].
    private static readonly string[] RecurrentParameters = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"];

    /// <summary>A new, untrained module for <paramref name="model"/>. The caller owns and disposes it.</summary>
    /// <param name="model">The model spec.</param>
    /// <param name="inputs">Number of input features; must equal <see cref="ModelSpec.Inputs"/> when that is set.</param>
    /// <param name="classes">Number of classes (output logits).</param>
    /// <param name="dropout">The generator dropout layers draw their masks from while training; the global one when null.</param>
    /// <param name="script">A <c>torchscript</c> model's file (<c>torch.jit.save</c>); required for that kind, ignored otherwise.</param>
    /// <exception cref="ArgumentException">Unknown architecture, or a model the spec validator refuses.</exception>
    /// <exception cref="InvalidScriptException">A TorchScript file that does not load, or whose forward does not map rows to logits.</exception>
    public static nn.Module<Tensor, Tensor> Create(ModelSpec model, int inputs, int classes, torch.Generator? dropout = null, ReadOnlyMemory<byte>? script = null)
    {
        var plan = ModelCatalog.Plan(model, inputs, classes);
        TorchRuntime.EnsureInitialized();
        if (plan.Layers is [ScriptLayer])
        {
            return Scripted.Load(script ?? throw new ArgumentException("A torchscript model needs its file.", nameof(script)), inputs, classes);
        }

        return new Planned(plan, dropout);
    }

    /// <summary>The seeded initial weights of <paramref name="model"/>, as a state dict sorted by name.</summary>
    /// <remarks>
    /// Weights and biases of linear and convolution layers are drawn uniformly from <c>[-1/√fan_in, 1/√fan_in)</c>, the
    /// bound PyTorch's defaults use (fan_in: the weight's elements per output), and every weight and bias of a recurrent
    /// layer from <c>[-1/√hidden, 1/√hidden)</c>, as PyTorch's <c>nn.GRU</c> and <c>nn.LSTM</c> do, from a generator
    /// seeded with <paramref name="seed"/>; parameters are filled in ordinal name order. A normalization layer's scale
    /// starts at 1 and its shift at 0, as in PyTorch. The same arguments always give bit-identical bytes, on any thread
    /// count.
    /// </remarks>
    public static IReadOnlyList<NamedTensor> InitialState(ModelSpec model, int inputs, int classes, long seed, ReadOnlyMemory<byte>? script = null)
    {
        using var module = Create(model, inputs, classes, script: script);
        if (module is Scripted)
        {
            // A TorchScript model starts from the parameters saved in its file.
            return StateDicts.Export(module);
        }

        using var scope = torch.NewDisposeScope();
        using var generator = new torch.Generator(unchecked((ulong)seed));
        using (torch.no_grad())
        {
            var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            foreach (var name in parameters.Keys.Order(StringComparer.Ordinal))
            {
                var parameter = parameters[name];
                if (RecurrentHiddenSize(name, parameters) is { } hidden)
                {
                    Uniform(parameter, 1.0 / Math.Sqrt(hidden), generator);
                    continue;
                }

                var bias = name.EndsWith(".bias", StringComparison.Ordinal);
                var weight = parameters[bias ? name[..^".bias".Length] + ".weight" : name];
                if (weight.shape.Length < 2)
                {
                    // A normalization layer's scale and shift.
                    _ = bias ? parameter.zero_() : parameter.fill_(1);
                    continue;
                }

                var fanIn = weight.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
                Uniform(parameter, 1.0 / Math.Sqrt(fanIn), generator);
            }
        }

        return StateDicts.Export(module);
    }

    private static void Uniform(Tensor parameter, double bound, torch.Generator generator)
    {
        var uniform = torch.rand(parameter.shape, ScalarType.Float32, generator: generator);
        parameter.copy_(uniform.mul_(2 * bound).sub_(bound));
    }

    // The hidden size of the recurrent layer that parameter `name` belongs to, or null for any other parameter.
    private static long? RecurrentHiddenSize(string name, Dictionary<string, Parameter> parameters)
    {
        var dot = name.LastIndexOf('.');
        return RecurrentParameters.Contains(name[(dot + 1)..], StringComparer.Ordinal)
            ? parameters[name[..(dot + 1)] + "weight_hh_l0"].shape[1]
            : null;
    }

    /// <summary>A plan's layers, registered as <c>layers</c> and applied in order.</summary>
    /// <remarks>
    /// A module list rather than a <c>Sequential</c>, which holds only tensor-to-tensor modules: a recurrent layer
    /// returns its state besides its output, and is held as it is so that its parameters keep PyTorch's names. Both
    /// name their children <c>0</c>, <c>1</c>, …, so the state dict is the same.
    /// </remarks>
    private sealed class Planned : nn.Module<Tensor, Tensor>
    {
        // The field name is the state-dict prefix ("layers.0.weight"): RegisterComponents uses it.
        private readonly ModuleList<nn.Module> layers;

        public Planned(ModelPlan plan, torch.Generator? dropout)
            : base(nameof(Planned))
        {
            var modules = new List<nn.Module>();
            foreach (var layer in plan.Layers)
            {
                nn.Module module = layer switch
                {
                    LinearLayer l => nn.Linear(l.In, l.Out),
                    ReluLayer => nn.ReLU(),
                    Conv2dLayer c => nn.Conv2d(c.InChannels, c.OutChannels, c.Kernel, stride: c.Stride, padding: c.Padding),
                    MaxPool2dLayer m => nn.MaxPool2d(m.Kernel, m.Stride),
                    GroupNormLayer g => nn.GroupNorm(g.Groups, g.Channels),
                    DropoutLayer d => new SeededDropout(d.P, dropout),
                    UnflattenLayer u => nn.Unflatten(1, [u.Channels, u.Height, u.Width]),
                    FlattenLayer => nn.Flatten(),
                    SequenceLayer s => nn.Unflatten(1, [s.Steps, s.Features]),
                    GruLayer g => nn.GRU(g.In, g.Hidden, batchFirst: true),
                    LstmLayer l => nn.LSTM(l.In, l.Hidden, batchFirst: true),
                    LastStepLayer => new LastStep(),
                    _ => throw new ArgumentException($"No module for a {layer.GetType().Name}.", nameof(plan)),
                };
                modules.Add(module);
            }

            layers = new ModuleList<nn.Module>([.. modules]);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            // As Sequential does: each intermediate result is released once the next layer has it (autograd keeps
            // what the backward pass needs).
            Tensor? x = null;
            foreach (var layer in layers)
            {
                var next = Apply(layer, x ?? input);
                x?.Dispose();
                x = next;
            }

            return x ?? input.alias();
        }

        private static Tensor Apply(nn.Module layer, Tensor x)
        {
            switch (layer)
            {
                case GRU gru:
                {
                    // The output at every step; the final state is the same as its last step.
                    var (output, state) = gru.call(x);
                    state.Dispose();
                    return output;
                }

                case LSTM lstm:
                {
                    var (output, state, cell) = lstm.call(x);
                    state.Dispose();
                    cell.Dispose();
                    return output;
                }

                case nn.Module<Tensor, Tensor> module:
                    return module.call(x);

                default:
                    throw new InvalidOperationException($"No forward pass for a {layer.GetType().Name}.");
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                layers.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>The last step of each sequence: <c>[batch, steps, width]</c> to <c>[batch, width]</c>.</summary>
    private sealed class LastStep() : nn.Module<Tensor, Tensor>(nameof(LastStep))
    {
        public override Tensor forward(Tensor input) => input.select(1, -1);
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
