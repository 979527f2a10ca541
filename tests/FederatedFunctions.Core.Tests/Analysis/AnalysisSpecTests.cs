using FederatedFunctions.Core.Analysis;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>Analysis specs: a full one parses; each bad one is refused with the field's path and a rule.</summary>
public sealed class AnalysisSpecTests
{
    private const string Valid = """
        {
          "analysisId": "adult-eda",
          "silos": ["silo-1", "silo-2", "silo-3"],
          "data": { "format": "csv", "path": "data/train.csv" },
          "features": [
            { "column": "age", "statistics": ["count", "missing", "sum", "mean", "variance", "stddev", "min", "max", "histogram", "quantiles"],
              "histogram": { "bins": 10, "min": 0, "max": 100 }, "quantiles": [0.25, 0.5, 0.75], "bounds": { "min": 0, "max": 120 } },
            { "column": "hours", "statistics": ["mean", "stddev", "histogram"], "histogram": { "edges": [0, 20, 40, 60, 100] } },
            { "column": "label", "statistics": ["valueCounts"] }
          ],
          "groupBy": "label",
          "covariance": ["age", "hours"],
          "privacy": { "mode": "eyes-on", "minCount": 10, "minSilos": 2 }
        }
        """;

    [Fact]
    public void Parse_AFullSpec_IsValidWithEveryPartUnderstood()
    {
        var result = AnalysisSpecParser.Parse(Valid);
        Assert.True(result.IsValid, string.Join("; ", result.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        var spec = result.Spec!;
        Assert.Equal(3, spec.Features.Count);
        Assert.Equal(10, spec.Features[0].Histogram!.Bins);
        Assert.Equal([0.25, 0.5, 0.75], spec.Features[0].Quantiles);
        Assert.Equal(["age", "hours"], spec.Covariance);
        Assert.Equal((10, 2), (spec.Privacy.MinCount, spec.Privacy.MinSilos));
    }

    [Theory]
    [InlineData("\"count\", \"missing\", \"sum\", \"mean\", \"variance\", \"stddev\", \"min\", \"max\", \"histogram\", \"quantiles\"", "\"count\", \"median\", \"sum\", \"mean\", \"variance\", \"stddev\", \"min\", \"max\", \"histogram\", \"quantiles\"", "$.features[0].statistics[1]", "enum")]
    [InlineData("\"bins\": 10, \"min\": 0", "\"bins\": 1000, \"min\": 0", "$.features[0].histogram.bins", "range")]
    [InlineData("\"edges\": [0, 20, 40, 60, 100]", "\"edges\": [0, 40, 20]", "$.features[1].histogram.edges[2]", "order")]
    [InlineData("[0.25, 0.5, 0.75]", "[0.25, 1.5]", "$.features[0].quantiles[1]", "range")]
    [InlineData("\"covariance\": [\"age\", \"hours\"]", "\"covariance\": [\"age\", \"label\"]", "$.covariance[1]", "not-numeric")]
    [InlineData("\"statistics\": [\"valueCounts\"]", "\"statistics\": [\"valueCounts\", \"mean\"]", "$.features[2].statistics", "conflict")]
    [InlineData("\"groupBy\": \"label\"", "\"groupBy\": \"age\"", "$.groupBy", "conflict")]
    [InlineData("\"bounds\": { \"min\": 0, \"max\": 120 }", "\"bounds\": { \"min\": 5, \"max\": 5 }", "$.features[0].bounds", "range")]
    [InlineData("\"format\": \"csv\"", "\"format\": \"xlsx\"", "$.data.format", "enum")]
    [InlineData("\"format\": \"csv\"", "\"format\": \"npz\"", "$.data.format", "enum")]
    [InlineData("\"format\": \"csv\"", "\"format\": \"imagefolder\"", "$.data.format", "enum")]
    [InlineData("\"path\": \"data/train.csv\"", "\"path\": \"../other/train.csv\"", "$.data.path", "pattern")]
    [InlineData("\"path\": \"data/train.csv\"", "\"path\": \"data/./train.csv\"", "$.data.path", "pattern")]
    [InlineData("\"path\": \"data/train.csv\"", "\"path\": \"data//train.csv\"", "$.data.path", "pattern")]
    [InlineData("\"silo-3\"]", "\"silo-1\"]", "$.silos[2]", "duplicate")]
    [InlineData("\"minCount\": 10", "\"minCount\": 0", "$.privacy.minCount", "range")]
    [InlineData(", \"quantiles\": [0.25, 0.5, 0.75]", "", "$.features[0].quantiles", "required")]
    [InlineData("\"groupBy\": \"label\",", "\"groupBy\": \"label\", \"colour\": \"blue\",", "$.colour", "unknown-field")]
    public void Parse_ABadSpec_IsRefusedNamingTheField(string from, string to, string path, string rule) =>
        SpecAssert.RefusedAt(Valid, from, to, path, rule);

    [Fact]
    public void Parse_EyesOff_RefusesExtremesAGlobalRangeHistogramAndASingleSiloAggregate()
    {
        var json = Valid.Replace("\"mode\": \"eyes-on\", \"minCount\": 10, \"minSilos\": 2", "\"mode\": \"eyes-off\", \"minCount\": 10, \"minSilos\": 1", StringComparison.Ordinal)
            .Replace("\"edges\": [0, 20, 40, 60, 100]", "\"bins\": 5", StringComparison.Ordinal);
        var errors = AnalysisSpecParser.Parse(json).Errors.Where(e => e.Rule == "eyes-off").Select(e => e.Path).ToArray();
        Assert.Equal(["$.privacy.minSilos", "$.features[0].statistics[6]", "$.features[0].statistics[7]", "$.features[1].histogram"], errors);

        // Eyes-off is securely aggregated, which cannot be turned off: the groups and the values counted must be declared.
        Assert.Equal(
            ["$.groups", "$.features[2].categories"],
            AnalysisParserErrors(json, "secure-aggregation"));
        Assert.Contains("$.privacy.secureAggregation", AnalysisParserErrors(json.Replace("\"minSilos\": 1", "\"minSilos\": 1, \"secureAggregation\": false", StringComparison.Ordinal), "eyes-off"));
        Assert.DoesNotContain("$.privacy.secureAggregation", AnalysisParserErrors(json, "eyes-off"));

        // A minimum count under 3 can name one row's value (the 0 and 1 quantiles are the min and max).
        var small = AnalysisSpecParser.Parse(json.Replace("\"minCount\": 10", "\"minCount\": 2", StringComparison.Ordinal)).Errors;
        Assert.Contains(small, e => e.Path == "$.privacy.minCount" && e.Rule == "eyes-off");
    }

    [Fact]
    public void Parse_SecureAggregation_RefusesWhatIsNotASumAtAPlaceTheSpecFixes()
    {
        var json = Valid.Replace("\"minSilos\": 2", "\"minSilos\": 1, \"secureAggregation\": true", StringComparison.Ordinal)
            .Replace("\"edges\": [0, 20, 40, 60, 100]", "\"bins\": 5", StringComparison.Ordinal);
        var errors = AnalysisSpecParser.Parse(json).Errors.Where(e => e.Rule == "secure-aggregation").Select(e => e.Path).ToArray();
        Assert.Equal(["$.privacy.minSilos", "$.groups", "$.features[0].statistics[6]", "$.features[0].statistics[7]", "$.features[1].histogram", "$.features[2].categories"], errors);

        // With the groups and categories declared, no extremes, given edges and two silos, it is valid.
        var fixedUp = json.Replace("\"minSilos\": 1", "\"minSilos\": 2", StringComparison.Ordinal)
            .Replace("\"min\", \"max\", \"histogram\"", "\"histogram\"", StringComparison.Ordinal)
            .Replace("\"bins\": 5", "\"edges\": [0, 50, 100]", StringComparison.Ordinal)
            .Replace("\"statistics\": [\"valueCounts\"]", "\"statistics\": [\"valueCounts\"], \"categories\": [\">50K\", \"<=50K\"]", StringComparison.Ordinal)
            .Replace("\"groupBy\": \"label\",", "\"groupBy\": \"label\", \"groups\": [\">50K\", \"<=50K\"],", StringComparison.Ordinal);
        var parsed = AnalysisSpecParser.Parse(fixedUp);
        Assert.True(parsed.IsValid, string.Join("; ", parsed.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        Assert.True(parsed.Spec!.Privacy.SecureAggregation);
        Assert.Equal([">50K", "<=50K"], parsed.Spec.Groups);
    }

    [Fact]
    public void Parse_SecureAggregationOfAVectorOverTheLimit_IsRefusedBySize()
    {
        // 50 covariance columns over 1,000 groups: 1,275 exact products of 269 limbs per group, 340 million elements.
        var columns = Enumerable.Range(0, 50).Select(i => $"c{i}").ToArray();
        var spec = new AnalysisSpec
        {
            Silos = ["silo-1", "silo-2"],
            Features = [.. columns.Select(c => new FeatureAnalysis { Column = c, Statistics = ["mean"] })],
            GroupBy = "g",
            Groups = [.. Enumerable.Range(0, 1000).Select(i => $"g{i}")],
            Covariance = columns,
            Privacy = new AnalysisPrivacySpec { Mode = "eyes-off", MinSilos = 2 },
        };

        var errors = AnalysisSpecValidator.Validate(spec);

        var size = Assert.Single(errors);
        Assert.Equal(("$.features", "size"), (size.Path, size.Rule));
        Assert.Empty(AnalysisSpecValidator.Validate(spec with { Groups = ["g0"], Covariance = columns[..10] }));
    }

    [Theory]
    [InlineData("\"groups\": [\"a\", \"a\"]", "$.groups[1]", "duplicate")]
    [InlineData("\"groups\": [\"(other)\"]", "$.groups[0]", "pattern")]
    [InlineData("\"groups\": [\"(missing)\"]", "$.groups[0]", "pattern")]
    [InlineData("\"groups\": []", "$.groups", "count")]
    public void Parse_BadDeclaredGroups_AreRefused(string groups, string path, string rule) =>
        SpecAssert.RefusedAt(Valid, "\"groupBy\": \"label\",", $"\"groupBy\": \"label\", {groups},", path, rule);

    [Fact]
    public void Parse_GroupsWithoutGroupBy_AreRefused() =>
        SpecAssert.RefusedAt(Valid, "\"groupBy\": \"label\",", "\"groups\": [\"a\"],", "$.groups", "not-allowed");

    private static string[] AnalysisParserErrors(string json, string rule) =>
        AnalysisSpecParser.Parse(json).Errors.Where(e => e.Rule == rule).Select(e => e.Path).ToArray();

    [Fact]
    public void Parse_MalformedJson_IsRefusedWithoutThrowing()
    {
        Assert.Contains(AnalysisSpecParser.Parse("{\"silos\": [").Errors, e => e.Rule == "json");
        Assert.Contains(AnalysisSpecParser.Parse("null").Errors, e => e.Rule == "required" && e.Message.Contains("analysis spec", StringComparison.Ordinal));
    }
}
