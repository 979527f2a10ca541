using System.Globalization;
using System.Text;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// Every statistic of a federated analysis against the same statistic computed centrally, on real data that a Debian
/// package ships: the Wisconsin diagnostic breast cancer set (569 rows, 30 features) from python3-sklearn, split
/// unevenly over the harness's silos. The test prints the largest relative error of each statistic.
/// </summary>
public sealed class RealDataAnalysisTests(ITestOutputHelper output)
{
    private static readonly string[] Features = Enumerable.Range(0, 30).Select(i => "f" + i.ToString("00", CultureInfo.InvariantCulture)).ToArray();

    // f00 mean radius, f03 mean area (values in the thousands), f09 mean fractal dimension (around 0.06), f19 fractal
    // dimension error (around 0.004): four magnitudes.
    private static readonly string[] Asked = ["f00", "f03", "f09", "f19"];

    private static readonly double[] Probabilities = [0, 0.01, 0.25, 0.5, 0.75, 0.99, 1];

    private static (double[][] Rows, string[] Diagnosis) Read()
    {
        var lines = File.ReadAllLines(RepositoryPaths.Dataset("breast_cancer.csv"));
        Assert.Equal("569,30,malignant,benign", lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        return (rows, rows.Select(r => r[30] == 0 ? "malignant" : "benign").ToArray());
    }

    // Uneven contiguous shares, so the silos differ in size and in class balance.
    private static string[] Split(Harness h, double[][] rows, string[] diagnosis)
    {
        var silos = Data.Select(d => d.SiloId).ToArray();
        var cuts = new[] { 0, 61, 240, 402, rows.Length };
        for (var s = 0; s < silos.Length; s++)
        {
            var csv = new StringBuilder(string.Join(',', Features) + ",diagnosis\n");
            for (var r = cuts[s]; r < cuts[s + 1]; r++)
            {
                csv.Append(string.Join(',', rows[r].Take(30).Select(v => v.ToString("R", CultureInfo.InvariantCulture)))).Append(',').Append(diagnosis[r]).Append('\n');
            }

            h.Blobs.Items[$"mem://{silos[s]}/data/breast_cancer.csv"] = Encoding.UTF8.GetBytes(csv.ToString());
        }

        return silos;
    }

    [Fact]
    public async Task Analysis_OnRealData_EqualsTheCentralComputation_StatisticByStatistic()
    {
        var (rows, diagnosis) = Read();
        await using var h = await new Harness().StartAsync();
        var silos = Split(h, rows, diagnosis);
        var spec = new AnalysisSpec
        {
            AnalysisId = "wdbc",
            Silos = silos,
            Data = new AnalysisDataSpec { Path = "data/breast_cancer.csv" },
            Features =
            [
                .. Asked.Select(f => new FeatureAnalysis
                {
                    Column = f,
                    Statistics = ["count", "missing", "sum", "mean", "variance", "stddev", "min", "max", "histogram", "quantiles"],
                    Histogram = new HistogramSpec { Bins = 10 },
                    Quantiles = Probabilities,
                }),
                new FeatureAnalysis { Column = "diagnosis", Statistics = ["valueCounts"] },
            ],
            GroupBy = "diagnosis",
            Covariance = Asked,
            Privacy = new AnalysisPrivacySpec { MinCount = 1 },
        };

        var (meta, result) = await AnalysisOrchestratorTests.AnalyzeAsync(h, spec);
        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);

        var errors = new Errors();

        var columns = Asked.Select(f => rows.Select(r => r[Array.IndexOf(Features, f)]).ToArray()).ToArray();
        foreach (var (name, x) in Asked.Zip(columns))
        {
            var r = result!.Results[name];
            errors.Moments(name, x, r);
            Assert.Equal((x.Min(), x.Max()), (r.Min, r.Max));

            var edges = Histogram.EqualWidth(x.Min(), x.Max(), 10);
            Assert.Equal(edges, r.Histogram!.Edges);
            Assert.Equal(Histogram.Of(x, edges).Counts.Select(c => (long?)c), r.Histogram.Counts);

            var sorted = x.Order().ToArray();
            foreach (var p in Probabilities)
            {
                Assert.Equal(sorted[Math.Max(1, (long)Math.Ceiling(p * sorted.Length)) - 1], r.Quantiles![AnalysisReport.QuantileKey(p)].Value);
            }

            foreach (var group in new[] { "malignant", "benign" })
            {
                var members = x.Where((_, i) => diagnosis[i] == group).ToArray();
                var g = result.Groups![group].Results[name];
                Assert.Equal((long)members.Length, g.Count);
                errors.Check("mean", members.Average(), g.Mean, $"{name} in {group}");
                var inGroup = members.Order().ToArray();
                foreach (var p in Probabilities)
                {
                    Assert.Equal(inGroup[Math.Max(1, (long)Math.Ceiling(p * inGroup.Length)) - 1], g.Quantiles![AnalysisReport.QuantileKey(p)].Value);
                }
            }
        }

        errors.Covariance(columns, result!.Covariance!);

        Assert.Equal(diagnosis.GroupBy(d => d).ToDictionary(g => g.Key, g => (long?)g.LongCount()), result!.Results["diagnosis"].ValueCounts);
        errors.Report(output, string.Empty);

        output.WriteLine("count, missing, min, max, histogram counts, quantiles (overall and per group), value counts: exactly equal");
    }

