using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>The minimum number of silos per reported cell: a number only one silo's rows fill is never reported.</summary>
public sealed class CellCoverageTests
{
    [Fact]
    public void Complementary_ACellOfOneSilo_IsWithheld_WithEnoughOthersThatTheRemainderSpansTwoSilos()
    {
        var silos = new Dictionary<string, IReadOnlySet<string>>
        {
            ["a"] = new HashSet<string> { "s1" },
            ["b"] = new HashSet<string> { "s1", "s2" },
            ["c"] = new HashSet<string> { "s1", "s2" },
        };
        var cells = new Dictionary<string, long> { ["a"] = 10, ["b"] = 10, ["c"] = 12 };

        // a has k rows but one silo: withheld. Alone, total − shown would be a's count, one silo's: b (the smallest) goes too.
        Assert.Equal(["c"], AnalysisReport.Complementary(cells, 5, c => silos[c], minSilos: 2));

        // Without the silo rule, everything is shown.
        Assert.Equal(3, AnalysisReport.Complementary(cells, 5).Count);
    }

    private static AnalysisPartial Silo(string silo, params (string Group, double[] X, string[] Label)[] groups) => new(
        silo,
        1,
        groups.Sum(g => g.X.Length),
        groups.ToDictionary(
            g => g.Group,
            g => new GroupPartial(g.X.Length, new Dictionary<string, FeaturePartial>
            {
                ["x"] = new(0, Moments.Of(g.X), Histogram.Of(g.X, [0, 10, 20]), null),
                ["label"] = new(0, null, null, g.Label.GroupBy(l => l).ToDictionary(l => l.Key, l => l.LongCount())),
            }, null),
            StringComparer.Ordinal),
        new Dictionary<string, long[]>());

    [Fact]
    public void Build_WithMinSilosTwo_OmitsWhatOneSiloAloneFills_AndShowsWhatTwoDo()
    {
        var fives = Enumerable.Repeat(5.0, 6).ToArray();
        var fifteens = Enumerable.Repeat(15.0, 6).ToArray();

        // Group "p" in both silos; group "q" only in s2, and only s2 has values over 10 and the label "rare".
        var partials = new[]
        {
            Silo("s1", ("p", fives, ["common", "common", "common", "common", "common", "common"])),
            Silo("s2", ("p", fives, ["common", "common", "common", "rare", "rare", "rare"]), ("q", fifteens, ["common", "common", "common", "common", "common", "common"])),
        };
        var spec = new AnalysisSpec
        {
            AnalysisId = "cov",
            Silos = ["s1", "s2"],
            Features =
            [
                new FeatureAnalysis { Column = "x", Statistics = ["count", "mean", "histogram"], Histogram = new HistogramSpec { Edges = [0, 10, 20] } },
                new FeatureAnalysis { Column = "label", Statistics = ["valueCounts"] },
            ],
            GroupBy = "group",
            Privacy = new AnalysisPrivacySpec { MinCount = 3, MinSilos = 2 },
        };

        var merged = AnalysisMerge.Merge(partials);
        var ruled = AnalysisReport.Build("cov", spec, ["s1", "s2"], merged, null, [], 3, CellCoverage.Of(partials, 2));
        var plain = AnalysisReport.Build("cov", spec, ["s1", "s2"], merged, null, [], 3);

        // Group q (s2 alone) is left out; so is its complement, since the total minus p would be q's rows.
        Assert.Equal(["p", "q"], plain.Groups!.Keys.Order());
        Assert.Empty(ruled.Groups!);

        // The bin [10, 20] only s2 fills is suppressed, with the other bin, which would give it away.
        Assert.Equal([12L, 6L], plain.Results["x"].Histogram!.Counts);
        Assert.Equal([null, null], ruled.Results["x"].Histogram!.Counts);

        // The label only s2 has is not named; the overall count and mean (both silos) are reported.
        Assert.Equal(3L, plain.Results["label"].ValueCounts!["rare"]);
        Assert.False(ruled.Results["label"].ValueCounts!.ContainsKey("rare"));
        Assert.Equal(18L, ruled.Results["x"].Count);
    }
}
