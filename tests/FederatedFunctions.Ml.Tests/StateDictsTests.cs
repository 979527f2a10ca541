using FederatedFunctions.Core.Tensors;
using TorchSharp;

namespace FederatedFunctions.Ml.Tests;

public sealed class StateDictsTests
{
    [Fact]
    public void ExportImport_RoundTrip_SameBytes()
    {
        var state = ModelFactory.InitialState(ModelFactoryTests.Mlp, 6, 3, seed: 9);
        using var module = ModelFactory.Create(ModelFactoryTests.Mlp, 6, 3);

        StateDicts.Import(module, state);
        var exported = StateDicts.Export(module);

        Assert.Equal(state.Select(t => t.Name), exported.Select(t => t.Name));
        Assert.Equal(state.Select(t => t.Shape), exported.Select(t => t.Shape));
        Assert.Equal(Tensors.Concat(state), Tensors.Concat(exported));
    }

    [Fact]
    public void Import_ReversedOrder_Accepted()
    {
        var state = ModelFactory.InitialState(ModelFactoryTests.LogReg, 6, 3, seed: 9);
        using var module = ModelFactory.Create(ModelFactoryTests.LogReg, 6, 3);

        StateDicts.Import(module, state.Reverse().ToArray());

        Assert.Equal(Tensors.Concat(state), Tensors.Concat(StateDicts.Export(module)));
    }

    [Fact]
    public void ToTensorFromTensor_RoundTrip_KeepsValuesShapeAndDType()
    {
        var original = Tensors.F64("d", [1.5, -2.25, 3, 4, 5, 6], 2, 3);

        using var tensor = StateDicts.ToTensor(original);
        var back = StateDicts.FromTensor("d", tensor);

        Assert.Equal(torch.ScalarType.Float64, tensor.dtype);
        Assert.Equal(-2.25, tensor[0, 1].item<double>());
        Assert.Equal(original.Shape, back.Shape);
        Assert.Equal(TensorDType.F64, back.DType);
        Assert.Equal(original.Data.ToArray(), back.Data.ToArray());
    }

    [Fact]
    public void ToTensor_MutatingTensor_DoesNotChangeSourceBytes()
    {
        var original = Tensors.F32("w", [1f, 2f], 2);

        using (var tensor = StateDicts.ToTensor(original))
        {
            tensor.add_(10);
        }

        Assert.Equal([1f, 2f], Tensors.Floats(original));
    }

    [Fact]
    public void FromTensor_NonContiguousView_CopiesLogicalOrder()
    {
        using var matrix = torch.arange(6, torch.ScalarType.Float32).reshape(2, 3);
        using var transposed = matrix.t();

        var exported = StateDicts.FromTensor("t", transposed);

        Assert.Equal([3L, 2], exported.Shape);
        Assert.Equal([0f, 3f, 1f, 4f, 2f, 5f], Tensors.Floats(exported));
    }

    [Fact]
    public void Import_MissingKey_ThrowsNamingKey()
    {
        var state = ModelFactory.InitialState(ModelFactoryTests.LogReg, 4, 2, seed: 1).Where(t => t.Name != "layers.0.bias").ToArray();
        using var module = ModelFactory.Create(ModelFactoryTests.LogReg, 4, 2);

        var ex = Assert.Throws<ModelStateException>(() => StateDicts.Import(module, state));

        Assert.Equal("layers.0.bias", ex.Key);
        Assert.Contains("'layers.0.bias'", ex.Message);
    }

    [Fact]
    public void Import_ExtraKey_ThrowsNamingKey()
    {
        IReadOnlyList<NamedTensor> state = [.. ModelFactory.InitialState(ModelFactoryTests.LogReg, 4, 2, seed: 1), Tensors.F32("extra", [1f], 1)];
        using var module = ModelFactory.Create(ModelFactoryTests.LogReg, 4, 2);

        var ex = Assert.Throws<ModelStateException>(() => StateDicts.Import(module, state));

        Assert.Equal("extra", ex.Key);
    }

    [Fact]
    public void Import_WrongShape_ThrowsNamingKeyAndLeavesModuleUnchanged()
    {
        using var module = ModelFactory.Create(ModelFactoryTests.LogReg, 4, 2);
        var before = Tensors.Concat(StateDicts.Export(module));
        var state = ModelFactory.InitialState(ModelFactoryTests.LogReg, 4, 2, seed: 1)
            .Select(t => t.Name == "layers.0.weight" ? Tensors.F32(t.Name, new float[8], 4, 2) : t)
            .ToArray();

        var ex = Assert.Throws<ModelStateException>(() => StateDicts.Import(module, state));

        Assert.Equal("layers.0.weight", ex.Key);
        Assert.Contains("shape", ex.Message);
        Assert.Equal(before, Tensors.Concat(StateDicts.Export(module)));
    }

    [Fact]
    public void Import_WrongDType_ThrowsNamingKey()
    {
        using var module = ModelFactory.Create(ModelFactoryTests.LogReg, 2, 2);
        IReadOnlyList<NamedTensor> state =
        [
            Tensors.F64("layers.0.weight", [1, 2, 3, 4], 2, 2),
            Tensors.F32("layers.0.bias", [0f, 0f], 2),
        ];

        var ex = Assert.Throws<ModelStateException>(() => StateDicts.Import(module, state));

        Assert.Equal("layers.0.weight", ex.Key);
        Assert.Contains("F64", ex.Message);
    }
}
