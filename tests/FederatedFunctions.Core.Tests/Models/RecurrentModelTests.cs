using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tests.Specs;

namespace FederatedFunctions.Core.Tests.Models;

/// <summary>The <c>gru</c> and <c>lstm</c> kinds: their plans, their parameter counts against hand-computed values, and their spec errors by path and rule.</summary>
public sealed class RecurrentModelTests
{
    // Windows of 24 steps × 2 values (48 inputs), recurrent layers of 16 and 8.
    private static readonly ModelSpec Gru = new() { Architecture = RecurrentModel.GatedRecurrentUnit, Inputs = 48, Shape = [24, 2], Hidden = [16, 8] };

    private static RunSpec Spec(ModelSpec model) => TestSpecs.Valid() with { Model = model, Data = TestSpecs.Valid().Data with { Classes = 3 } };

    [Fact]
    public void Gru_Plan_UnflattensStacksTheLayersTakesTheLastStep_AndCountsItsParameters()
    {
        var plan = ModelCatalog.Plan(Gru, 48, 3);

        Assert.Equal([new SequenceLayer(24, 2), new GruLayer(2, 16), new GruLayer(16, 8), new LastStepLayer(), new LinearLayer(8, 3)], plan.Layers);

        // Per GRU layer: weight_ih 3h·in, weight_hh 3h·h, bias_ih and bias_hh 3h each.
        // 48·2 + 48·16 + 2·48 = 960; 24·16 + 24·8 + 2·24 = 624; the classifier 8·3 + 3 = 27.
        Assert.Equal(960 + 624 + 27, plan.Parameters);
        Assert.Equal(plan.Parameters, RunSpecValidator.CountParameters(Gru, 48, 3));
        Assert.Equal(["layers.1", "layers.2", "layers.4"], FrozenLayers.Trainable(plan));
    }

    [Fact]
    public void Lstm_Plan_HasFourGatesPerLayer()
    {
        var lstm = Gru with { Architecture = RecurrentModel.LongShortTermMemory };

        var plan = ModelCatalog.Plan(lstm, 48, 3);

        Assert.Equal([new SequenceLayer(24, 2), new LstmLayer(2, 16), new LstmLayer(16, 8), new LastStepLayer(), new LinearLayer(8, 3)], plan.Layers);
        // 64·2 + 64·16 + 2·64 = 1,280; 32·16 + 32·8 + 2·32 = 832; 27.
        Assert.Equal(1280 + 832 + 27, plan.Parameters);
    }

