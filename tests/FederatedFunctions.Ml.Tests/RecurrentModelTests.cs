using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using TorchSharp;
using Xunit.Abstractions;

namespace FederatedFunctions.Ml.Tests;

/// <summary>
/// The <c>gru</c> and <c>lstm</c> kinds as TorchSharp builds them: PyTorch's parameter names and shapes, the plan's
/// parameter count, a forward pass that reads each row as a window step by step, seeded initialization, and learning
/// on generated sequences that a linear model cannot classify.
/// </summary>
public sealed class RecurrentModelTests(ITestOutputHelper output)
{
    // Windows of 20 steps × 2 values; two recurrent layers of 16 and 8; 3 classes.
    internal static readonly ModelSpec Gru = new() { Architecture = RecurrentModel.GatedRecurrentUnit, Shape = [20, 2], Hidden = [16, 8] };

    [Theory]
    [InlineData(RecurrentModel.GatedRecurrentUnit, 3)]
    [InlineData(RecurrentModel.LongShortTermMemory, 4)]
    public void Create_HasPyTorchsRecurrentNames_AndThePlansParameterCount(string architecture, int gates)
    {
        var model = Gru with { Architecture = architecture };
        using var module = ModelFactory.Create(model, 40, 3);

        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        // layers.0 unflattens to [20, 2], layers.1 and layers.2 are the recurrent layers, layers.3 takes the last step.
        Assert.Equal(
            [
                "layers.1.bias_hh_l0", "layers.1.bias_ih_l0", "layers.1.weight_hh_l0", "layers.1.weight_ih_l0",
                "layers.2.bias_hh_l0", "layers.2.bias_ih_l0", "layers.2.weight_hh_l0", "layers.2.weight_ih_l0",
                "layers.4.bias", "layers.4.weight",
            ],
            parameters.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([gates * 16L, 2], parameters["layers.1.weight_ih_l0"]);
        Assert.Equal([gates * 16L, 16], parameters["layers.1.weight_hh_l0"]);
        Assert.Equal([gates * 16L], parameters["layers.1.bias_ih_l0"]);
        Assert.Equal([gates * 8L, 16], parameters["layers.2.weight_ih_l0"]);
        Assert.Equal([gates * 8L, 8], parameters["layers.2.weight_hh_l0"]);
        Assert.Equal([3L, 8], parameters["layers.4.weight"]);
        Assert.Equal(RunSpecValidator.CountParameters(model, 40, 3), parameters.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));

        // The exported state has the same names: what safetensors files and the aggregation key on.
        Assert.Equal(parameters.Keys.Order(StringComparer.Ordinal), ModelFactory.InitialState(model, 40, 3, seed: 1).Select(t => t.Name));
    }

    [Theory]
    [InlineData(RecurrentModel.GatedRecurrentUnit)]
    [InlineData(RecurrentModel.LongShortTermMemory)]
    public void Forward_RowsOfWindows_GiveOneLogitPerClass(string architecture)
    {
        using var module = ModelFactory.Create(Gru with { Architecture = architecture }, 40, 3);
        using var input = torch.rand(5, 40);
        using var logits = module.forward(input);

        Assert.Equal([5L, 3], logits.shape);
    }

    [Fact]
    public void Forward_ReadsEachRowStepByStep_AndClassifiesTheLastStep()
    {
        // One GRU layer, checked against TorchSharp's own nn.GRU and Linear with the same weights, on the rows viewed as
        // [batch, 20 steps, 2 values]: so the row layout is step-major and the head reads the last step's output.
        var model = Gru with { Hidden = [16] };
        var state = ModelFactory.InitialState(model, 40, 3, seed: 4);
        using var module = ModelFactory.Create(model, 40, 3);
        StateDicts.Import(module, state);
        using var gru = torch.nn.GRU(2, 16, batchFirst: true);
        using var head = torch.nn.Linear(16, 3);
        using var scope = torch.NewDisposeScope();
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in gru.named_parameters())
            {
                parameter.copy_(StateDicts.ToTensor(state.Single(t => t.Name == "layers.1." + name)));
            }

            foreach (var (name, parameter) in head.named_parameters())
            {
                parameter.copy_(StateDicts.ToTensor(state.Single(t => t.Name == "layers.3." + name)));
            }

            var rows = torch.randn(6, 40, generator: new torch.Generator(8));
            var (outputs, _) = gru.call(rows.view(6, 20, 2));
            var expected = head.call(outputs[.., -1, ..]);

