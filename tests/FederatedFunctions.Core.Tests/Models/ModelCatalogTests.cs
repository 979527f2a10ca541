using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tests.Specs;

namespace FederatedFunctions.Core.Tests.Models;

/// <summary>The model catalog: each kind's plan, its parameter count against hand-computed values, and its spec errors by path and rule.</summary>
public sealed class ModelCatalogTests
{
    // The digits images: 1 channel, 8×8.
    internal static readonly ModelSpec DigitsCnn = new()
    {
        Architecture = ModelArchitectures.Convolutional,
        Shape = [1, 8, 8],
        Layers =
        [
            new LayerSpec { Type = "conv2d", Filters = 8, Kernel = 3, Padding = 1 },
            new LayerSpec { Type = "relu" },
            new LayerSpec { Type = "maxpool2d", Kernel = 2 },
            new LayerSpec { Type = "groupnorm", Groups = 2 },
            new LayerSpec { Type = "conv2d", Filters = 16, Kernel = 3, Padding = 1 },
            new LayerSpec { Type = "relu" },
            new LayerSpec { Type = "maxpool2d", Kernel = 2 },
            new LayerSpec { Type = "dropout", P = 0.25 },
            new LayerSpec { Type = "linear", Units = 32 },
            new LayerSpec { Type = "relu" },
        ],
    };

    [Fact]
    public void Cnn_Plan_FollowsTheImageThroughEveryLayer_AndCountsItsParameters()
    {
        var plan = ModelCatalog.Plan(DigitsCnn, 64, 10);

        Assert.Equal(
            [
                new UnflattenLayer(1, 8, 8), new Conv2dLayer(1, 8, 3, 1, 1), new ReluLayer(), new MaxPool2dLayer(2, 2), new GroupNormLayer(2, 8),
                new Conv2dLayer(8, 16, 3, 1, 1), new ReluLayer(), new MaxPool2dLayer(2, 2), new DropoutLayer(0.25), new FlattenLayer(),
                new LinearLayer(16 * 2 * 2, 32), new ReluLayer(), new LinearLayer(32, 10),
            ],
            plan.Layers);

        // conv 1·8·9+8; groupnorm 2·8; conv 8·16·9+16; linear 64·32+32; linear 32·10+10.
        Assert.Equal(80 + 16 + 1168 + 2080 + 330, plan.Parameters);
        Assert.Equal(plan.Parameters, RunSpecValidator.CountParameters(DigitsCnn, 64, 10));
    }

    [Fact]
    public void Cnn_WithoutLinearLayers_IsFlattenedBeforeTheClassifier()
    {
        var model = DigitsCnn with { Layers = [new LayerSpec { Type = "conv2d", Filters = 4, Kernel = 3, Stride = 2 }] };

        var plan = ModelCatalog.Plan(model, 64, 3);

        // (8 − 3) / 2 + 1 = 3: a 4×3×3 image, flattened to 36.
        Assert.Equal([new UnflattenLayer(1, 8, 8), new Conv2dLayer(1, 4, 3, 2, 0), new FlattenLayer(), new LinearLayer(36, 3)], plan.Layers);
    }

