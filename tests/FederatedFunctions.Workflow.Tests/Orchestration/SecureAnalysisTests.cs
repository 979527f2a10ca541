using System.Globalization;
using System.Text;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using static FederatedFunctions.Workflow.Tests.Orchestration.AnalysisOrchestratorTests;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// Analyses under secure aggregation, through the durable orchestrator on in-process silos: the same result as without
/// it, a silo that fails left out with fresh keys, and differential privacy on top.
/// </summary>
public sealed class SecureAnalysisTests
{
    private static AnalysisSpec Spec(string id, string[] header, bool? secure, string mode = PrivacyModes.EyesOff) => new()
    {
        AnalysisId = id,
        Silos = Data.Select(d => d.SiloId).ToArray(),
        Data = new AnalysisDataSpec { Path = "data/train.csv" },
        Features =
        [
            new FeatureAnalysis { Column = header[0], Statistics = ["count", "missing", "sum", "mean", "variance", "stddev", "quantiles"], Quantiles = [0.1, 0.5, 0.9] },
            new FeatureAnalysis { Column = header[1], Statistics = ["mean", "histogram"], Histogram = new HistogramSpec { Edges = [-3, -1, 0, 1, 3] } },
            new FeatureAnalysis { Column = "label", Statistics = ["valueCounts"], Categories = ["0", "1"] },
        ],
        GroupBy = "label",
        Groups = ["0", "1"],
        Covariance = [header[0], header[1]],
        Privacy = new AnalysisPrivacySpec { Mode = mode, MinCount = 3, MinSilos = 2, SecureAggregation = secure },
    };

