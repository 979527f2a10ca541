using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml.Experiments;

namespace FederatedFunctions.Ml.Tests.Experiments;

public sealed class ExperimentSpecParserTests
{
    private const string Run = """
        "run": { "model": { "architecture": "mlp", "inputs": 8, "hidden": [16] }, "data": { "classes": 4 }, "training": { "rounds": 3 } }
        """;

    private static string Synthetic(string strategies = """[ { "name": "fedavg" } ]""", string extra = "", string run = Run) => $$"""
        { "experimentId": "exp", "dataset": { "source": "synthetic", "silos": 3, "classes": 4, "features": 8, "seed": 2 },
          {{run}}, "strategies": {{strategies}} {{extra}} }
        """;

    private static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(dir!.FullName, "FederatedFunctions.sln")))
        {
            dir = dir.Parent;
        }

        return dir.FullName;
    }

    private static IReadOnlyList<SpecError> Errors(string json)
    {
        var (spec, errors) = ExperimentSpecParser.Parse(json);
        Assert.Null(spec);
        return errors;
    }

    private static void AssertError(string json, string path, string rule) =>
        Assert.Contains(Errors(json), e => e.Path == path && e.Rule == rule);

    [Fact]
    public void Parse_TheDocumentedDigitsExperiment_GivesItsArmsWithTheirParameters()
    {
        var (spec, errors) = ExperimentSpecParser.Parse(File.ReadAllText(Path.Combine(Root(), "docs", "examples", "digits-experiment.json")));

        Assert.Empty(errors);
        Assert.Equal("digits-skew", spec!.ExperimentId);
        Assert.Equal(ExperimentSources.Digits, spec.Dataset.Source);
        Assert.Equal(4, spec.Dataset.Silos);
        Assert.Equal(["fedavg", "fedprox", "fedadam", "fedavgm", "fedmedian"], spec.Strategies.Select(s => s.Label));
        Assert.Equal(0.01, spec.Strategies[1].Strategy.ProximalMu);
        Assert.Equal(0.03, spec.Strategies[2].Strategy.ServerLearningRate);
        Assert.Equal(ModelArchitectures.Convolutional, spec.Run.Model.Architecture);
        Assert.Null(spec.Run.RunId);
        Assert.True(spec.Centralized && spec.Local);
        Assert.Equal(0.9, spec.TargetAccuracy);
    }

    [Fact]
    public void Parse_Defaults_BothBaselinesNoTargetLabelIsTheName()
    {
        var (spec, errors) = ExperimentSpecParser.Parse(Synthetic());

        Assert.Empty(errors);
        Assert.True(spec!.Centralized);
        Assert.True(spec.Local);
        Assert.Null(spec.TargetAccuracy);
        Assert.Equal("fedavg", Assert.Single(spec.Strategies).Label);
        Assert.Equal(["exp-1", "exp-2", "exp-3"], ExperimentSpecParser.SiloIds("exp", 3));
    }

    [Fact]
    public void Parse_AStrategysBadParameter_IsReportedAtItsPathInStrategies()
    {
        var json = Synthetic("""[ { "name": "fedavg" }, { "name": "fedprox", "proximalMu": -1 }, { "name": "krum", "byzantine": 1 } ]""");

        var errors = Errors(json);

        Assert.Contains(errors, e => e.Path == "$.strategies[1].proximalMu" && e.Rule == "range");
        // Three silos cannot tolerate one Byzantine silo (2f + 3 = 5).
        Assert.Contains(errors, e => e.Path == "$.strategies[2].byzantine" && e.Rule == "conflict");
    }

    [Fact]
    public void Parse_AnUnknownFieldInAStrategy_IsReportedByTheRunSpecParser()
    {
        AssertError(Synthetic("""[ { "name": "fedavg", "mu": 1 } ]"""), "$.strategies[0].mu", "unknown-field");
    }

    [Fact]
    public void Parse_AParameterTheStrategyDoesNotHave_IsUnused()
    {
        AssertError(Synthetic("""[ { "name": "fedavg", "proximalMu": 0.1 } ]"""), "$.strategies[0].proximalMu", "unused");
    }

    [Fact]
    public void Parse_TwoArmsWithTheSameLabel_AreRefused()
    {
        AssertError(Synthetic("""[ { "name": "fedprox" }, { "name": "fedprox", "proximalMu": 1 } ]"""), "$.strategies[1].label", "duplicate");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("{}")]
    public void Parse_NoStrategies_IsRefused(string strategies)
    {
        AssertError(Synthetic(strategies), "$.strategies", "range");
    }

    [Theory]
    [InlineData("runId")]
    [InlineData("silos")]
    [InlineData("strategy")]
    public void Parse_ARunFieldTheExperimentSets_IsAConflict(string field)
    {
        var value = field == "strategy" ? """{ "name": "fedavg" }""" : field == "silos" ? """["a"]""" : "\"x-run\"";
        AssertError(Synthetic(run: Run.Replace("\"training\"", $"\"{field}\": {value}, \"training\"", StringComparison.Ordinal)), "$.run." + field, "conflict");
    }

    [Fact]
    public void Parse_ARunProblem_IsReportedUnderRun()
    {
        AssertError(Synthetic(run: Run.Replace("\"rounds\": 3", "\"rounds\": 0", StringComparison.Ordinal)), "$.run.training.rounds", "range");
    }

    [Fact]
    public void Parse_EyesOffWithBaselines_IsRefused_AndWithoutThemAccepted()
    {
        var eyesOff = Run.Replace("\"training\"", "\"privacy\": { \"mode\": \"eyes-off\", \"minAggregateSilos\": 2 }, \"training\"", StringComparison.Ordinal);

        AssertError(Synthetic(run: eyesOff), "$.baselines", "conflict");
        var (spec, errors) = ExperimentSpecParser.Parse(Synthetic(run: eyesOff, extra: """, "baselines": { "centralized": false, "local": false }"""));
        Assert.Empty(errors);
        Assert.Equal(PrivacyModes.EyesOff, spec!.Run.Privacy.Mode);
    }

    [Fact]
    public void Parse_AModelThatDoesNotFitTheDataset_IsAConflict()
    {
        var errors = Errors(Synthetic(run: Run.Replace("\"inputs\": 8", "\"inputs\": 9", StringComparison.Ordinal).Replace("\"classes\": 4", "\"classes\": 5", StringComparison.Ordinal)));

        Assert.Contains(errors, e => e.Path == "$.run.model.inputs" && e.Rule == "conflict");
        Assert.Contains(errors, e => e.Path == "$.run.data.classes" && e.Rule == "conflict");
    }

    [Fact]
    public void Parse_PretrainedWeights_AreNotSupportedYet()
    {
        var pretrained = Run.Replace("\"hidden\": [16]", "\"hidden\": [16], \"pretrained\": { \"path\": \"p.safetensors\", \"sha256\": \"" + new string('a', 64) + "\" }", StringComparison.Ordinal);

        AssertError(Synthetic(run: pretrained), "$.run.model.pretrained", "unsupported");
    }

    [Theory]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 3, "alpha": 1 } }""", "$.dataset.alpha", "unused")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "synthetic", "silos": 3, "labelSkew": 0.5 } }""", "$.dataset.labelSkew", "unused")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "images", "silos": 3 } }""", "$.dataset.source", "enum")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 1 } }""", "$.dataset.silos", "range")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 2.5 } }""", "$.dataset.silos", "range")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits" } }""", "$.dataset.silos", "required")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 3, "labelSkew": 1.5 } }""", "$.dataset.labelSkew", "range")]
    [InlineData("""{ "experimentId": "Exp!", "dataset": { "source": "digits", "silos": 3 } }""", "$.experimentId", "pattern")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 3 }, "targetAccuracy": 1.5 }""", "$.targetAccuracy", "range")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 3 }, "baselines": { "central": true } }""", "$.baselines.central", "unknown-field")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 3 }, "extra": 1 }""", "$.extra", "unknown-field")]
    [InlineData("""{ "dataset": { "source": "digits", "silos": 3 } }""", "$.experimentId", "required")]
    [InlineData("""{ "experimentId": "exp" }""", "$.dataset", "required")]
    [InlineData("""{ "experimentId": "exp", "dataset": { "source": "digits", "silos": 3 } }""", "$.run", "required")]
    [InlineData("""[1]""", "$", "json")]
    [InlineData("""{ "experimentId": """, "$", "json")]
    public void Parse_BadExperiment_ReportsThePathAndRule(string json, string path, string rule)
    {
        AssertError(json, path, rule);
    }
}
