using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Specs;
using static FederatedFunctions.Core.Tests.Specs.TestSpecs;

namespace FederatedFunctions.Core.Tests.Specs;

public sealed class RunSpecParserTests
{
    [Fact]
    public void Parse_DemoJson_ReturnsValidSpec()
    {
        var result = RunSpecParser.Parse(DemoJson);

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        var spec = result.Spec!;
        Assert.Equal("demo-mlp", spec.RunId);
        Assert.Equal(ModelArchitectures.MultilayerPerceptron, spec.Model.Architecture);
        Assert.Equal(16, spec.Model.Inputs);
        Assert.Equal([64], spec.Model.Hidden);
        Assert.Equal(10, spec.Data.Classes);
        Assert.Equal(10, spec.Training.Rounds);
        Assert.Equal(["silo-1", "silo-2", "silo-3", "silo-4"], spec.Silos);
    }

    [Fact]
    public void Parse_Utf8Bytes_MatchesStringOverload()
    {
        var fromBytes = RunSpecParser.Parse(Encoding.UTF8.GetBytes(DemoJson));

        Assert.True(fromBytes.IsValid);
        Assert.Equal(
            JsonSerializer.Serialize(RunSpecParser.Parse(DemoJson).Spec, RunSpecJson.Options),
            JsonSerializer.Serialize(fromBytes.Spec, RunSpecJson.Options));
    }

    [Fact]
    public void Parse_ImageFolderData_ReadsTheFormatAndTheClassFolders()
    {
        var result = RunSpecParser.Parse("""
            {"model":{"inputs":192},"data":{"format":"imagefolder","train":"images/train","test":"images/test","classes":2,"classNames":["dog","cat"]},"silos":["a"]}
            """);

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        Assert.Equal((DataFormats.ImageFolder, "images/train", "images/test"), (result.Spec!.Data.Format, result.Spec.Data.Train, result.Spec.Data.Test));
        Assert.Equal(["dog", "cat"], result.Spec.Data.ClassNames);
    }