    [Fact]
    public void LogregAndMlp_Plans_AreTheLinearStacksTheyWere()
    {
        Assert.Equal([new LinearLayer(16, 10)], ModelCatalog.Plan(new ModelSpec(), 16, 10).Layers);
        Assert.Equal(
            [new LinearLayer(16, 64), new ReluLayer(), new LinearLayer(64, 32), new ReluLayer(), new LinearLayer(32, 10)],
            ModelCatalog.Plan(new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Hidden = [64, 32] }, 16, 10).Layers);
        // The recurrent kinds name themselves (RecurrentModel), after the kinds ModelArchitectures lists.
        Assert.Equal(ModelArchitectures.All, ModelCatalog.Names);
    }

    public static TheoryData<LayerSpec, string, string> BadLayers() => new()
    {
        { new LayerSpec { Type = "conv3d" }, "$.model.layers[1].type", "enum" },
        { new LayerSpec { Type = "conv2d", Kernel = 3 }, "$.model.layers[1].filters", "required" },
        { new LayerSpec { Type = "conv2d", Filters = 4, Kernel = 20 }, "$.model.layers[1].kernel", "range" },
        { new LayerSpec { Type = "conv2d", Filters = 4, Kernel = 9 }, "$.model.layers[1].kernel", "shape" },
        { new LayerSpec { Type = "maxpool2d", Kernel = 9 }, "$.model.layers[1].kernel", "shape" },
        { new LayerSpec { Type = "groupnorm", Groups = 3 }, "$.model.layers[1].groups", "divisor" },
        { new LayerSpec { Type = "dropout", P = 1 }, "$.model.layers[1].p", "range" },
        { new LayerSpec { Type = "relu", Units = 3 }, "$.model.layers[1].units", "not-allowed" },
        { new LayerSpec { Type = "linear" }, "$.model.layers[1].units", "required" },
    };

    [Theory]
    [MemberData(nameof(BadLayers))]
    public void Cnn_ABadLayer_IsRefusedAtItsPathWithARule(LayerSpec bad, string path, string rule)
    {
        // Layer 0 is a valid 8×8 → 4 channels convolution; the bad layer follows it.
        var spec = TestSpecs.Valid() with
        {
            Model = new ModelSpec { Architecture = ModelArchitectures.Convolutional, Inputs = 64, Shape = [1, 8, 8], Layers = [new LayerSpec { Type = "conv2d", Filters = 4, Kernel = 1 }, bad] },
        };

        var errors = RunSpecValidator.Validate(spec);

        Assert.True(errors.Any(e => e.Path == path && e.Rule == rule), $"expected {path} {rule}; got " + string.Join("; ", errors.Select(e => $"{e.Path} {e.Rule}: {e.Message}")));
        Assert.Throws<ArgumentException>(() => ModelCatalog.Plan(spec.Model, 64, 10));
    }

    [Fact]
    public void Cnn_ShapeAndLayerOrder_AreChecked()
    {
        var cnn = TestSpecs.Valid() with { Model = DigitsCnn with { Inputs = 64 } };
        Assert.Empty(RunSpecValidator.Validate(cnn));

        Assert.Contains(RunSpecValidator.Validate(cnn with { Model = cnn.Model with { Shape = [1, 8, 9] } }), e => e.Path == "$.model.shape" && e.Rule == "mismatch");
        Assert.Contains(RunSpecValidator.Validate(cnn with { Model = cnn.Model with { Shape = null } }), e => e.Path == "$.model.shape" && e.Rule == "required");
        Assert.Contains(RunSpecValidator.Validate(cnn with { Model = cnn.Model with { Layers = [] } }), e => e.Path == "$.model.layers" && e.Rule == "count");
        Assert.Contains(RunSpecValidator.Validate(cnn with { Model = cnn.Model with { Hidden = [8] } }), e => e.Path == "$.model.hidden" && e.Rule == "not-allowed");
        var afterLinear = cnn.Model with { Layers = [new LayerSpec { Type = "linear", Units = 8 }, new LayerSpec { Type = "conv2d", Filters = 2, Kernel = 1 }] };
        Assert.Contains(RunSpecValidator.Validate(cnn with { Model = afterLinear }), e => e.Path == "$.model.layers[1].type" && e.Rule == "order");

        // The image fields belong to a cnn only.
        Assert.Contains(RunSpecValidator.Validate(TestSpecs.Valid() with { Model = TestSpecs.Valid().Model with { Shape = [1, 4, 4] } }), e => e.Path == "$.model.shape" && e.Rule == "not-allowed");
    }

    [Fact]
    public void Cnn_ImagesOverTheActivationLimit_AreRefusedBySize_NeverByAnOverflow()
    {
        // The largest shape the fields allow: 1,024 × 4,096 × 4,096 values, which an int cannot even count.
        var huge = TestSpecs.Valid() with { Model = DigitsCnn with { Inputs = null, Shape = [1024, 4096, 4096] }, Data = TestSpecs.Valid().Data with { Features = null } };
        Assert.Contains(RunSpecValidator.Validate(huge with { Model = huge.Model with { Inputs = 1 } }), e => e.Path == "$.model.shape" && e.Rule == "mismatch");

        // A small input whose convolution output is over the limit: 1,024 filters on a 1×300×300 image.
        var wide = TestSpecs.Valid() with
        {
            Model = new ModelSpec { Architecture = ModelArchitectures.Convolutional, Inputs = 90_000, Shape = [1, 300, 300], Layers = [new LayerSpec { Type = "conv2d", Filters = 1024, Kernel = 3, Padding = 1 }] },
        };
        Assert.Contains(RunSpecValidator.Validate(wide), e => e.Path == "$.model.layers[0].filters" && e.Rule == "size");
        Assert.Empty(RunSpecValidator.Validate(wide, new SpecLimits { MaxActivations = 100_000_000, MaxParameters = long.MaxValue }));
        Assert.Contains(RunSpecValidator.Validate(wide with { Model = wide.Model with { Inputs = 90_000 } }, new SpecLimits { MaxActivations = 80_000 }), e => e.Path == "$.model.shape" && e.Rule == "size");
    }

    [Fact]
    public void Cnn_TooManyParameters_IsRefusedByTheHostsLimit()
    {
        var wide = TestSpecs.Valid() with { Model = DigitsCnn with { Inputs = 64 } };
        var errors = RunSpecValidator.Validate(wide, new SpecLimits { MaxParameters = 3000 });
        Assert.Contains(errors, e => e.Path == "$.model" && e.Rule == "model-size" && e.Message.Contains("3674", StringComparison.Ordinal));
    }

    [Fact]
    public void Cnn_ParsesFromJson_WithEveryLayerField()
    {
        var json = TestSpecs.DemoJson.Replace(
            "\"model\": { \"architecture\": \"mlp\", \"inputs\": 16, \"hidden\": [64] }",
            """
            "model": { "architecture": "cnn", "inputs": 16, "shape": [1, 4, 4],
              "layers": [ { "type": "conv2d", "filters": 4, "kernel": 3, "stride": 1, "padding": 1 }, { "type": "groupnorm", "groups": 2 },
                          { "type": "relu" }, { "type": "maxpool2d", "kernel": 2, "stride": 2 }, { "type": "dropout", "p": 0.1 }, { "type": "linear", "units": 8 } ] }
            """,
            StringComparison.Ordinal);

        var result = RunSpecParser.Parse(json);

        Assert.True(result.IsValid, string.Join("; ", result.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        Assert.Equal(6, result.Spec!.Model.Layers!.Count);
        Assert.Equal(0.1, result.Spec.Model.Layers[4].P);
    }
}