    // Eyes-off is always securely aggregated (by default, and it cannot be turned off); eyes-on, on request.
    [Theory]
    [InlineData(PrivacyModes.EyesOff)]
    [InlineData(PrivacyModes.EyesOn)]
    public async Task SecureAnalysis_GivesTheResultOfTheSameAnalysisWithoutIt(string mode)
    {
        await using var h = await new Harness().StartAsync();
        var header = Union(h).Header;
        var (plainMeta, plain) = await AnalyzeAsync(h, Spec("sa-plain-" + mode, header, secure: false, PrivacyModes.EyesOn));
        var (meta, secure) = await AnalyzeAsync(h, Spec("sa-secure-" + mode, header, secure: mode == PrivacyModes.EyesOn ? true : null, mode));
        Assert.True(h.Blobs.Items.Keys.Any(k => k.Contains($"/outbox/sa-secure-{mode}-", StringComparison.Ordinal)), "no masked partial");
        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.Contains($"/outbox/sa-secure-{mode}/", StringComparison.Ordinal));
        Assert.True(plainMeta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, plainMeta.FailureDetails?.ErrorMessage);
        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);

        // Counts, bins, value counts and quantiles equal; moments to double precision (the secure ones are rounded once).
        Assert.Equal(plain!.Rows, secure!.Rows);
        Assert.Equal(plain.Silos, secure.Silos);
        foreach (var (name, p) in plain.Results.Select(r => (r.Key, r.Value)).Concat(plain.Groups!.SelectMany(g => g.Value.Results.Select(r => ($"{g.Key}/{r.Key}", r.Value)))))
        {
            var s = name.Contains('/', StringComparison.Ordinal) ? secure.Groups![name.Split('/')[0]].Results[name.Split('/')[1]] : secure.Results[name];
            Assert.Equal((p.Count, p.Missing, p.Suppressed), (s.Count, s.Missing, s.Suppressed));
            Assert.Equal(p.ValueCounts, s.ValueCounts);
            Assert.Equal(p.Histogram?.Counts, s.Histogram?.Counts);
            // Without secure aggregation, eyes-on, the search starts at the global range, which secure aggregation does
            // not give (it starts over every double): other brackets, around the same value.
            {
                Assert.All(p.Quantiles ?? new Dictionary<string, QuantileResult>(), q => Assert.True(
                    Math.Max(q.Value.Low ?? q.Value.Value!.Value, s.Quantiles![q.Key].Low ?? s.Quantiles[q.Key].Value!.Value) <= Math.Min(q.Value.High ?? q.Value.Value!.Value, s.Quantiles[q.Key].High ?? s.Quantiles[q.Key].Value!.Value),
                    $"{name} quantile {q.Key}: {q.Value} without, {s.Quantiles[q.Key]} with secure aggregation"));
            }

            foreach (var (a, b) in new[] { (p.Sum, s.Sum), (p.Mean, s.Mean), (p.Variance, s.Variance), (p.Stddev, s.Stddev) })
            {
                Assert.Equal(a is null, b is null);
                Assert.True(a is null || Math.Abs(a.Value - b!.Value) <= 1e-12 * Math.Max(1, Math.Abs(a.Value)), $"{name}: {a:R} without, {b:R} with secure aggregation");
            }
        }

        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 2; j++)
            {
                Assert.Equal(plain.Covariance!.Covariance[i][j]!.Value, secure.Covariance!.Covariance[i][j]!.Value, 12);
            }
        }
    }

    [Fact]
    public async Task SecureAnalysis_ASiloThatFailsPass1_IsLeftOut_AndTheAttemptIsRedoneWithoutItUnderFreshKeys()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        var broken = Data[2].SiloId;
        var lines = Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{broken}/data/train.csv"]).Split('\n');
        lines[3] = "not-a-number" + lines[3][lines[3].IndexOf(',', StringComparison.Ordinal)..];
        h.Blobs.Items[$"mem://{broken}/data/train.csv"] = Encoding.UTF8.GetBytes(string.Join('\n', lines));

        var (meta, result) = await AnalyzeAsync(h, Spec("sa-dropout", union.Header, secure: true));

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        var others = Data.Where(d => d.SiloId != broken).ToArray();
        Assert.Equal(others.Select(d => d.SiloId).Order(StringComparer.Ordinal), result!.Silos.Order(StringComparer.Ordinal));
        var values = others.SelectMany(d => Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{d.SiloId}/data/train.csv"]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1))
            .Select(l => double.Parse(l.Split(',')[0], CultureInfo.InvariantCulture)).ToArray();
        var x0 = result.Results[union.Header[0]];
        Assert.Equal(values.Length, x0.Count);
        Assert.True(Math.Abs(values.Average() - x0.Mean!.Value) <= 1e-12, $"mean {x0.Mean:R}, central {values.Average():R}");

        // Attempt 0 of pass 1 had every silo in its key exchange, so its masks cannot cancel without the broken one: the
        // others masked again for attempt 1, with new keys; later passes needed one attempt.
        foreach (var silo in others)
        {
            var masked = h.Blobs.Items.Keys.Where(k => k.StartsWith($"mem://{silo.SiloId}/outbox/sa-dropout-", StringComparison.Ordinal) && k.EndsWith(".safetensors", StringComparison.Ordinal)).ToArray();
            Assert.Contains(masked, k => k.EndsWith("/round-00001/masked-00.safetensors", StringComparison.Ordinal));
            Assert.Contains(masked, k => k.EndsWith("/round-00001/masked-01.safetensors", StringComparison.Ordinal));
            Assert.DoesNotContain(masked, k => k.Contains("/round-00002/masked-01", StringComparison.Ordinal));
        }

        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.StartsWith($"mem://{broken}/outbox/sa-dropout-", StringComparison.Ordinal) && k.Contains("masked", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SecureAnalysis_APartialChangedAfterItsCheck_FailsTheAnalysisAndSaysSo()
    {
        await using var h = await new Harness().StartAsync();
        var changer = Data[1].SiloId;
        h.Backend.ChangesAfterCheck = k => k.Silo == changer && k.MaskingRun.StartsWith("sa-changed-", StringComparison.Ordinal) && k.Round == 1 && k.Attempt == 0;

        var (meta, result) = await AnalyzeAsync(h, Spec("sa-changed", Union(h).Header, secure: true));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Null(result);
        Assert.Contains($"changed after it was checked: {changer}", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecureAnalysis_WithDifferentialPrivacy_ReleasesTheSameNoisyResultAsWithout()
    {
        var x0 = string.Empty;
        AnalysisResult?[] results = new AnalysisResult?[2];
        for (var i = 0; i < 2; i++)
        {
            // Each on its own host (and budget), with the same seeded noise: the same draws on the same exact statistics.
            // Eyes-on without secure aggregation, then eyes-off, which has it.
            await using var h = await BudgetedHarness(total: 2).StartAsync();
            x0 = Union(h).Header[0];
            var spec = DpSpec($"sa-dp-{i}", x0, epsilon: 1.5);
            (var meta, results[i]) = await AnalyzeAsync(h, i == 0 ? spec with { Privacy = spec.Privacy with { Mode = PrivacyModes.EyesOn } } : spec);
            Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        }

        var (plain, secure) = (results[0]!.Results[x0], results[1]!.Results[x0]);
        Assert.Equal(plain.Count, secure.Count);
        Assert.Equal(plain.Histogram!.Counts, secure.Histogram!.Counts);
        Assert.Equal(plain.Sum!.Value, secure.Sum!.Value, 9);
        Assert.Equal(plain.Mean!.Value, secure.Mean!.Value, 9);
        Assert.NotNull(results[1]!.DifferentialPrivacy);
    }
}