    [Fact]
    public async Task SecurelyAggregatedAnalysis_OnRealData_EqualsTheCentralComputation_AndNoSiloPartialLeavesASilo()
    {
        var (rows, diagnosis) = Read();
        await using var h = await new Harness().StartAsync();
        var silos = Split(h, rows, diagnosis);
        var columns = Asked.Select(f => rows.Select(r => r[Array.IndexOf(Features, f)]).ToArray()).ToArray();
        var spec = new AnalysisSpec
        {
            AnalysisId = "wdbc-secure",
            Silos = silos,
            Data = new AnalysisDataSpec { Path = "data/breast_cancer.csv" },
            Features =
            [
                .. Asked.Zip(columns).Select(f => new FeatureAnalysis
                {
                    Column = f.First,
                    Statistics = ["count", "missing", "sum", "mean", "variance", "stddev", "histogram", "quantiles"],
                    Histogram = new HistogramSpec { Bins = 10, Min = f.Second.Min(), Max = f.Second.Max() },
                    Quantiles = Probabilities,
                }),
                new FeatureAnalysis { Column = "diagnosis", Statistics = ["valueCounts"], Categories = ["malignant", "benign"] },
            ],
            GroupBy = "diagnosis",
            Groups = ["malignant", "benign"],
            Covariance = Asked,
            Privacy = new AnalysisPrivacySpec { Mode = PrivacyModes.EyesOff, MinCount = 3, MinSilos = 2 },
        };

        var (meta, result) = await AnalysisOrchestratorTests.AnalyzeAsync(h, spec);
        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);

        var errors = new Errors();

        foreach (var (name, x) in Asked.Zip(columns))
        {
            var r = result!.Results[name];
            errors.Moments(name, x, r);
            Assert.Null(r.Min);
            Assert.Null(r.Max);
            var edges = Histogram.EqualWidth(x.Min(), x.Max(), 10);
            var counts = Histogram.Of(x, edges).Counts;
            var shown = r.Histogram!.Counts;
            Assert.All(counts.Zip(shown), c => Assert.True(c.Second is null ? c.First < 3 || c.First > 0 : c.Second == c.First, $"{name}: bin of {c.First} shown as {c.Second}"));
            Assert.Equal(counts.Where((c, i) => shown[i] is not null), shown.OfType<long>());

            var sorted = x.Order().ToArray();
            foreach (var p in Probabilities)
            {
                var q = r.Quantiles![AnalysisReport.QuantileKey(p)];
                var exact = sorted[Math.Max(1, (long)Math.Ceiling(p * sorted.Length)) - 1];
                Assert.True(q.Value == exact || (q.Low <= exact && exact <= q.High), $"{name} quantile {p}: {q}, exact {exact}");
            }

            foreach (var group in new[] { "malignant", "benign" })
            {
                var members = x.Where((_, i) => diagnosis[i] == group).ToArray();
                var g = result.Groups![group].Results[name];
                Assert.Equal((long)members.Length, g.Count);
                errors.Check("mean", members.Average(), g.Mean, $"{name} in {group}");
            }
        }

