using System.Globalization;
using System.Text;
using FederatedFunctions.Core.Analysis;
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

    [Fact]
    public async Task Analysis_OnRealData_EqualsTheCentralComputation_StatisticByStatistic()
    {
        var (rows, diagnosis) = Read();
        await using var h = await new Harness().StartAsync();

        // Uneven contiguous shares, so the silos differ in size and in class balance.
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

        var worst = new Dictionary<string, double>(StringComparer.Ordinal);
        void Check(string statistic, double central, double? federated, string what)
        {
            Assert.True(federated.HasValue, $"{what}: no {statistic}");
            var error = Math.Abs(central - federated!.Value) / Math.Max(Math.Abs(central), double.Epsilon);
            worst[statistic] = Math.Max(worst.GetValueOrDefault(statistic), error);
            Assert.True(error <= 1e-9, $"{what} {statistic}: central {central:R}, federated {federated:R}, relative error {error:E2}");
        }

        var columns = Asked.Select(f => rows.Select(r => r[Array.IndexOf(Features, f)]).ToArray()).ToArray();
        foreach (var (name, x) in Asked.Zip(columns))
        {
            var r = result!.Results[name];
            var mean = x.Average();
            var m2 = x.Sum(v => (v - mean) * (v - mean));
            Assert.Equal((long)x.Length, r.Count);
            Assert.Equal(0, r.Missing);
            Check("sum", x.Sum(), r.Sum, name);
            Check("mean", mean, r.Mean, name);
            Check("variance", m2 / (x.Length - 1), r.Variance, name);
            Check("stddev", Math.Sqrt(m2 / (x.Length - 1)), r.Stddev, name);
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
                Check("mean", members.Average(), g.Mean, $"{name} in {group}");
                var inGroup = members.Order().ToArray();
                foreach (var p in Probabilities)
                {
                    Assert.Equal(inGroup[Math.Max(1, (long)Math.Ceiling(p * inGroup.Length)) - 1], g.Quantiles![AnalysisReport.QuantileKey(p)].Value);
                }
            }
        }

        for (var i = 0; i < Asked.Length; i++)
        {
            for (var j = 0; j < Asked.Length; j++)
            {
                var (a, b) = (columns[i], columns[j]);
                var (ma, mb) = (a.Average(), b.Average());
                var cross = a.Zip(b, (u, v) => (u - ma) * (v - mb)).Sum();
                Check("covariance", cross / (a.Length - 1), result!.Covariance!.Covariance[i][j], $"({Asked[i]}, {Asked[j]})");
                Check("correlation", cross / Math.Sqrt(a.Sum(u => (u - ma) * (u - ma)) * b.Sum(v => (v - mb) * (v - mb))), result.Covariance.Correlation[i][j], $"({Asked[i]}, {Asked[j]})");
            }
        }

        Assert.Equal(diagnosis.GroupBy(d => d).ToDictionary(g => g.Key, g => (long?)g.LongCount()), result!.Results["diagnosis"].ValueCounts);
        foreach (var (statistic, error) in worst.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{statistic,-12} largest relative error {error:E2}"));
        }

        output.WriteLine("count, missing, min, max, histogram counts, quantiles (overall and per group), value counts: exactly equal");
    }
}
