using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>
/// Differentially private analyses in the domain: the spec's rules, the queries and their sensitivities, the noise added
/// to the merged statistics, and the per-dataset budget ledger.
/// </summary>
public sealed class DifferentialPrivacyTests
{
    private const string Valid = """
        {
          "analysisId": "dp-eda",
          "silos": ["silo-1", "silo-2"],
          "data": { "format": "csv", "path": "data/train.csv" },
          "features": [
            { "column": "age", "statistics": ["count", "missing", "sum", "mean", "variance", "stddev", "histogram"],
              "histogram": { "edges": [0, 20, 40, 60, 120] }, "bounds": { "min": 0, "max": 120 } },
            { "column": "label", "statistics": ["valueCounts"], "categories": ["yes", "no"] }
          ],
          "privacy": { "mode": "eyes-off", "minCount": 5, "minSilos": 2,
            "differentialPrivacy": { "mechanism": "gaussian", "epsilon": 1.0, "delta": 1e-6, "budget": "adult" } }
        }
        """;

    [Fact]
    public void Parse_ADifferentiallyPrivateSpec_IsValidWithEveryPartUnderstood()
    {
        var result = AnalysisSpecParser.Parse(Valid);

        Assert.True(result.IsValid, string.Join("; ", result.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        var dp = result.Spec!.Privacy.DifferentialPrivacy!;
        Assert.Equal((DpMechanisms.Gaussian, 1.0, 1e-6, "adult"), (dp.Mechanism, dp.Epsilon, dp.Delta, dp.Budget));
        Assert.Equal(["yes", "no"], result.Spec.Features[1].Categories);
    }

    [Theory]
    [InlineData(", \"bounds\": { \"min\": 0, \"max\": 120 }", "", "$.features[0].bounds", "required")]
    [InlineData("\"epsilon\": 1.0", "\"epsilon\": 0", "$.privacy.differentialPrivacy.epsilon", "range")]
    [InlineData("\"epsilon\": 1.0", "\"epsilon\": -0.5", "$.privacy.differentialPrivacy.epsilon", "range")]
    [InlineData(", \"delta\": 1e-6", "", "$.privacy.differentialPrivacy.delta", "required")]
    [InlineData("\"delta\": 1e-6", "\"delta\": 1.5", "$.privacy.differentialPrivacy.delta", "range")]
    [InlineData("\"mechanism\": \"gaussian\"", "\"mechanism\": \"laplace\"", "$.privacy.differentialPrivacy.delta", "not-allowed")]
    [InlineData("\"mechanism\": \"gaussian\"", "\"mechanism\": \"exponential\"", "$.privacy.differentialPrivacy.mechanism", "enum")]
    [InlineData("\"budget\": \"adult\"", "\"budget\": \"Adult data\"", "$.privacy.differentialPrivacy.budget", "pattern")]
    [InlineData("\"budget\": \"adult\"", "\"budget\": \"adult\", \"seed\": 1", "$.privacy.differentialPrivacy.seed", "unknown-field")]
    [InlineData("\"stddev\", \"histogram\"]", "\"stddev\", \"histogram\", \"quantiles\"], \"quantiles\": [0.5]", "$.features[0].statistics[7]", "dp")]
    [InlineData("[\"count\", \"missing\"", "[\"count\", \"max\"", "$.features[0].statistics[1]", "dp")]
    [InlineData(", \"categories\": [\"yes\", \"no\"]", "", "$.features[1].categories", "required")]
    [InlineData("\"categories\": [\"yes\", \"no\"]", "\"categories\": [\"yes\", \"yes\"]", "$.features[1].categories[1]", "duplicate")]
    [InlineData("\"edges\": [0, 20, 40, 60, 120]", "\"bins\": 6", "$.features[0].histogram", "dp")]
    [InlineData("\"privacy\": {", "\"groupBy\": \"label\", \"privacy\": {", "$.groupBy", "dp")]
    [InlineData("\"privacy\": {", "\"covariance\": [\"age\", \"age2\"], \"privacy\": {", "$.covariance", "dp")]
    public void Parse_ABadDifferentiallyPrivateSpec_IsRefusedNamingTheField(string from, string to, string path, string rule) =>
        SpecAssert.RefusedAt(Valid, from, to, path, rule);

    [Fact]
    public void Parse_BoundsMissingUnderDp_SaysWhichFieldAndWhy()
    {
        var result = AnalysisSpecParser.Parse(Valid.Replace(", \"bounds\": { \"min\": 0, \"max\": 120 }", string.Empty, StringComparison.Ordinal));

        var error = Assert.Single(result.Errors);
        Assert.Equal("$.features[0].bounds", error.Path);
        Assert.Contains("features[0].bounds is required with privacy.differentialPrivacy for sum", error.Message, StringComparison.Ordinal);
    }

    private static AnalysisSpec Spec(string mechanism, double epsilon, double? delta) => new()
    {
        AnalysisId = "dp-unit",
        Silos = ["silo-1"],
        Features =
        [
            new FeatureAnalysis { Column = "x", Statistics = ["count", "missing", "sum", "mean", "variance", "histogram"], Histogram = new HistogramSpec { Edges = [-5, 0, 5, 10] }, Bounds = new BoundsSpec { Min = -5, Max = 10 } },
            new FeatureAnalysis { Column = "c", Statistics = ["valueCounts"], Categories = ["yes", "no"] },
        ],
        Privacy = new AnalysisPrivacySpec { DifferentialPrivacy = new AnalysisDifferentialPrivacySpec { Mechanism = mechanism, Epsilon = epsilon, Delta = delta, Budget = "b" } },
    };

    private static AnalysisPartial Partial(double[] x, string[] c) => new("*", 1, x.Length, new Dictionary<string, GroupPartial>
    {
        [""] = new(x.Length, new Dictionary<string, FeaturePartial>
        {
            ["x"] = new(3, Moments.Of(x), Histogram.Of(x, [-5, 0, 5, 10]), null),
            ["c"] = new(0, null, null, c.GroupBy(v => v).ToDictionary(g => g.Key, g => (long)g.Count())),
        }, null),
    }, new Dictionary<string, long[]>());

    [Fact]
    public void Plan_BoundsMinus5To10_SensitivitiesFromTheBoundsAndEpsilonSplitEqually()
    {
        var plan = DpRelease.Plan(Spec(DpMechanisms.Laplace, 2.0, null));

        Assert.Equal(["x.counts", "x.sum", "x.m2", "x.histogram", "c.valueCounts"], plan.Select(q => q.Name));
        Assert.Equal([1.0, 10.0, 225.0, 1.0, 1.0], plan.Select(q => q.Sensitivity));
        // Five queries share ε = 2: each has 0.4, so b = Δ/0.4.
        Assert.Equal([2.5, 25.0, 562.5, 2.5, 2.5], plan.Select(q => q.Scale), new ToleranceComparer(1e-12));
        Assert.Equal(Math.Sqrt(2) * 25.0, plan[1].StandardDeviation, 12);
    }

    [Fact]
    public void Build_Laplace_AddsTheSeededDrawsScaledToTheExactStatistics()
    {
        var x = Enumerable.Range(0, 400).Select(i => -5 + (15.0 * ((i * 37) % 400) / 400)).ToArray();
        var c = Enumerable.Range(0, 400).Select(i => i % 10 == 0 ? "maybe" : i % 2 == 0 ? "yes" : "no").ToArray();
        var spec = Spec(DpMechanisms.Laplace, 2.0, null);

        var result = DpRelease.Build("dp-unit", spec, ["silo-1"], Partial(x, c), 5, "exec", new SeededGaussianSource(9));

        // The same stream, drawn in the plan's order: counts (present, missing), then sum.
        var mirror = new SeededGaussianSource(9);
        var (present, missing, sum) = (mirror.NextStandardLaplace(), mirror.NextStandardLaplace(), mirror.NextStandardLaplace());
        var r = result.Results["x"];
        Assert.Equal((long)Math.Round(400 + (2.5 * present)), r.Count);
        Assert.Equal(x.Sum() + (25.0 * sum), r.Sum!.Value, 9);
        Assert.NotEqual(x.Sum(), r.Sum!.Value);
        Assert.InRange(r.Mean!.Value, -5, 10);
        Assert.NotNull(r.Variance);
        Assert.Null(result.Rows);
        Assert.Equal((DpMechanisms.Laplace, 2.0, "exec"), (result.DifferentialPrivacy!.Mechanism, result.DifferentialPrivacy.Epsilon, result.DifferentialPrivacy.Execution));
        Assert.Equal(Math.Max(0, (long)Math.Round(3 + (2.5 * missing))), r.Missing);

        // Declared categories only: the undeclared value is folded into (other), never named.
        var counts = result.Results["c"].ValueCounts!;
        Assert.DoesNotContain("maybe", counts.Keys);
        Assert.InRange(counts["yes"]!.Value, 160 - 40, 160 + 40);
    }

    [Fact]
    public void Build_Gaussian_NoiseHasTheCalibratedSpreadOverManyReleases()
    {
        var x = Enumerable.Range(0, 100).Select(i => (i % 15) - 5.0).ToArray();
        var spec = Spec(DpMechanisms.Gaussian, 1.0, 1e-6);
        var sigma = DpRelease.Plan(spec).Single(q => q.Name == "x.sum").Scale;
        var source = new SeededGaussianSource(3);

        var errors = Enumerable.Range(0, 2000).Select(_ => DpRelease.Build("dp-unit", spec, ["s"], Partial(x, ["yes"]), 1, "e", source).Results["x"].Sum!.Value - x.Sum()).ToArray();

        var std = Math.Sqrt(errors.Sum(e => e * e) / errors.Length);
        Assert.InRange(std, 0.95 * sigma, 1.05 * sigma);
        Assert.Equal(NoiseCalibration.AnalyticGaussianSigma(10, 0.2, 2e-7), sigma, 12);
    }

    [Fact]
    public void Build_NearTheMinimum_SuppressionFollowsTheNoisyCountNotTheExactOne()
    {
        // Exact counts of 9 (under k = 10) and 11 (over it), with count noise of scale about 2: over many seeds the noisy
        // count lands on both sides of k, and suppression must follow it every time.
        var spec = Spec(DpMechanisms.Laplace, 1.5, null);
        var b = DpRelease.Plan(spec).Single(q => q.Name == "x.counts").Scale;
        var (shownUnderK, hiddenOverK) = (0, 0);
        foreach (var n in new[] { 9, 11 })
        {
            var x = Enumerable.Range(0, n).Select(i => (double)(i % 5)).ToArray();
            for (var seed = 1; seed <= 60; seed++)
            {
                var mirror = new SeededGaussianSource(seed);
                var present = mirror.NextStandardLaplace();
                var noisy = Math.Max(0, (long)Math.Round(n + (b * present)));

                var result = DpRelease.Build("dp-unit", spec, ["s"], Partial(x, ["yes"]), 10, "e", new SeededGaussianSource(seed));

                var expectSuppressed = noisy is >= 1 and < 10;
                Assert.True(expectSuppressed == (result.Results["x"].Suppressed == true), $"n {n}, seed {seed}: noisy count {noisy}, suppressed {result.Results["x"].Suppressed}");
                Assert.Equal(expectSuppressed ? null : noisy, result.Results["x"].Count);
                shownUnderK += n < 10 && !expectSuppressed ? 1 : 0;
                hiddenOverK += n > 10 && expectSuppressed ? 1 : 0;
            }
        }

        Assert.True(shownUnderK > 0 && hiddenOverK > 0, $"the seeds never crossed k ({shownUnderK}, {hiddenOverK}): the test would not tell noisy from exact");
    }

    private static PrivacyCharge Charge(string id, double epsilon) => new(id, id.Split('/')[0], DpMechanisms.Laplace, epsilon, null, DateTime.UnixEpoch);

    [Fact]
    public void Charge_WithinTheTotal_IsAddedAndTheSameChargeAgainIsNotAddedTwice()
    {
        var first = PrivacyLedger.Empty("adult").Charge(Charge("a/1", 0.6), 1.0);
        var again = first.Ledger.Charge(Charge("a/1", 0.6), 1.0);

        Assert.True(first.Changed);
        Assert.Null(first.Refusal);
        Assert.False(again.Changed);
        Assert.Null(again.Refusal);
        Assert.Equal(0.6, again.Ledger.EpsilonSpent);
        Assert.Single(again.Ledger.Charges);
    }

    [Fact]
    public void Charge_PastTheTotal_IsRefusedNamingTheBudgetSpentAndRequested()
    {
        var ledger = PrivacyLedger.Empty("adult").Charge(Charge("a/1", 0.6), 1.0).Ledger;

        var decision = ledger.Charge(Charge("b/1", 0.5), 1.0);

        Assert.False(decision.Changed);
        Assert.Same(ledger, decision.Ledger);
        Assert.Contains("Privacy budget 'adult' refuses analysis 'b'", decision.Refusal, StringComparison.Ordinal);
        Assert.Contains("epsilon spent 0.6 of 1, requested 0.5", decision.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Charge_TenTenthsOfATotalOfOne_AllFitDespiteRounding()
    {
        var ledger = PrivacyLedger.Empty("b");
        for (var i = 0; i < 10; i++)
        {
            var decision = ledger.Charge(Charge($"a{i}/1", 0.1), 1.0);
            Assert.Null(decision.Refusal);
            ledger = decision.Ledger;
        }

        Assert.NotNull(ledger.Charge(Charge("z/1", 0.1), 1.0).Refusal);
    }

    private sealed class ToleranceComparer(double relative) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= relative * Math.Max(1, Math.Abs(x));

        public int GetHashCode(double obj) => 0;
    }
}
