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

        // A minimum count under 3 can name one row's value (the 0 and 1 quantiles are the min and max).
        var small = AnalysisSpecParser.Parse(json.Replace("\"minCount\": 10", "\"minCount\": 2", StringComparison.Ordinal)).Errors;
        Assert.Contains(small, e => e.Path == "$.privacy.minCount" && e.Rule == "eyes-off");
    }

    [Fact]
    public void Parse_MalformedJson_IsRefusedWithoutThrowing()
    {
        Assert.Contains(AnalysisSpecParser.Parse("{\"silos\": [").Errors, e => e.Rule == "json");
        Assert.Contains(AnalysisSpecParser.Parse("null").Errors, e => e.Rule == "required" && e.Message.Contains("analysis spec", StringComparison.Ordinal));
    }
}
