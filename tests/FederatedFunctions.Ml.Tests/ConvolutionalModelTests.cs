using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using TorchSharp;

namespace FederatedFunctions.Ml.Tests;

/// <summary>The <c>cnn</c> kind as TorchSharp builds it: PyTorch's parameter names and shapes, its forward pass, its seeded initialization, and reproducible dropout.</summary>
public sealed class ConvolutionalModelTests
{
    // 1×8×8 images: conv(4, 3×3, pad 1), groupnorm(2), relu, pool 2, dropout 0.5; then flatten and linear to the classes.
    internal static readonly ModelSpec Cnn = new()
    {
        Architecture = ModelArchitectures.Convolutional,
        Shape = [1, 8, 8],
        Layers =
        [
            new LayerSpec { Type = "conv2d", Filters = 4, Kernel = 3, Padding = 1 },
            new LayerSpec { Type = "groupnorm", Groups = 2 },
            new LayerSpec { Type = "relu" },
            new LayerSpec { Type = "maxpool2d", Kernel = 2 },
            new LayerSpec { Type = "dropout", P = 0.5 },
        ],
    };

    [Fact]
    public void Create_HasThePlansLayersUnderPyTorchsNames_AndItsParameterCount()
    {
        using var module = ModelFactory.Create(Cnn, 64, 10);

        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        // layers.0 is the unflatten, layers.6 the flatten before the classifier (4 channels × 4 × 4 = 64 features).
        Assert.Equal(["layers.1.bias", "layers.1.weight", "layers.2.bias", "layers.2.weight", "layers.7.bias", "layers.7.weight"], parameters.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([4L, 1, 3, 3], parameters["layers.1.weight"]);
        Assert.Equal([4L], parameters["layers.2.weight"]);
        Assert.Equal([10L, 64], parameters["layers.7.weight"]);
        Assert.Equal(RunSpecValidator.CountParameters(Cnn, 64, 10), parameters.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void Forward_RowsOfPixels_GiveOneLogitPerClass()
    {
        using var module = ModelFactory.Create(Cnn, 64, 10);
        module.eval();
        using var input = torch.rand(5, 64);
        using var output = module.forward(input);

        Assert.Equal([5L, 10], output.shape);
    }

    [Fact]
    public void InitialState_IsSeeded_AndANormalizationStartsAsTheIdentity()
    {
        var a = ModelFactory.InitialState(Cnn, 64, 10, seed: 5);
        var b = ModelFactory.InitialState(Cnn, 64, 10, seed: 5);
        var c = ModelFactory.InitialState(Cnn, 64, 10, seed: 6);

        Assert.Equal(a.Select(t => Convert.ToHexString(t.Data.Span)), b.Select(t => Convert.ToHexString(t.Data.Span)));
        Assert.NotEqual(a.Single(t => t.Name == "layers.1.weight").Data.ToArray(), c.Single(t => t.Name == "layers.1.weight").Data.ToArray());
        Assert.All(Tensors.Floats(a.Single(t => t.Name == "layers.2.weight")), v => Assert.Equal(1f, v));
        Assert.All(Tensors.Floats(a.Single(t => t.Name == "layers.2.bias")), v => Assert.Equal(0f, v));

        // Convolution weights are within ±1/√fan_in, fan_in = 1 channel × 3 × 3; the classifier's within ±1/√64.
        Assert.All(Tensors.Floats(a.Single(t => t.Name == "layers.1.weight")), v => Assert.InRange(v, -1 / 3.0, 1 / 3.0));
        Assert.All(Tensors.Floats(a.Single(t => t.Name == "layers.7.weight")), v => Assert.InRange(v, -0.125, 0.125));
    }

    [Fact]
    public void Train_WithDropout_IsReproducibleFromTheSeed_AndDropoutActsOnlyWhileTraining()
    {
        var random = new Random(1);
        var rows = 96;
        var data = new TabularData(
            Enumerable.Range(0, rows * 64).Select(_ => (float)random.NextDouble()).ToArray(),
            Enumerable.Range(0, rows).Select(i => (long)(i % 10)).ToArray(),
            rows,
            64,
            Enumerable.Range(0, 64).Select(i => "p" + i).ToArray());
        var global = ModelFactory.InitialState(Cnn, 64, 10, seed: 3);
        var training = new TrainingSpec { LocalEpochs = 2, BatchSize = 16, LearningRate = 0.05, Seed = 9 };

        var first = LocalTrainer.Train(Cnn, training, 10, global, data, round: 1, "silo-1");
        var second = LocalTrainer.Train(Cnn, training, 10, global, data, round: 1, "silo-1");
        var noDropout = LocalTrainer.Train(Cnn with { Layers = [.. Cnn.Layers!.Select(l => l.Type == "dropout" ? l with { P = 0 } : l)] }, training, 10, global, data, round: 1, "silo-1");

        Assert.Equal(first.State.Select(t => Convert.ToHexString(t.Data.Span)), second.State.Select(t => Convert.ToHexString(t.Data.Span)));
        Assert.NotEqual(first.State.Select(t => Convert.ToHexString(t.Data.Span)), noDropout.State.Select(t => Convert.ToHexString(t.Data.Span)));

        // Evaluation runs without dropout: the same state scores the same twice.
        var score = LocalTrainer.Evaluate(Cnn, 10, first.State, data);
        Assert.Equal(score, LocalTrainer.Evaluate(Cnn, 10, first.State, data));
    }
}
