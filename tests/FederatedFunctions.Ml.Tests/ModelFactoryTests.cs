using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using TorchSharp;

namespace FederatedFunctions.Ml.Tests;

public sealed class ModelFactoryTests
{
    internal static readonly ModelSpec LogReg = new() { Architecture = "logreg" };
    internal static readonly ModelSpec Mlp = new() { Architecture = "mlp", Hidden = [8, 4] };

    [Fact]
    public void Create_LogReg_HasOneLinearLayerNamedLayers0()
    {
        using var module = ModelFactory.Create(LogReg, 5, 3);

        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(["layers.0.bias", "layers.0.weight"], parameters.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([3L, 5], parameters["layers.0.weight"]);
        Assert.Equal([3L], parameters["layers.0.bias"]);
    }

    [Fact]
    public void Create_MlpWithTwoHiddenLayers_LinearLayersAt0_2_4WithShapes()
    {
        using var module = ModelFactory.Create(Mlp, 5, 3);

        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

        Assert.Equal(
            ["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight", "layers.4.bias", "layers.4.weight"],
            parameters.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([8L, 5], parameters["layers.0.weight"]);
        Assert.Equal([4L, 8], parameters["layers.2.weight"]);
        Assert.Equal([3L, 4], parameters["layers.4.weight"]);
        Assert.Equal([3L], parameters["layers.4.bias"]);
    }

    [Fact]
    public void Create_Mlp_ForwardGivesOneLogitPerClassAndReluBetweenLayers()
    {
        using var module = ModelFactory.Create(Mlp, 5, 3);
        using var input = torch.ones(7, 5);
        using var output = module.forward(input);

        Assert.Equal([7L, 3], output.shape);
        Assert.Equal(["layers", "layers.0", "layers.1", "layers.2", "layers.3", "layers.4"], module.named_modules().Select(m => m.name).Order(StringComparer.Ordinal));
        Assert.Contains("ReLU", module.named_modules().Single(m => m.name == "layers.1").module.GetType().Name);
    }

    [Theory]
    [InlineData("transformer", new int[0])]
    [InlineData("cnn", new int[0])]
    [InlineData("logreg", new[] { 4 })]
    [InlineData("mlp", new int[0])]
    [InlineData("mlp", new[] { 0 })]
    public void Create_InvalidSpec_ThrowsArgumentException(string architecture, int[] hidden)
    {
        Assert.Throws<ArgumentException>(() => ModelFactory.Create(new ModelSpec { Architecture = architecture, Hidden = hidden }, 4, 2));
    }

    [Fact]
    public void Create_DeclaredInputsDiffer_ThrowsArgumentException()
    {
        Assert.Throws<ArgumentException>(() => ModelFactory.Create(LogReg with { Inputs = 6 }, 5, 2));
    }

    [Fact]
    public void InitialState_SameSeed_BitIdenticalBytes()
    {
        var a = ModelFactory.InitialState(Mlp, 16, 10, seed: 42);
        var b = ModelFactory.InitialState(Mlp, 16, 10, seed: 42);

        Assert.Equal(a.Select(t => t.Name), b.Select(t => t.Name));
        Assert.Equal(Tensors.Concat(a), Tensors.Concat(b));
    }

    [Fact]
    public void InitialState_DifferentSeed_DifferentBytes()
    {
        var a = ModelFactory.InitialState(Mlp, 16, 10, seed: 42);
        var b = ModelFactory.InitialState(Mlp, 16, 10, seed: 43);

        Assert.NotEqual(Tensors.Concat(a), Tensors.Concat(b));
    }

    [Fact]
    public void InitialState_Mlp_SortedF32WithinPyTorchDefaultBounds()
    {
        var state = ModelFactory.InitialState(Mlp, 16, 10, seed: 1);

        Assert.Equal(state.Select(t => t.Name).Order(StringComparer.Ordinal), state.Select(t => t.Name));
        Assert.All(state, t => Assert.Equal(TensorDType.F32, t.DType));
        var first = Tensors.Floats(state.Find("layers.0.weight"));
        var bound = 1 / Math.Sqrt(16);
        Assert.All(first, v => Assert.InRange(v, -bound, bound));
        Assert.True(first.Max() - first.Min() > bound, "values should spread over the interval");
        var last = Tensors.Floats(state.Find("layers.4.bias"));
        Assert.All(last, v => Assert.InRange(v, -0.5, 0.5)); // fan-in 4
    }
}