    [Fact]
    public void RecurrentModel_OtherThanGruOrLstm_IsRefused()
    {
        Assert.Equal(RecurrentModel.GatedRecurrentUnit, ModelCatalog.Find("gru")?.Name);
        Assert.Equal(RecurrentModel.LongShortTermMemory, ModelCatalog.Find("lstm")?.Name);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecurrentModel("rnn"));
    }

    [Theory]
    [InlineData(RecurrentModel.GatedRecurrentUnit)]
    [InlineData(RecurrentModel.LongShortTermMemory)]
    public void Validate_AGoodRecurrentModel_HasNoErrors(string architecture)
    {
        Assert.Empty(RunSpecValidator.Validate(Spec(Gru with { Architecture = architecture })));
    }

    public static TheoryData<ModelSpec, string, string> BadModels() => new()
    {
        { Gru with { Hidden = [] }, "$.model.hidden", "count" },
        { Gru with { Hidden = [16, 0] }, "$.model.hidden[1]", "range" },
        { Gru with { Hidden = [RecurrentModel.MaxHiddenSize + 1] }, "$.model.hidden[0]", "range" },
        { Gru with { Shape = null }, "$.model.shape", "required" },
        { Gru with { Shape = [48] }, "$.model.shape", "required" },
        { Gru with { Shape = [1, 24, 2] }, "$.model.shape", "required" },
        { Gru with { Shape = [0, 2] }, "$.model.shape", "range" },
        { Gru with { Shape = [48, -1] }, "$.model.shape", "range" },
        { Gru with { Shape = [24, 3] }, "$.model.shape", "mismatch" },
        { Gru with { Layers = [new LayerSpec { Type = "linear", Units = 8 }] }, "$.model.layers", "not-allowed" },
    };

    [Theory]
    [MemberData(nameof(BadModels))]
    public void Validate_ABadRecurrentModel_IsRefusedAtItsPathWithARule(ModelSpec model, string path, string rule)
    {
        var errors = RunSpecValidator.Validate(Spec(model));

        Assert.True(errors.Any(e => e.Path == path && e.Rule == rule), $"expected {path} {rule}; got " + string.Join("; ", errors.Select(e => $"{e.Path} {e.Rule}: {e.Message}")));
        Assert.Throws<ArgumentException>(() => ModelCatalog.Plan(model, 48, 3));
    }

    [Fact]
    public void Validate_TooManyLayersALongWindowTimesAWideLayerOrAHugeModel_AreRefusedByTheHostsLimits()
    {
        // Nine layers are over MaxHiddenLayers (8), a host limit, not a structural problem: the catalog still plans them.
        var deep = Spec(Gru with { Hidden = [16, 16, 16, 16, 16, 16, 16, 16, 16] });
        Assert.Equal(["$.model.hidden count"], RunSpecValidator.Validate(deep).Select(e => $"{e.Path} {e.Rule}"));
        Assert.Empty(RunSpecValidator.Validate(deep, new SpecLimits { MaxHiddenLayers = 9 }));
        Assert.Equal(1 + 9 + 2, ModelCatalog.Plan(deep.Model, 48, 3).Layers.Count);

        // 100,000 steps of 1 value: each layer's output holds 100,000 × hidden values per example.
        var longWindow = Spec(Gru with { Inputs = 100_000, Shape = [100_000, 1], Hidden = [8, 32] });
        var errors = RunSpecValidator.Validate(longWindow, new SpecLimits { MaxActivations = 1_000_000 });
        Assert.Equal(["$.model.hidden[1] size"], errors.Select(e => $"{e.Path} {e.Rule}"));
        Assert.Empty(RunSpecValidator.Validate(longWindow));

        // Two layers of 4,096: 3·4096·(2 + 4096 + 2) + 3·4096·(4096 + 4096 + 2) ≈ 151 million parameters.
        var wide = Spec(Gru with { Hidden = [4096, 4096] });
        Assert.Contains(RunSpecValidator.Validate(wide), e => e.Path == "$.model" && e.Rule == "model-size");
        Assert.Equal((3L * 4096 * (2 + 4096 + 2)) + (3L * 4096 * (4096 + 4096 + 2)) + (4096 * 3) + 3, RunSpecValidator.CountParameters(wide.Model, 48, 3));
    }

    [Fact]
    public void Validate_RowKindsStillRefuseAShape_AndACnnAHiddenList()
    {
        Assert.Contains(RunSpecValidator.Validate(TestSpecs.Valid() with { Model = TestSpecs.Valid().Model with { Shape = [8, 2] } }), e => e.Path == "$.model.shape" && e.Rule == "not-allowed");
        var cnn = ModelCatalogTests.DigitsCnn with { Inputs = 64, Hidden = [8] };
        Assert.Contains(RunSpecValidator.Validate(TestSpecs.Valid() with { Model = cnn }), e => e.Path == "$.model.hidden" && e.Rule == "not-allowed");
    }

    [Fact]
    public void Validate_FreezingARecurrentLayer_NamesItByItsPlanIndex()
    {
        var spec = Spec(Gru);

        Assert.Empty(RunSpecValidator.Validate(spec with { Training = spec.Training with { Freeze = ["layers.1"] } }));
        Assert.Contains(RunSpecValidator.Validate(spec with { Training = spec.Training with { Freeze = ["layers.3"] } }), e => e.Path == "$.training.freeze[0]" && e.Rule == "not-found");
    }

    [Fact]
    public void Gru_ParsesFromJson()
    {
        var json = TestSpecs.DemoJson.Replace(
            "\"model\": { \"architecture\": \"mlp\", \"inputs\": 16, \"hidden\": [64] }",
            "\"model\": { \"architecture\": \"gru\", \"inputs\": 16, \"shape\": [8, 2], \"hidden\": [32] }",
            StringComparison.Ordinal);

        var result = RunSpecParser.Parse(json);

        Assert.True(result.IsValid, string.Join("; ", result.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        Assert.Equal([8, 2], result.Spec!.Model.Shape);
        Assert.Equal(
            [new SequenceLayer(8, 2), new GruLayer(2, 32), new LastStepLayer(), new LinearLayer(32, 10)],
            ModelCatalog.Plan(result.Spec.Model, 16, 10).Layers);
    }
}