    [Fact]
    public void Parse_MinimalJson_AppliesRecordDefaults()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["a"]}""");

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        var spec = result.Spec!;
        Assert.Null(spec.RunId);
        Assert.Equal(ModelArchitectures.LogisticRegression, spec.Model.Architecture);
        Assert.Empty(spec.Model.Hidden);
        Assert.Equal(DataFormats.Csv, spec.Data.Format);
        Assert.Equal("data/train.csv", spec.Data.Train);
        Assert.Equal("data/test.csv", spec.Data.Test);
        Assert.Equal("label", spec.Data.Label);
        Assert.Null(spec.Data.Features);
        Assert.Equal(2, spec.Data.Classes);
        Assert.Equal(10, spec.Training.Rounds);
        Assert.Equal(1, spec.Training.LocalEpochs);
        Assert.Equal(32, spec.Training.BatchSize);
        Assert.Equal(0.05, spec.Training.LearningRate);
        Assert.Equal(Optimizers.Sgd, spec.Training.Optimizer);
        Assert.Equal(42, spec.Training.Seed);
        Assert.Equal(StrategyNames.FedAvg, spec.Strategy.Name);
        Assert.Equal(1, spec.Evaluation.EveryRounds);
        Assert.Equal("checkpoints", spec.Checkpoints.Container);
        Assert.Equal(10, spec.Orchestration.RoundsPerInstance);
    }

    [Fact]
    public void Parse_SerializedSpec_RoundTripsToSameJson()
    {
        var json = JsonSerializer.Serialize(Valid(), RunSpecJson.Options);

        var result = RunSpecParser.Parse(json);

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        Assert.Equal(json, JsonSerializer.Serialize(result.Spec, RunSpecJson.Options));
        Assert.Contains("\"localEpochs\":1", json, StringComparison.Ordinal);
        Assert.DoesNotContain("\"features\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_AreReadOnly()
    {
        Assert.True(RunSpecJson.Options.IsReadOnly);
        Assert.Throws<InvalidOperationException>(() => RunSpecJson.Options.AllowTrailingCommas = true);
    }

    // ---- shape errors ----
    [Fact]
    public void Parse_UnknownNestedField_ReportsUnknownFieldNamingIt()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["a"],"training":{"rounds":5,"epochs":3}}""");

        Assert.Null(result.Spec);
        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors);
        Assert.Equal("$.training.epochs", error.Path);
        Assert.Equal("unknown-field", error.Rule);
        Assert.Contains("'epochs'", error.Message, StringComparison.Ordinal);
        Assert.Contains("localEpochs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownTopLevelField_ReportsUnknownField()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["a"],"endpoint":"https://example.invalid"}""");

        AssertOnly(result.Errors, "$.endpoint", "unknown-field");
    }

    [Fact]
    public void Parse_FieldInWrongCase_ReportsUnknownField()
    {
        var result = RunSpecParser.Parse("""{"Model":{"inputs":4},"silos":["a"]}""");

        AssertOnly(result.Errors, "$.Model", "unknown-field");
    }

    [Fact]
    public void Parse_FieldNameWithSpecialCharacters_IsEscapedInPath()
    {
        var result = RunSpecParser.Parse("{\"model\":{\"inputs\":4},\"silos\":[\"a\"],\"a'b\\u202e\":1}");

        var error = Assert.Single(result.Errors);
        Assert.Equal("$['a\\'b\\u202e']", error.Path);
        Assert.Equal("unknown-field", error.Rule);
    }

    [Fact]
    public void Parse_StringForRounds_ReportsType()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["a"],"training":{"rounds":"10"}}""");

        Assert.Null(result.Spec);
        var error = Assert.Single(result.Errors);
        Assert.Equal("$.training.rounds", error.Path);
        Assert.Equal("type", error.Rule);
        Assert.Contains("string", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"training":{"rounds":1.5}}""", "$.training.rounds")]
    [InlineData("""{"training":{"rounds":1e10}}""", "$.training.rounds")]
    [InlineData("""{"training":{"rounds":null}}""", "$.training.rounds")]
    [InlineData("""{"training":{"learningRate":"0.1"}}""", "$.training.learningRate")]
    [InlineData("""{"training":{"learningRate":1e999}}""", "$.training.learningRate")]
    [InlineData("""{"silos":"silo-1"}""", "$.silos")]
    [InlineData("""{"silos":[1]}""", "$.silos[0]")]
    [InlineData("""{"model":[]}""", "$.model")]
    [InlineData("""{"model":{"hidden":[64,"x"]}}""", "$.model.hidden[1]")]
    [InlineData("""{"model":{"inputs":true}}""", "$.model.inputs")]
    [InlineData("""{"runId":5}""", "$.runId")]
    public void Parse_WrongValueType_ReportsTypeAtPath(string json, string path)
    {
        var result = RunSpecParser.Parse(json);

        Assert.Null(result.Spec);
        AssertOnly(result.Errors, path, "type");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("5")]
    [InlineData("\"spec\"")]
    public void Parse_RootNotAnObject_ReportsType(string json)
    {
        AssertOnly(RunSpecParser.Parse(json).Errors, "$", "type");
    }

    [Fact]
    public void Parse_DuplicateField_ReportsDuplicateField()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["a"],"training":{"rounds":5,"rounds":50}}""");

        AssertOnly(result.Errors, "$.training.rounds", "duplicate-field");
    }

    [Fact]
    public void Parse_SeveralShapeErrors_ReportsEveryOne()
    {
        var result = RunSpecParser.Parse("""{"trainig":{},"training":{"rounds":"10","batch":1},"silos":[1,"a",{}]}""");

        var found = result.Errors.Select(e => (e.Path, e.Rule)).ToHashSet();
        Assert.Equal(
            new HashSet<(string, string)>
            {
                ("$.trainig", "unknown-field"),
                ("$.training.rounds", "type"),
                ("$.training.batch", "unknown-field"),
                ("$.silos[0]", "type"),
                ("$.silos[2]", "type"),
            },
            found);
    }

    [Fact]
    public void Parse_ThousandUnknownFields_CapsErrorList()
    {
        var json = "{" + string.Join(",", Enumerable.Range(0, 1000).Select(i => $"\"f{i}\":0")) + "}";

        var result = RunSpecParser.Parse(json);

        Assert.Equal(101, result.Errors.Count);
        Assert.Equal("too-many-errors", result.Errors[^1].Rule);
    }

    // ---- null objects ----
    [Fact]
    public void Parse_NullModel_ReportsRequired()
    {
        var result = RunSpecParser.Parse("""{"model":null,"silos":["a"]}""");

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Path == "$.model" && e.Rule == "required");
    }

    [Fact]
    public void Parse_NullSiloEntry_ReportsRequired()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["a",null]}""");

        AssertOnly(result.Errors, "$.silos[1]", "required");
    }

    [Fact]
    public void Parse_NullDocument_ReportsRequired()
    {
        AssertOnly(RunSpecParser.Parse("null").Errors, "$", "required");
    }

    [Fact]
    public void Parse_NullFeatures_IsAllowed()
    {
        Assert.True(RunSpecParser.Parse("""{"model":{"inputs":4},"data":{"features":null},"silos":["a"]}""").IsValid);
    }

    // ---- syntax ----
    [Fact]
    public void Parse_MalformedJson_ReportsJsonAtPath()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"training":{"rounds": }}""");

        Assert.Null(result.Spec);
        var error = Assert.Single(result.Errors);
        Assert.Equal("json", error.Rule);
        Assert.Equal("$.training.rounds", error.Path);
    }

    [Fact]
    public void Parse_MalformedJsonInArray_ReportsElementPath()
    {
        var error = Assert.Single(RunSpecParser.Parse("""{"silos":["a","b" "c"]}""").Errors);

        Assert.Equal("json", error.Rule);
        Assert.Equal("$.silos[1]", error.Path);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("{")]
    [InlineData("{\"silos\":[\"a\",]}")]
    [InlineData("{\"silos\":[\"a\"],}")]
    [InlineData("{/* comment */\"silos\":[\"a\"]}")]
    [InlineData("{\"silos\":[\"a\"]} // comment")]
    [InlineData("{} {}")]
    [InlineData("{'silos':['a']}")]
    [InlineData("{\"training\":{\"rounds\":NaN}}")]
    public void Parse_NotStrictJson_ReportsSingleJsonError(string json)
    {
        var result = RunSpecParser.Parse(json);

        Assert.Null(result.Spec);
        Assert.Equal("json", Assert.Single(result.Errors).Rule);
    }

    [Fact]
    public void Parse_NestingDeeperThan32_ReportsJson()
    {
        var json = "{\"runId\":" + new string('[', 40) + new string(']', 40) + "}";

        Assert.Equal("json", Assert.Single(RunSpecParser.Parse(json).Errors).Rule);
    }

    [Fact]
    public void Parse_InvalidUtf8_ReportsJson()
    {
        byte[] bytes = [.. "{\"runId\":\""u8, 0xC3, 0x28, .. "\"}"u8];

        var error = Assert.Single(RunSpecParser.Parse(bytes).Errors);

        Assert.Equal("json", error.Rule);
        Assert.Contains("UTF-8", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"runId\":\"\\ud800\"}", "$.runId")]
    [InlineData("{\"silos\":[\"\\udc00\"]}", "$.silos[0]")]
    [InlineData("{\"x\\ud800\":1}", "$")]
    public void Parse_EscapedUnpairedSurrogate_ReportsJson(string json, string path)
    {
        var result = RunSpecParser.Parse(json);

        Assert.Null(result.Spec);
        AssertOnly(result.Errors, path, "json");
    }

    [Fact]
    public void Parse_Utf8ByteOrderMark_IsIgnored()
    {
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(DemoJson)];

        Assert.True(RunSpecParser.Parse(bytes).IsValid);
    }

    // ---- size ----
    [Fact]
    public void Parse_DocumentOverLimit_ReportsOnlyDocumentSize()
    {
        // Malformed as well as oversized: the size check must come first and hide everything else.
        var json = "{\"runId\":\"" + new string('a', 64 * 1024) + "\"";

        var error = Assert.Single(RunSpecParser.Parse(json).Errors);

        Assert.Equal("$", error.Path);
        Assert.Equal("document-size", error.Rule);
        Assert.Contains("MaxDocumentBytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_BytesOverTightenedLimit_ReportsDocumentSize()
    {
        var bytes = Encoding.UTF8.GetBytes(DemoJson);
        var limits = SpecLimits.Default with { MaxDocumentBytes = bytes.Length - 1 };

        Assert.Equal("document-size", Assert.Single(RunSpecParser.Parse(bytes, limits).Errors).Rule);
        Assert.True(RunSpecParser.Parse(bytes, limits with { MaxDocumentBytes = bytes.Length }).IsValid);
    }

    [Fact]
    public void Parse_MultibyteCharactersOverLimit_CountsUtf8Bytes()
    {
        // 30 000 characters of 3 bytes each: under the limit in chars, over it in bytes.
        var json = "{\"runId\":\"" + new string('\u20ac', 30_000) + "\"}";

        Assert.Equal("document-size", Assert.Single(RunSpecParser.Parse(json).Errors).Rule);
    }

    [Fact]
    public void Parse_RandomlyCorruptedDocuments_NeverThrows()
    {
        // Seeded, so a failure reproduces. Splices in fragments that stress every stage.
        string[] fragments = ["null", "[]", "{}", "\"x\"", "-1", "1e309", "0.5", "\"\\ud800\"", ",", "}", "]", "\"", ":", "true", "\"silo-\u0430\""];
        var random = new Random(20250101);
        for (var i = 0; i < 3000; i++)
        {
            var text = new StringBuilder(DemoJson);
            for (var edits = random.Next(1, 4); edits > 0; edits--)
            {
                var at = random.Next(text.Length);
                var remove = Math.Min(random.Next(0, 6), text.Length - at);
                text.Remove(at, remove).Insert(at, fragments[random.Next(fragments.Length)]);
            }

            var document = text.ToString();
            var result = RunSpecParser.Parse(document);

            Assert.True(result.IsValid || result.Errors.Count > 0, document);
        }
    }

    // ---- rules through the parser ----
    [Fact]
    public void Parse_ValidJsonInvalidSpec_ReturnsSpecAndEveryError()
    {
        var json = DemoJson
            .Replace("\"rounds\": 10", "\"rounds\": 1000000", StringComparison.Ordinal)
            .Replace("\"silo-4\"", "\"silo-\u0430\", \"../x\", \"a/b\", \"SILO-5\", \"silo-1\"", StringComparison.Ordinal);

        var result = RunSpecParser.Parse(json);

        Assert.NotNull(result.Spec);
        Assert.False(result.IsValid);
        var found = result.Errors.Select(e => (e.Path, e.Rule)).ToHashSet();
        Assert.Equal(
            new HashSet<(string, string)>
            {
                ("$.training.rounds", "range"),
                ("$.silos[3]", "pattern"),
                ("$.silos[4]", "pattern"),
                ("$.silos[5]", "pattern"),
                ("$.silos[6]", "pattern"),
                ("$.silos[7]", "duplicate"),
            },
            found);
    }

    [Fact]
    public void Parse_HugeModel_ReportsModelSize()
    {
        var json = DemoJson.Replace("\"hidden\": [64]", "\"hidden\": [4096, 4096, 4096, 4096]", StringComparison.Ordinal);

        AssertOnly(RunSpecParser.Parse(json).Errors, "$.model", "model-size");
    }
}
