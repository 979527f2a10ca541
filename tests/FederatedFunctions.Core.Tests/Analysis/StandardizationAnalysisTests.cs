using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tests.Analysis;

public sealed class StandardizationAnalysisTests
{
    [Fact]
    public void Id_OfTheLongestRunIds_IsAValidIdOfItsOwn()
    {
        var a = new string('a', 60) + "-x1";
        var b = new string('a', 60) + "-x2";

        var (ia, ib) = (StandardizationAnalysis.Id(a), StandardizationAnalysis.Id(b));

        Assert.Equal("short-run-standardize", StandardizationAnalysis.Id("short-run"));
        Assert.True(RunSpecValidator.IsValidRunId(ia), ia);
        Assert.True(RunSpecValidator.IsValidRunId(ib), ib);
        Assert.NotEqual(ia, ib);
        Assert.EndsWith("-standardize", ia, StringComparison.Ordinal);
    }

    [Fact]
    public void For_ARunSpec_AsksMeanAndStddevOfEachFeatureOnTheTrainSplit_InTheRunsPrivacyMode()
    {
        var spec = new RunSpec
        {
            Silos = ["s1", "s2"],
            Data = new DataSpec { Format = DataFormats.Parquet, Train = "d/train.parquet", Features = ["a", "b"], Standardize = true },
            Privacy = new PrivacySpec { Mode = PrivacyModes.EyesOff, MinAggregateSilos = 3 },
        };

        var analysis = StandardizationAnalysis.For("r1", spec);

        Assert.Empty(AnalysisSpecValidator.Validate(analysis));
        Assert.Equal((DataFormats.Parquet, "d/train.parquet"), (analysis.Data.Format, analysis.Data.Path));
        Assert.Equal(["a", "b"], analysis.Features.Select(f => f.Column));
        Assert.All(analysis.Features, f => Assert.Equal([AnalysisStatistics.Mean, AnalysisStatistics.StdDev], f.Statistics));
        Assert.Equal((PrivacyModes.EyesOff, 3), (analysis.Privacy.Mode, analysis.Privacy.MinSilos));
    }

    [Fact]
    public void From_AWithheldFeature_FailsNamingIt_AndAConstantFeatureIsOnlyCentred()
    {
        var result = new AnalysisResult("r1-standardize", ["s1"], PrivacyModes.EyesOn, 5, 10, new Dictionary<string, FeatureResult>
        {
            ["a"] = new() { Mean = 2, Stddev = 0 },
            ["b"] = new() { Suppressed = true },
        }, null, null);

        Assert.Equal([1.0], StandardizationAnalysis.From(result, ["a"]).Stddev);
        Assert.Contains("'b'", Assert.Throws<InvalidOperationException>(() => StandardizationAnalysis.From(result, ["a", "b"])).Message, StringComparison.Ordinal);
    }
}
