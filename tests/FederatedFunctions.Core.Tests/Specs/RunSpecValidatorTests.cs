using FederatedFunctions.Core.Specs;
using static FederatedFunctions.Core.Tests.Specs.TestSpecs;

namespace FederatedFunctions.Core.Tests.Specs;

public sealed class RunSpecValidatorTests
{
    [Fact]
    public void Validate_BaselineSpec_ReturnsNoErrors()
    {
        Assert.Empty(RunSpecValidator.Validate(Valid()));
    }

    [Fact]
    public void Validate_DefaultSpecWithInputsAndSilo_ReturnsNoErrors()
    {
        // The record defaults, plus the two things that have no default, must form a valid spec.
        var spec = new RunSpec { Model = new ModelSpec { Inputs = 4 }, Silos = ["s"] };

        Assert.Empty(RunSpecValidator.Validate(spec));
    }

    // ---- data.standardize ----
    [Fact]
    public void Validate_StandardizeWithoutFeatures_NamesTheFieldAndTheRule()
    {
        var spec = Valid() with { Data = new DataSpec { Classes = 10, Standardize = true } };

        var error = AssertSingle(spec, "$.data.standardize", "requires");
        Assert.Contains("data.features", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_StandardizationWithAZeroStddevOrTheWrongCount_NamesEachValue()
    {
        var features = Enumerable.Range(0, 16).Select(i => "x" + i).ToArray();
        var mean = new double[16];
        var stddev = Enumerable.Repeat(1.0, 16).ToArray();
        stddev[3] = 0;
        var spec = Valid() with { Data = new DataSpec { Classes = 10, Features = features, Standardization = new FeatureStandardization(mean[..15], stddev) } };

        var errors = RunSpecValidator.Validate(spec);

        Assert.Contains(errors, e => e.Path == "$.data.standardization.mean" && e.Rule == "count");
        Assert.Contains(errors, e => e.Path == "$.data.standardization.stddev[3]" && e.Rule == "range");
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void Validate_StandardizeUnderDifferentialPrivacy_IsAConflict()
    {
        var features = Enumerable.Range(0, 16).Select(i => "x" + i).ToArray();
        var spec = Valid() with
        {
            Data = new DataSpec { Classes = 10, Features = features, Standardize = true },
            Privacy = new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec() },
        };

        Assert.Contains(RunSpecValidator.Validate(spec), e => e.Path == "$.data.standardize" && e.Rule == "conflict");
    }

    [Fact]
    public void Parse_StandardizeTrue_RoundTripsThroughTheStrictParser()
    {
        var json = DemoJson.Replace("\"classes\": 10", "\"classes\": 10, \"standardize\": true, \"features\": [" + string.Join(", ", Enumerable.Range(0, 16).Select(i => $"\"x{i}\"")) + "]", StringComparison.Ordinal);

        var parsed = RunSpecParser.Parse(json);

        Assert.True(parsed.IsValid, string.Join("; ", parsed.Errors));
        Assert.True(parsed.Spec!.Data.Standardize);
    }

    // ---- runId ----
    [Theory]
    [InlineData("ab")]
    [InlineData("Demo-run")]
    [InlineData("-demo")]
    [InlineData("demo-")]
    [InlineData("demo_run")]
    [InlineData("demo/run")]
    [InlineData("demo.run")]
    [InlineData("d\u0435mo")] // Cyrillic е
    [InlineData("")]
    public void Validate_InvalidRunId_ReportsPattern(string runId)
    {
        AssertSingle(Valid() with { RunId = runId }, "$.runId", "pattern");
    }

    [Fact]
    public void Validate_RunIdOf64Chars_ReportsPattern()
    {
        AssertSingle(Valid() with { RunId = new string('a', 64) }, "$.runId", "pattern");
    }

    [Fact]
    public void Validate_RunIdAbsent_ReturnsNoErrors()
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { RunId = null }));
    }

    [Theory]
    [InlineData("abc", true)]
    [InlineData("run-2025-01-01", true)]
    [InlineData("a--b", true)]
    [InlineData("000", true)]
    [InlineData("ab", false)]
    [InlineData("abc-", false)]
    [InlineData("ABC", false)]
    [InlineData(null, false)]
    public void IsValidRunId_Examples_MatchRule(string? id, bool expected)
    {
        Assert.Equal(expected, RunSpecValidator.IsValidRunId(id));
    }

    [Fact]
    public void IsValidRunId_LengthBounds_Are3To63()
    {
        Assert.True(RunSpecValidator.IsValidRunId(new string('a', 63)));
        Assert.False(RunSpecValidator.IsValidRunId(new string('a', 64)));
    }

    // ---- model ----
    [Fact]
    public void Validate_UnknownArchitecture_ReportsEnum()
    {
        var spec = Valid() with { Model = Valid().Model with { Architecture = "transformer" } };

        var error = AssertSingle(spec, "$.model.architecture", "enum");
        Assert.Contains("transformer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ArchitectureWrongCase_ReportsEnum()
    {
        AssertSingle(Valid() with { Model = Valid().Model with { Architecture = "MLP" } }, "$.model.architecture", "enum");
    }

    [Fact]
    public void Validate_LogregWithHiddenLayers_ReportsNotAllowed()
    {
        var spec = Valid() with { Model = Valid().Model with { Architecture = ModelArchitectures.LogisticRegression, Hidden = [8] } };

        AssertSingle(spec, "$.model.hidden", "not-allowed");
    }

    [Fact]
    public void Validate_LogregWithoutHiddenLayers_ReturnsNoErrors()
    {
        var spec = Valid() with { Model = Valid().Model with { Architecture = ModelArchitectures.LogisticRegression, Hidden = [] } };

        Assert.Empty(RunSpecValidator.Validate(spec));
    }

    [Fact]
    public void Validate_MlpWithoutHiddenLayers_ReportsCount()
    {
        AssertSingle(Valid() with { Model = Valid().Model with { Hidden = [] } }, "$.model.hidden", "count");
    }

    [Fact]
    public void Validate_MlpWithMoreHiddenLayersThanLimit_ReportsCount()
    {
        var spec = Valid() with { Model = Valid().Model with { Hidden = [4, 4, 4, 4, 4, 4, 4, 4, 4] } };

        var error = AssertSingle(spec, "$.model.hidden", "count");
        Assert.Contains("MaxHiddenLayers", error.Message, StringComparison.Ordinal);
        Assert.Empty(RunSpecValidator.Validate(spec, SpecLimits.Default with { MaxHiddenLayers = 9 }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(4097)]
    public void Validate_HiddenWidthOutOfRange_ReportsRangeAtIndex(int width)
    {
        var spec = Valid() with { Model = Valid().Model with { Hidden = [8, width] } };

        AssertSingle(spec, "$.model.hidden[1]", "range");
    }

    [Fact]
    public void Validate_HiddenWidthAtBound_ReturnsNoErrors()
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Model = Valid().Model with { Hidden = [1, 4096] } }));
    }

    [Fact]
    public void Validate_InputsAndFeaturesBothAbsent_ReportsRequired()
    {
        AssertSingle(Valid() with { Model = Valid().Model with { Inputs = null } }, "$.model.inputs", "required");
    }

    [Fact]
    public void Validate_InputsAbsentWithFeatures_ReturnsNoErrors()
    {
        var spec = Valid() with
        {
            Model = Valid().Model with { Inputs = null },
            Data = Valid().Data with { Features = ["f1", "f2", "f3"] },
        };

        Assert.Empty(RunSpecValidator.Validate(spec));
        Assert.Equal(3, RunSpecValidator.ResolveInputs(spec));
    }

    [Fact]
    public void Validate_InputsDisagreeWithFeatures_ReportsMismatch()
    {
        var spec = Valid() with { Data = Valid().Data with { Features = ["f1", "f2"] } };

        var error = AssertSingle(spec, "$.model.inputs", "mismatch");
        Assert.Contains("16", error.Message, StringComparison.Ordinal);
        Assert.Contains("2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(100_001)]
    public void Validate_InputsOutOfRange_ReportsRange(int inputs)
    {
        // A wide input layer also grows the model, so the size limit is lifted to isolate the rule.
        var limits = SpecLimits.Default with { MaxParameters = long.MaxValue };

        AssertSingle(Valid() with { Model = Valid().Model with { Inputs = inputs } }, "$.model.inputs", "range", limits);
    }

    // ---- data ----
    [Fact]
    public void Validate_UnknownDataFormat_ReportsEnum()
    {
        AssertSingle(Valid() with { Data = Valid().Data with { Format = "xlsx" } }, "$.data.format", "enum");
    }

    // ---- the tensor and image formats ----
    private static RunSpec Tensor(string format) => Valid() with { Data = new DataSpec { Format = format, Train = "d/train", Test = "d/test", Classes = 10 } };

    [Theory]
    [InlineData(DataFormats.Safetensors)]
    [InlineData(DataFormats.Npz)]
    [InlineData(DataFormats.ImageFolder)]
    public void Validate_TensorFormatWithModelInputs_ReturnsNoErrors(string format) =>
        Assert.Empty(RunSpecValidator.Validate(Tensor(format)));

    [Theory]
    [InlineData(DataFormats.Safetensors)]
    [InlineData(DataFormats.Npz)]
    [InlineData(DataFormats.ImageFolder)]
    public void Validate_TensorFormatWithFeatures_ReportsNotAllowedOnly(string format)
    {
        var spec = Tensor(format) with { Model = Valid().Model with { Inputs = 2 }, Data = Tensor(format).Data with { Features = ["p0", "p1"] } };

        var error = AssertSingle(spec, "$.data.features", "not-allowed");

        Assert.Contains($"the {format} format", error.Message, StringComparison.Ordinal);
        Assert.Contains("model.inputs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TensorFormatWithoutInputs_ReportsRequired() =>
        AssertSingle(Tensor(DataFormats.Npz) with { Model = Valid().Model with { Inputs = null } }, "$.model.inputs", "required");

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Validate_TensorFormatWithStandardization_ReportsNotAllowed(bool computed)
    {
        var data = Tensor(DataFormats.Safetensors).Data;
        var spec = Tensor(DataFormats.Safetensors) with { Data = computed ? data with { Standardize = true } : data with { Standardization = new FeatureStandardization([0], [1]) } };

        AssertSingle(spec, computed ? "$.data.standardize" : "$.data.standardization", "not-allowed");
    }

    [Fact]
    public void Validate_ImageFolderClassNames_OnePerClass_ReturnsNoErrors() =>
        Assert.Empty(RunSpecValidator.Validate(Tensor(DataFormats.ImageFolder) with { Data = Tensor(DataFormats.ImageFolder).Data with { ClassNames = [.. Enumerable.Range(0, 10).Select(i => "digit " + i)] } }));

    [Theory]
    [InlineData(new[] { "a", "b" }, "$.data.classNames", "count")]
    [InlineData(new[] { "a", "b", "c", "d", "e", "f", "g", "h", "i", "a" }, "$.data.classNames[9]", "duplicate")]
    [InlineData(new[] { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j/k" }, "$.data.classNames[9]", "pattern")]
    [InlineData(new[] { "a", "b", "c", "d", "e", "f", "g", "h", "i", ".." }, "$.data.classNames[9]", "pattern")]
    [InlineData(new[] { "a", "b", "c", "d", "e", "f", "g", "h", "i", "" }, "$.data.classNames[9]", "pattern")]
    [InlineData(new[] { "a", "b", "c", "d", "e", "f", "g", "h", "i", "x%2F" }, "$.data.classNames[9]", "pattern")]
    public void Validate_BadClassNames_ReportsTheName(string[] names, string path, string rule) =>
        AssertSingle(Tensor(DataFormats.ImageFolder) with { Data = Tensor(DataFormats.ImageFolder).Data with { ClassNames = names } }, path, rule);

    [Fact]
    public void Validate_ClassNamesWithAnotherFormat_ReportsNotAllowed() =>
        AssertSingle(Valid() with { Data = Valid().Data with { ClassNames = [.. Enumerable.Range(0, 10).Select(i => "c" + i)] } }, "$.data.classNames", "not-allowed");

    [Fact]
    public void Validate_ParquetFormat_ReturnsNoErrors()
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Data = Valid().Data with { Format = DataFormats.Parquet, Train = "d/train.parquet" } }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/data/train.csv")]
    [InlineData("data\\train.csv")]
    [InlineData("../train.csv")]
    [InlineData("data/../../other-silo/train.csv")]
    [InlineData("data/..")]
    [InlineData("data//train.csv")]
    [InlineData("./train.csv")]
    [InlineData("data/")]
    [InlineData("data/train\u0000.csv")]
    [InlineData("data/train\n.csv")]
    [InlineData("data/train.csv?sv=2024&sig=x")]
    [InlineData("data/train.csv#frag")]
    [InlineData("data%2F..%2F..%2Fother")]
    [InlineData("data/train%2ecsv")]
    [InlineData("data/100%.csv")]
    public void Validate_UnsafeTrainPath_ReportsPath(string path)
    {
        AssertSingle(Valid() with { Data = Valid().Data with { Train = path } }, "$.data.train", "path");
    }

    [Fact]
    public void Validate_TestPathLongerThan1024_ReportsPath()
    {
        var error = AssertSingle(Valid() with { Data = Valid().Data with { Test = new string('a', 1025) } }, "$.data.test", "path");
        Assert.Contains("1024", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("train.csv")]
    [InlineData("a/b/c/train.csv")]
    [InlineData("data/my..file.csv")]
    [InlineData("data/2025 q1/train.csv")]
    public void Validate_SafeBlobPath_ReturnsNoErrors(string path)
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Data = Valid().Data with { Train = path, Test = path } }));
    }

    [Fact]
    public void Validate_EmptyLabel_ReportsRequired()
    {
        AssertSingle(Valid() with { Data = Valid().Data with { Label = string.Empty } }, "$.data.label", "required");
    }

    [Fact]
    public void Validate_EmptyFeatureList_ReportsCount()
    {
        var spec = Valid() with { Model = Valid().Model with { Inputs = null }, Data = Valid().Data with { Features = [] } };

        Assert.Contains(RunSpecValidator.Validate(spec), e => e.Path == "$.data.features" && e.Rule == "count");
    }

    [Fact]
    public void Validate_DuplicateFeature_ReportsDuplicateAtSecondOccurrence()
    {
        var spec = Valid() with { Model = Valid().Model with { Inputs = 3 }, Data = Valid().Data with { Features = ["a", "b", "a"] } };

        AssertSingle(spec, "$.data.features[2]", "duplicate");
    }

    [Fact]
    public void Validate_FeatureEqualsLabel_ReportsConflict()
    {
        var spec = Valid() with { Model = Valid().Model with { Inputs = 2 }, Data = Valid().Data with { Features = ["a", "label"] } };

        AssertSingle(spec, "$.data.features[1]", "conflict");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    [InlineData(10_001)]
    public void Validate_ClassesOutOfRange_ReportsRange(int classes)
    {
        var limits = SpecLimits.Default with { MaxParameters = long.MaxValue };

        AssertSingle(Valid() with { Data = Valid().Data with { Classes = classes } }, "$.data.classes", "range", limits);
    }

    // ---- training ----
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(10_001)]
    [InlineData(int.MaxValue)]
    public void Validate_RoundsOutOfRange_ReportsRange(int rounds)
    {
        // evaluation.everyRounds (1) stays within bounds whatever rounds is, so only the rounds error appears.
        var error = AssertSingle(Valid() with { Training = Valid().Training with { Rounds = rounds } }, "$.training.rounds", "range");
        Assert.Contains("MaxRounds", error.Message, StringComparison.Ordinal);
        Assert.Contains(rounds.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_RoundsAboveTightenedLimit_ReportsRange()
    {
        AssertSingle(Valid(), "$.training.rounds", "range", SpecLimits.Default with { MaxRounds = 5 });
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public void Validate_LocalEpochsOutOfRange_ReportsRange(int epochs)
    {
        AssertSingle(Valid() with { Training = Valid().Training with { LocalEpochs = epochs } }, "$.training.localEpochs", "range");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65_537)]
    public void Validate_BatchSizeOutOfRange_ReportsRange(int batchSize)
    {
        AssertSingle(Valid() with { Training = Valid().Training with { BatchSize = batchSize } }, "$.training.batchSize", "range");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.01)]
    [InlineData(10.000001)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Validate_LearningRateOutOfRange_ReportsRange(double rate)
    {
        AssertSingle(Valid() with { Training = Valid().Training with { LearningRate = rate } }, "$.training.learningRate", "range");
    }

    [Theory]
    [InlineData(10.0)]
    [InlineData(1e-9)]
    public void Validate_LearningRateAtBounds_ReturnsNoErrors(double rate)
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Training = Valid().Training with { LearningRate = rate } }));
    }

    [Fact]
    public void Validate_UnknownOptimizer_ReportsEnum()
    {
        AssertSingle(Valid() with { Training = Valid().Training with { Optimizer = "rmsprop" } }, "$.training.optimizer", "enum");
    }

    [Fact]
    public void Validate_NegativeSeed_ReportsRange()
    {
        AssertSingle(Valid() with { Training = Valid().Training with { Seed = -1 } }, "$.training.seed", "range");
    }

    // ---- strategy ----
    [Fact]
    public void Validate_UnknownStrategy_ReportsEnum()
    {
        AssertSingle(Valid() with { Strategy = new StrategySpec { Name = "fedsgd" } }, "$.strategy.name", "enum");
    }

    // ---- silos ----
    [Fact]
    public void Validate_NoSilos_ReportsCount()
    {
        AssertSingle(Valid() with { Silos = [] }, "$.silos", "count");
    }

    [Fact]
    public void Validate_MoreSilosThanLimit_ReportsCount()
    {
        var silos = Enumerable.Range(1, 257).Select(i => $"silo-{i}").ToArray();

        var error = AssertSingle(Valid() with { Silos = silos }, "$.silos", "count");
        Assert.Contains("MaxSilos", error.Message, StringComparison.Ordinal);
        Assert.Contains("257", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("silo-\u0430")] // Cyrillic а, renders like Latin a
    [InlineData("../x")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("Silo-1")]
    [InlineData("SILO")]
    [InlineData("silo_1")]
    [InlineData("silo 1")]
    [InlineData("silo-\uff11")] // fullwidth digit one
    [InlineData("silo-\u0661")] // Arabic-Indic digit one, a Unicode digit
    [InlineData("-silo")]
    [InlineData("silo-")]
    [InlineData("")]
    public void Validate_InvalidSiloId_ReportsPattern(string silo)
    {
        AssertSingle(Valid() with { Silos = ["silo-1", silo] }, "$.silos[1]", "pattern");
    }

    [Fact]
    public void Validate_LookalikeSiloId_MessageShowsEscapedCodePoint()
    {
        var error = AssertSingle(Valid() with { Silos = ["silo-\u0430"] }, "$.silos[0]", "pattern");

        Assert.Contains("\\u0430", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_SiloIdOf64Chars_ReportsPattern()
    {
        AssertSingle(Valid() with { Silos = [new string('s', 64)] }, "$.silos[0]", "pattern");
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("silo-1", true)]
    [InlineData("9", true)]
    [InlineData("silo-\u0430", false)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void IsValidSiloId_Examples_MatchRule(string? id, bool expected)
    {
        Assert.Equal(expected, RunSpecValidator.IsValidSiloId(id));
    }

    [Fact]
    public void Validate_DuplicateSilo_ReportsDuplicateAtLaterIndex()
    {
        AssertSingle(Valid() with { Silos = ["silo-1", "silo-2", "silo-1"] }, "$.silos[2]", "duplicate");
    }

    // ---- evaluation, checkpoints, orchestration ----
    [Theory]
    [InlineData(-1)]
    [InlineData(11)]
    public void Validate_EveryRoundsOutsideZeroToRounds_ReportsRange(int every)
    {
        AssertSingle(Valid() with { Evaluation = new EvaluationSpec { EveryRounds = every } }, "$.evaluation.everyRounds", "range");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    public void Validate_EveryRoundsAtBounds_ReturnsNoErrors(int every)
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Evaluation = new EvaluationSpec { EveryRounds = every } }));
    }

    [Theory]
    [InlineData("ab")]
    [InlineData("Checkpoints")]
    [InlineData("check--points")]
    [InlineData("-checkpoints")]
    [InlineData("checkpoints-")]
    [InlineData("check_points")]
    [InlineData("$root")]
    [InlineData("check/points")]
    public void Validate_InvalidContainerName_ReportsPattern(string container)
    {
        AssertSingle(Valid() with { Checkpoints = new CheckpointSpec { Container = container } }, "$.checkpoints.container", "pattern");
    }

    [Fact]
    public void Validate_ContainerNameOf64Chars_ReportsPattern()
    {
        AssertSingle(Valid() with { Checkpoints = new CheckpointSpec { Container = new string('c', 64) } }, "$.checkpoints.container", "pattern");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public void Validate_RoundsPerInstanceOutOfRange_ReportsRange(int rounds)
    {
        AssertSingle(Valid() with { Orchestration = new OrchestrationSpec { RoundsPerInstance = rounds } }, "$.orchestration.roundsPerInstance", "range");
    }

    // ---- model size ----
    [Fact]
    public void Validate_HugeModel_ReportsModelSize()
    {
        // 100 000 inputs into 4096 wide layers is about 2.1e8 parameters, over the default 5e7.
        var spec = Valid() with { Model = Valid().Model with { Inputs = 100_000, Hidden = [4096, 4096] } };

        var error = AssertSingle(spec, "$.model", "model-size");
        Assert.Contains("MaxParameters", error.Message, StringComparison.Ordinal);
        Assert.Contains(RunSpecValidator.CountParameters(spec.Model, 100_000, 10).ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ModelAtParameterLimit_ReturnsNoErrors()
    {
        // 16*64+64 + 64*10+10 = 1738 parameters.
        Assert.Empty(RunSpecValidator.Validate(Valid(), SpecLimits.Default with { MaxParameters = 1738 }));
        AssertSingle(Valid(), "$.model", "model-size", SpecLimits.Default with { MaxParameters = 1737 });
    }

    [Theory]
    [InlineData(16, 10, 170)]
    [InlineData(1, 2, 4)]
    public void CountParameters_Logreg_IsInputsTimesClassesPlusClasses(int inputs, int classes, long expected)
    {
        Assert.Equal(expected, RunSpecValidator.CountParameters(new ModelSpec(), inputs, classes));
    }

    [Fact]
    public void CountParameters_Mlp_SumsEveryLinearLayer()
    {
        // 16->64: 1024+64; 64->32: 2048+32; 32->10: 320+10.
        var model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Hidden = [64, 32] };

        Assert.Equal(1088 + 2080 + 330, RunSpecValidator.CountParameters(model, 16, 10));
    }

    [Fact]
    public void CountParameters_UnknownArchitecture_Throws()
    {
        Assert.Throws<ArgumentException>(() => RunSpecValidator.CountParameters(new ModelSpec { Architecture = "transformer" }, 4, 2));
    }

    [Fact]
    public void ResolveInputs_InputsGiven_PrefersInputs()
    {
        Assert.Equal(16, RunSpecValidator.ResolveInputs(Valid()));
    }

    [Fact]
    public void ResolveInputs_NeitherGiven_Throws()
    {
        Assert.Throws<ArgumentException>(() => RunSpecValidator.ResolveInputs(new RunSpec()));
    }

    // ---- nulls forced into non-nullable members ----
    public static TheoryData<string> NullableMembers => new()
    {
        "$.model", "$.model.architecture", "$.model.hidden", "$.data", "$.data.format", "$.data.train", "$.data.test",
        "$.data.label", "$.training", "$.training.optimizer", "$.strategy", "$.strategy.name", "$.silos", "$.silos[1]",
        "$.evaluation", "$.checkpoints", "$.checkpoints.container", "$.orchestration",
    };

    [Theory]
    [MemberData(nameof(NullableMembers))]
    public void Validate_NullMember_ReportsRequiredWithoutThrowing(string path)
    {
        var v = Valid();
        var spec = path switch
        {
            "$.model" => v with { Model = null! },
            "$.model.architecture" => v with { Model = v.Model with { Architecture = null! } },
            "$.model.hidden" => v with { Model = v.Model with { Hidden = null! } },
            "$.data" => v with { Data = null! },
            "$.data.format" => v with { Data = v.Data with { Format = null! } },
            "$.data.train" => v with { Data = v.Data with { Train = null! } },
            "$.data.test" => v with { Data = v.Data with { Test = null! } },
            "$.data.label" => v with { Data = v.Data with { Label = null! } },
            "$.training" => v with { Training = null! },
            "$.training.optimizer" => v with { Training = v.Training with { Optimizer = null! } },
            "$.strategy" => v with { Strategy = null! },
            "$.strategy.name" => v with { Strategy = new StrategySpec { Name = null! } },
            "$.silos" => v with { Silos = null! },
            "$.silos[1]" => v with { Silos = ["silo-1", null!] },
            "$.evaluation" => v with { Evaluation = null! },
            "$.checkpoints" => v with { Checkpoints = null! },
            "$.checkpoints.container" => v with { Checkpoints = new CheckpointSpec { Container = null! } },
            "$.orchestration" => v with { Orchestration = null! },
            _ => throw new ArgumentOutOfRangeException(nameof(path)),
        };

        var errors = RunSpecValidator.Validate(spec);

        Assert.Contains(errors, e => e.Path == path && e.Rule == "required");
    }

    // ---- many errors at once ----
    [Fact]
    public void Validate_Pretrained_NeedsASafePathAndAHash_AndNoResumeFrom()
    {
        var sha = new string('a', 64);
        static ModelSpec With(PretrainedSpec p) => Valid().Model with { Pretrained = p };
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Model = With(new PretrainedSpec { Path = "pretrained/a.safetensors", Sha256 = sha }) }));

        var errors = RunSpecValidator.Validate(Valid() with
        {
            Model = With(new PretrainedSpec { Path = "../a.safetensors", Sha256 = sha.ToUpperInvariant() }),
            ResumeFrom = new ResumeFromSpec { RunId = "earlier" },
        }).Select(e => (e.Path, e.Rule)).ToArray();

        Assert.Contains(("$.model.pretrained.path", "path"), errors);
        Assert.Contains(("$.model.pretrained.sha256", "pattern"), errors);
        Assert.Contains(("$.model.pretrained", "conflict"), errors);
    }

    [Fact]
    public void Validate_Freeze_NamesLayersWithParameters_OnceEach_AndNotAllOfThem()
    {
        // The valid spec's mlp: layers.0 (linear), layers.1 (relu), layers.2 (linear).
        static RunSpec Freezing(params string[] layers) => Valid() with { Training = Valid().Training with { Freeze = layers } };
        Assert.Empty(RunSpecValidator.Validate(Freezing("layers.0")));

        Assert.Contains(RunSpecValidator.Validate(Freezing("layers.1")), e => e.Path == "$.training.freeze[0]" && e.Rule == "not-found");
        Assert.Contains(RunSpecValidator.Validate(Freezing("layers.0", "layers.0")), e => e.Path == "$.training.freeze[1]" && e.Rule == "duplicate");
        Assert.Contains(RunSpecValidator.Validate(Freezing("layers.0", "layers.2")), e => e.Path == "$.training.freeze" && e.Rule == "count");
    }

    [Fact]
    public void Validate_CrossSite_EyesOnPlainIsAccepted_AndEveryLeakOrOversizeIsRefused()
    {
        static RunSpec CrossSite(PrivacySpec? privacy = null, int silos = 4) => Valid() with
        {
            Evaluation = new EvaluationSpec { CrossSite = true },
            Privacy = privacy ?? new PrivacySpec(),
            Silos = Enumerable.Range(1, silos).Select(i => $"silo-{i}").ToArray(),
        };

        Assert.Empty(RunSpecValidator.Validate(CrossSite()));
        Assert.Empty(RunSpecValidator.Validate(CrossSite(silos: RunSpecValidator.MaxCrossSiteSilos)));

        AssertOnly(RunSpecValidator.Validate(CrossSite(new PrivacySpec { Mode = PrivacyModes.EyesOff, MinAggregateSilos = 2 })), "$.evaluation.crossSite", "conflict");
        AssertOnly(RunSpecValidator.Validate(CrossSite(new PrivacySpec { SecureAggregation = new SecureAggregationSpec { ClipNorm = 10 } })), "$.evaluation.crossSite", "conflict");
        AssertOnly(RunSpecValidator.Validate(CrossSite(new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec { ClipNorm = 1, NoiseMultiplier = 1 } })), "$.evaluation.crossSite", "conflict");
        AssertOnly(RunSpecValidator.Validate(CrossSite(silos: RunSpecValidator.MaxCrossSiteSilos + 1)), "$.evaluation.crossSite", "size");
    }

    [Fact]
    public void Validate_TorchScript_NeedsItsFileByPathAndHash_AndRefusesDeclaredLayersPretrainedAndFreeze()
    {
        var sha = new string('a', 64);
        static RunSpec Scripted(ModelSpec model) => Valid() with { Model = model };
        var good = new ModelSpec { Architecture = ModelArchitectures.TorchScript, Inputs = 16, Script = new PretrainedSpec { Path = "scripts/net.pt", Sha256 = sha } };

        Assert.Empty(RunSpecValidator.Validate(Scripted(good)));
        AssertOnly(RunSpecValidator.Validate(Scripted(good with { Script = null })), "$.model.script", "required");
        AssertOnly(RunSpecValidator.Validate(Scripted(good with { Script = new PretrainedSpec { Path = "../net.pt", Sha256 = sha } })), "$.model.script.path", "path");
        AssertOnly(RunSpecValidator.Validate(Scripted(good with { Script = new PretrainedSpec { Path = "scripts/net.pt", Sha256 = "ABC" } })), "$.model.script.sha256", "pattern");
        AssertOnly(RunSpecValidator.Validate(Scripted(good with { Hidden = [8] })), "$.model.hidden", "not-allowed");
        AssertOnly(RunSpecValidator.Validate(Scripted(good with { Pretrained = new PretrainedSpec { Path = "p.safetensors", Sha256 = sha } })), "$.model.pretrained", "not-allowed");
        AssertOnly(RunSpecValidator.Validate(Scripted(good) with { Training = Valid().Training with { Freeze = ["0"] } }), "$.training.freeze", "unsupported");
    }

    [Theory]
    [InlineData(StrategyNames.FedMedian)]
    [InlineData(StrategyNames.FedTrimmedAvg)]
    [InlineData(StrategyNames.Krum)]
    [InlineData(StrategyNames.MultiKrum)]
    public void Validate_ABufferedStrategyEyesOff_IsRefused_AndEyesOnAccepted(string name)
    {
        var spec = Valid() with { Strategy = new StrategySpec { Name = name } };

        Assert.Empty(RunSpecValidator.Validate(spec));
        AssertOnly(RunSpecValidator.Validate(spec with { Privacy = new PrivacySpec { Mode = PrivacyModes.EyesOff, MinAggregateSilos = 2 } }), "$.strategy.name", "conflict");
    }

    [Fact]
    public void Validate_KrumWithoutByzantine_StillNeedsThreeSilosPerRound()
    {
        var spec = Valid() with { Strategy = new StrategySpec { Name = StrategyNames.Krum }, Silos = ["silo-1", "silo-2"] };

        AssertOnly(RunSpecValidator.Validate(spec), "$.strategy.byzantine", "conflict");
        Assert.Empty(RunSpecValidator.Validate(spec with { Silos = ["silo-1", "silo-2", "silo-3"] }));
    }

    [Fact]
    public void Validate_AScriptOnADeclaredKind_IsNotAllowed()
    {
        var spec = Valid() with { Model = Valid().Model with { Script = new PretrainedSpec { Path = "scripts/net.pt", Sha256 = new string('a', 64) } } };

        AssertOnly(RunSpecValidator.Validate(spec), "$.model.script", "not-allowed");
    }

    [Fact]
    public void Validate_CrossSiteWithASiloNamedGlobal_IsAConflict()
    {
        var spec = Valid() with { Evaluation = new EvaluationSpec { CrossSite = true }, Silos = ["global", "silo-2"] };

        AssertOnly(RunSpecValidator.Validate(spec), "$.evaluation.crossSite", "conflict");
    }

    [Fact]
    public void Validate_SeveralViolations_ReportsEveryOne()
    {
        var spec = Valid() with
        {
            RunId = "Bad_Id",
            Model = Valid().Model with { Architecture = "transformer" },
            Training = Valid().Training with { Rounds = 0, LearningRate = double.NaN, Optimizer = "lbfgs" },
            Silos = ["silo-1", "../x", "silo-1"],
            Checkpoints = new CheckpointSpec { Container = "X" },
        };

        var found = RunSpecValidator.Validate(spec).Select(e => (e.Path, e.Rule)).ToHashSet();

        Assert.Superset(
            new HashSet<(string, string)>
            {
                ("$.runId", "pattern"),
                ("$.model.architecture", "enum"),
                ("$.training.rounds", "range"),
                ("$.training.learningRate", "range"),
                ("$.training.optimizer", "enum"),
                ("$.silos[1]", "pattern"),
                ("$.silos[2]", "duplicate"),
                ("$.checkpoints.container", "pattern"),
            },
            found);
    }

    [Fact]
    public void EnsureValid_InvalidSpec_ThrowsWithEveryError()
    {
        var spec = Valid() with { Silos = [], Training = Valid().Training with { Rounds = 0 } };

        var ex = Assert.Throws<InvalidRunSpecException>(() => RunSpecValidator.EnsureValid(spec));

        Assert.Equal(2, ex.Errors.Count);
        Assert.Contains("$.silos", ex.Message, StringComparison.Ordinal);
        Assert.Contains("$.training.rounds", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EnsureValid_ValidSpec_DoesNotThrow()
    {
        RunSpecValidator.EnsureValid(Valid());
    }
}