        errors.Covariance(columns, result!.Covariance!);

        Assert.Equal(diagnosis.GroupBy(d => d).ToDictionary(g => g.Key, g => (long?)g.LongCount()), result!.Results["diagnosis"].ValueCounts);

        // What left the silos: one masked vector per silo and pass, and no partial; in history, no silo's row count.
        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.Contains("/outbox/wdbc-secure/", StringComparison.Ordinal));
        var masked = h.Blobs.Items.Keys.Where(k => k.Contains("/outbox/wdbc-secure-", StringComparison.Ordinal) && k.EndsWith(".safetensors", StringComparison.Ordinal)).ToArray();
        Assert.Equal(silos.Length * meta.ReadOutputAs<Workflow.Contracts.AnalysisOutcome>()!.Passes, masked.Length);
        var history = string.Join("\n", h.Converter.Texts);
        foreach (var share in new[] { 61, 179, 162, 167 })
        {
            Assert.False(HistoryScan.HasNumber(history, "rows", share) || HistoryScan.HasNumber(history, "count", share), $"a silo's row count ({share}) is in history");
        }

        Assert.True(HistoryScan.HasNumber(history, "count", rows.Length), "the scan found not even the total count: it cannot see what it looks for");

        errors.Report(output, "secure ");
    }

    // Each statistic against the central computation, within 1e-9 relative; the largest error of each is reported.
    private sealed class Errors
    {
        private readonly Dictionary<string, double> worst = new(StringComparer.Ordinal);

        public void Check(string statistic, double central, double? federated, string what)
        {
            Assert.True(federated.HasValue, $"{what}: no {statistic}");
            var error = Math.Abs(central - federated!.Value) / Math.Max(Math.Abs(central), double.Epsilon);
            worst[statistic] = Math.Max(worst.GetValueOrDefault(statistic), error);
            Assert.True(error <= 1e-9, $"{what} {statistic}: central {central:R}, federated {federated:R}, relative error {error:E2}");
        }

        public void Moments(string name, double[] x, FeatureResult r)
        {
            var mean = x.Average();
            var m2 = x.Sum(v => (v - mean) * (v - mean));
            Assert.Equal((long)x.Length, r.Count);
            Assert.Equal(0, r.Missing);
            Check("sum", x.Sum(), r.Sum, name);
            Check("mean", mean, r.Mean, name);
            Check("variance", m2 / (x.Length - 1), r.Variance, name);
            Check("stddev", Math.Sqrt(m2 / (x.Length - 1)), r.Stddev, name);
        }

        public void Covariance(double[][] columns, CovarianceResult covariance)
        {
            for (var i = 0; i < Asked.Length; i++)
            {
                for (var j = 0; j < Asked.Length; j++)
                {
                    var (a, b) = (columns[i], columns[j]);
                    var (ma, mb) = (a.Average(), b.Average());
                    var cross = a.Zip(b, (u, v) => (u - ma) * (v - mb)).Sum();
                    Check("covariance", cross / (a.Length - 1), covariance.Covariance[i][j], $"({Asked[i]}, {Asked[j]})");
                    Check("correlation", cross / Math.Sqrt(a.Sum(u => (u - ma) * (u - ma)) * b.Sum(v => (v - mb) * (v - mb))), covariance.Correlation[i][j], $"({Asked[i]}, {Asked[j]})");
                }
            }
        }

        public void Report(ITestOutputHelper output, string prefix)
        {
            foreach (var (statistic, error) in worst.OrderBy(w => w.Key, StringComparer.Ordinal))
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{prefix}{statistic,-12} largest relative error {error:E2}"));
            }
        }
    }
}