            var actual = module.forward(rows);

            Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-6), $"max difference {(actual - expected).abs().max().item<float>()}");
            // The order of the steps matters: the reversed windows score otherwise.
            Assert.False(module.forward(rows.view(6, 20, 2).flip(1).reshape(6, 40)).allclose(actual, rtol: 1e-3, atol: 1e-4));
        }
    }

    [Fact]
    public void InitialState_IsSeeded_AndDrawsEveryRecurrentParameterWithinOneOverRootHidden()
    {
        var a = ModelFactory.InitialState(Gru, 40, 3, seed: 5);
        var b = ModelFactory.InitialState(Gru, 40, 3, seed: 5);
        var c = ModelFactory.InitialState(Gru, 40, 3, seed: 6);

        Assert.Equal(a.Select(t => Convert.ToHexString(t.Data.Span)), b.Select(t => Convert.ToHexString(t.Data.Span)));
        Assert.NotEqual(Tensors.Concat(a), Tensors.Concat(c));

        // As PyTorch's nn.GRU: weights and biases alike uniform within ±1/√hidden (16 for layers.1, 8 for layers.2),
        // and spread over it, not a normalization's constant; the classifier within ±1/√8.
        foreach (var (layer, hidden) in new[] { ("layers.1", 16), ("layers.2", 8) })
        {
            foreach (var leaf in new[] { "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0" })
            {
                var values = Tensors.Floats(a.Find($"{layer}.{leaf}"));
                var bound = 1 / Math.Sqrt(hidden);
                Assert.All(values, v => Assert.InRange(v, -bound, bound));
                Assert.True(values.Max() - values.Min() > bound, $"{layer}.{leaf} spans {values.Min()} to {values.Max()}");
            }
        }

        Assert.All(Tensors.Floats(a.Find("layers.4.weight")), v => Assert.InRange(v, -1 / Math.Sqrt(8), 1 / Math.Sqrt(8)));
    }

    [Fact]
    public void Train_IsReproducibleFromTheSeed_AndAFrozenRecurrentLayerStaysBitForBit()
    {
        var data = SineWindows.Generate(96, seed: 2);
        var global = ModelFactory.InitialState(Gru, 40, 3, seed: 3);
        var training = new TrainingSpec { LocalEpochs = 2, BatchSize = 16, LearningRate = 0.01, Optimizer = Optimizers.Adam, Seed = 9 };

        var first = LocalTrainer.Train(Gru, training, 3, global, data, round: 1, "silo-1");
        var second = LocalTrainer.Train(Gru, training, 3, global, data, round: 1, "silo-1");
        var frozen = LocalTrainer.Train(Gru, training with { Freeze = ["layers.1"] }, 3, global, data, round: 1, "silo-1");

        Assert.Equal(first.State.Select(t => Convert.ToHexString(t.Data.Span)), second.State.Select(t => Convert.ToHexString(t.Data.Span)));
        Assert.All(first.State, t => Assert.NotEqual(global.Find(t.Name).Data.ToArray(), t.Data.ToArray()));
        Assert.All(frozen.State, t => Assert.Equal(t.Name.StartsWith("layers.1.", StringComparison.Ordinal), global.Find(t.Name).Data.Span.SequenceEqual(t.Data.Span)));
    }

    [Fact]
    public void Gru_OnGeneratedSineWindows_LearnsTheFrequencyThatALinearModelCannot()
    {
        var train = SineWindows.Generate(800, seed: 1);
        var test = SineWindows.Generate(600, seed: 2);
        var gru = Gru with { Hidden = [16] };
        var logreg = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression };
        var training = new TrainingSpec { LocalEpochs = 1, BatchSize = 32, LearningRate = 0.01, Optimizer = Optimizers.Adam, Seed = 11 };

        var watch = Stopwatch.StartNew();
        var gruAccuracy = TrainAndScore(gru, training, train, test, epochs: 8);
        var gruTime = watch.Elapsed;
        var linearAccuracy = TrainAndScore(logreg, training, train, test, epochs: 8);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"3 frequencies, {test.Rows} test windows of {SineWindows.Steps} steps: gru [16] {gruAccuracy:P1} in {gruTime.TotalSeconds:0.0} s; logreg {linearAccuracy:P1}; chance 33.3%"));

        Assert.True(gruAccuracy >= 0.9, $"the gru reached {gruAccuracy:P1}");
        Assert.True(linearAccuracy <= 0.5, $"the linear model reached {linearAccuracy:P1}: the task does not need a sequence model");
    }

    private static double TrainAndScore(ModelSpec model, TrainingSpec training, TabularData train, TabularData test, int epochs)
    {
        var state = ModelFactory.InitialState(model, train.Columns, 3, training.Seed);
        for (var epoch = 1; epoch <= epochs; epoch++)
        {
            state = LocalTrainer.Train(model, training, 3, state, train, epoch, "central").State;
        }

        var score = LocalTrainer.Evaluate(model, 3, state, test);
        return (double)score.Correct / score.Examples;
    }
}
