using System.Globalization;
using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// A federated analysis through the durable orchestrator, on in-process silos with real CSV data: every statistic
/// against the same statistic computed centrally over the union of the silos' rows; small-cell suppression; eyes-off.
/// </summary>
public sealed class AnalysisOrchestratorTests
{
    private const double Tolerance = 1e-9;

    internal static async Task<(OrchestrationMetadata Meta, AnalysisResult? Result)> AnalyzeAsync(Harness h, AnalysisSpec spec)
    {
        var errors = AnalysisSpecValidator.Validate(spec);
        Assert.True(errors.Count == 0, string.Join("; ", errors.Select(e => e.Message)));
        var id = await h.Host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AnalysisOrchestrator), new AnalysisState(spec.AnalysisId!, spec, "checkpoints"), new StartOrchestrationOptions(spec.AnalysisId));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var meta = await h.Host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
        var bytes = await h.Store.GetDocumentAsync("checkpoints", BlobLayout.AnalysisResult(spec.AnalysisId!), default);
        return (meta, bytes is null ? null : JsonSerializer.Deserialize<AnalysisResult>(bytes, AnalysisJson.Options));
    }

    // The union of the silos' rows, parsed from the same CSV text the silos read.
    internal static (string[] Header, string[][] Rows) Union(Harness h)
    {
        string[]? header = null;
        var rows = new List<string[]>();
        foreach (var silo in Data)
        {
            var lines = Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{silo.SiloId}/data/train.csv"]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            header ??= lines[0].Split(',');
            rows.AddRange(lines.Skip(1).Select(l => l.Split(',')));
        }

        return (header!, rows.ToArray());
    }

    internal static double[] Column((string[] Header, string[][] Rows) union, string name) =>
        union.Rows.Select(r => double.Parse(r[Array.IndexOf(union.Header, name)], CultureInfo.InvariantCulture)).ToArray();

    private static void Close(double expected, double? actual, string what) =>
        Assert.True(actual is { } a && Math.Abs(expected - a) <= Tolerance * Math.Max(1, Math.Abs(expected)), $"{what}: central {expected:R}, federated {actual:R}");

    private static AnalysisSpec Spec(string id, string[] header, int minCount = 1, string mode = PrivacyModes.EyesOn, int minSilos = 1) => new()
    {
        AnalysisId = id,
        Silos = Data.Select(d => d.SiloId).ToArray(),
        Data = new AnalysisDataSpec { Path = "data/train.csv" },
        Features =
        [
            new FeatureAnalysis
            {
                Column = header[0],
                Statistics = mode == PrivacyModes.EyesOn
                    ? ["count", "missing", "sum", "mean", "variance", "stddev", "min", "max", "histogram", "quantiles"]
                    : ["count", "missing", "sum", "mean", "variance", "stddev", "quantiles"],
                Histogram = mode == PrivacyModes.EyesOn ? new HistogramSpec { Bins = 8 } : null,
                Quantiles = [0, 0.1, 0.5, 0.9, 1],
            },
            new FeatureAnalysis { Column = header[1], Statistics = ["mean", "histogram"], Histogram = new HistogramSpec { Edges = [-3, -1, 0, 1, 3] } },
            new FeatureAnalysis { Column = header[2], Statistics = ["mean", "variance"] },
            // Eyes-off is securely aggregated: the values counted, and the groups, are declared.
            new FeatureAnalysis { Column = "label", Statistics = ["valueCounts"], Categories = mode == PrivacyModes.EyesOff ? ["0", "1", "2", "3"] : null },
        ],
        GroupBy = "label",
        Groups = mode == PrivacyModes.EyesOff ? ["0", "1", "2", "3"] : null,
        Covariance = [header[0], header[1], header[2]],
        Privacy = new AnalysisPrivacySpec { Mode = mode, MinCount = minCount, MinSilos = minSilos },
    };

    [Fact]
    public async Task Analysis_EveryStatistic_EqualsTheCentralComputationOverTheUnionOfTheSilos()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        var (x0, x1, x2) = (union.Header[0], union.Header[1], union.Header[2]);
        var (meta, result) = await AnalyzeAsync(h, Spec("fa-exact", union.Header));

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        var r = result!.Results;
        var a = Column(union, x0);
        var mean = a.Average();
        var variance = a.Sum(v => (v - mean) * (v - mean)) / (a.Length - 1);
        Assert.Equal(a.Length, r[x0].Count);
        Assert.Equal(0, r[x0].Missing);
        Close(a.Sum(), r[x0].Sum, "sum");
        Close(mean, r[x0].Mean, "mean");
        Close(variance, r[x0].Variance, "variance");
        Close(Math.Sqrt(variance), r[x0].Stddev, "stddev");
        Assert.Equal((a.Min(), a.Max()), (r[x0].Min, r[x0].Max));

        // Histogram over the global range: exact counts per bin.
        var edges = Histogram.EqualWidth(a.Min(), a.Max(), 8);
        Assert.Equal(edges, r[x0].Histogram!.Edges);
        Assert.Equal(Histogram.Of(a, edges).Counts.Select(c => (long?)c), r[x0].Histogram!.Counts);

        // Quantiles: the exact order statistic, type 1.
        var sorted = a.Order().ToArray();
        foreach (var p in new[] { 0, 0.1, 0.5, 0.9, 1 })
        {
            var expected = sorted[Math.Max(1, (long)Math.Ceiling(p * sorted.Length)) - 1];
            Assert.Equal(expected, r[x0].Quantiles![AnalysisReport.QuantileKey(p)].Value);
        }

        // Given edges, value counts, groups and covariance.
        var b = Column(union, x1);
        Assert.Equal(Histogram.Of(b, [-3, -1, 0, 1, 3]).Counts.Select(c => (long?)c), r[x1].Histogram!.Counts);
        var labels = union.Rows.Select(row => row[^1]).ToArray();
        Assert.Equal(labels.GroupBy(l => l).ToDictionary(g => g.Key, g => (long?)g.LongCount()), r["label"].ValueCounts);
        foreach (var group in labels.Distinct())
        {
            var members = a.Where((_, i) => labels[i] == group).ToArray();
            Close(members.Average(), result.Groups![group].Results[x0].Mean, $"mean of group {group}");
            Assert.Equal(members.Length, result.Groups[group].Rows);
        }

        var c = Column(union, x2);
        var (mb, mc) = (b.Average(), c.Average());
        Close(a.Zip(b, (u, v) => (u - mean) * (v - mb)).Sum() / (a.Length - 1), result.Covariance!.Covariance[0][1], "cov(x0, x1)");
        Close(b.Zip(c, (u, v) => (u - mb) * (v - mc)).Sum() / Math.Sqrt(b.Sum(v => (v - mb) * (v - mb)) * c.Sum(v => (v - mc) * (v - mc))), result.Covariance.Correlation[1][2], "corr(x1, x2)");
        Assert.Equal(Data.Select(d => d.SiloId), result.Silos);
    }

    [Fact]
    public async Task Analysis_EveryPartialThatLeftASilo_HasAnAuditEntry_ChainedAndAnchoredInTheManifest()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        var (meta, _) = await AnalyzeAsync(h, Spec("fa-audit", union.Header));
        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);

        var manifest = JsonSerializer.Deserialize<AnalysisManifest>((await h.Store.GetDocumentAsync("checkpoints", BlobLayout.AnalysisManifest("fa-audit"), default))!, AnalysisJson.Options)!;
        var entries = Core.Audit.AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "fa-audit", manifest.Passes.Count, default));
        var partials = manifest.Passes.SelectMany((refs, i) => refs.Select(r => (Pass: i + 1, r.SiloId, r.Partial.Sha256, r.Partial.Bytes))).ToArray();
        Assert.True(manifest.Passes.Count >= 2, "the spec's quantiles need more than one pass");
        Assert.Equal(partials.Order(), entries.Select(e => (Pass: e.Round, e.SiloId, e.Sha256, e.Bytes)).Order());
        Assert.All(entries, e => Assert.Equal((Core.Audit.AuditKinds.AnalysisPartial, "fa-audit", "silo:" + e.SiloId), (e.Kind, e.RunId, e.Identity)));
        Assert.True(Core.Audit.AuditChain.Verify(entries, manifest.Audit!.Hash, "fa-audit").IsValid);

        // Dropping the last entry no longer matches the anchored head.
        Assert.False(Core.Audit.AuditChain.Verify(entries.Take(entries.Count - 1).ToArray(), manifest.Audit.Hash, "fa-audit").IsValid);
    }

    [Fact]
    public async Task Analysis_FailedInALaterPass_StillRecordsThePartialsItRead_AndARerunContinuesTheChain()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        h.Backend.AnalysisFailures[(Data[1].SiloId, 2)] = true;

        var (failed, _) = await AnalyzeAsync(h, Spec("fa-audit-fail", union.Header));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);
        var afterFailure = Core.Audit.AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "fa-audit-fail", 99_999, default));
        Assert.Equal(Data.Select(d => d.SiloId).Order(), afterFailure.Select(e => e.SiloId).Order());
        Assert.All(afterFailure, e => Assert.Equal(1, e.Round));

        // The same id again: its passes go on from the failed execution's entries, in one chain the manifest anchors.
        h.Backend.AnalysisFailures.Clear();
        await h.Host.Client.PurgeInstanceAsync("fa-audit-fail");
        var (rerun, _) = await AnalyzeAsync(h, Spec("fa-audit-fail", union.Header));
        Assert.True(rerun.RuntimeStatus == OrchestrationRuntimeStatus.Completed, rerun.FailureDetails?.ErrorMessage);
        var manifest = JsonSerializer.Deserialize<AnalysisManifest>((await h.Store.GetDocumentAsync("checkpoints", BlobLayout.AnalysisManifest("fa-audit-fail"), default))!, AnalysisJson.Options)!;
        var log = Core.Audit.AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", "fa-audit-fail", 99_999, default));
        Assert.Equal(afterFailure, log.Take(afterFailure.Count));
        Assert.Equal(afterFailure.Count + (manifest.Passes.Count * Data.Count), log.Count);
        Assert.True(Core.Audit.AuditChain.Verify(log, manifest.Audit!.Hash, "fa-audit-fail").IsValid);
    }

    [Fact]
    public async Task Analysis_MinSilosPerCell_WithholdsWhatOneSiloAloneFills()
    {
        await using var h = await new Harness().StartAsync();

        // Silo i holds x in [10i, 10i + 10), and 10 rows of category "common"; the first silo also 10 of "only-first".
        for (var i = 0; i < Data.Count; i++)
        {
            var rows = Enumerable.Range(0, 20).Where(r => r < 10 || i == 0).Select(r => string.Create(CultureInfo.InvariantCulture, $"{(10 * i) + (r % 10) + 0.5},{(r < 10 ? "common" : "only-first")}"));
            h.Blobs.Items[$"mem://{Data[i].SiloId}/data/cells.csv"] = Encoding.UTF8.GetBytes("x,cat\n" + string.Join("\n", rows) + "\n");
        }

        AnalysisSpec Cells(string id, int minSilos, double[] edges) => new()
        {
            AnalysisId = id,
            Silos = Data.Select(d => d.SiloId).ToArray(),
            Data = new AnalysisDataSpec { Path = "data/cells.csv" },
            Features =
            [
                new FeatureAnalysis { Column = "x", Statistics = ["count", "histogram"], Histogram = new HistogramSpec { Edges = edges } },
                new FeatureAnalysis { Column = "cat", Statistics = ["valueCounts"] },
            ],
            GroupBy = "cat",
            Privacy = new AnalysisPrivacySpec { MinCount = 3, MinSilos = minSilos },
        };

        var (_, loose) = await AnalyzeAsync(h, Cells("fa-cells-1", 1, [0, 10, 20, 30, 40]));
        var (_, strict) = await AnalyzeAsync(h, Cells("fa-cells-2", 2, [0, 10, 20, 30, 40]));
        var (_, wide) = await AnalyzeAsync(h, Cells("fa-cells-3", 2, [0, 20, 40]));

        // One silo per bin: shown with no silo rule, withheld with two; bins of two silos each are shown.
        Assert.Equal([20L, 10L, 10L, 10L], loose!.Results["x"].Histogram!.Counts.Take(4));
        Assert.All(strict!.Results["x"].Histogram!.Counts, c => Assert.Null(c));
        Assert.Equal([30L, 20L], wide!.Results["x"].Histogram!.Counts);

        // The category and the group only the first silo has are named without the rule, and not with it.
        Assert.Equal(10L, loose.Results["cat"].ValueCounts!["only-first"]);
        Assert.Contains("only-first", loose.Groups!.Keys);
        Assert.False(strict.Results["cat"].ValueCounts!.ContainsKey("only-first"));
        Assert.DoesNotContain("only-first", strict.Groups!.Keys);
        Assert.Equal(50L, strict.Results["x"].Count);
    }

    [Fact]
    public async Task Analysis_ANumericStatisticOfATextColumn_FailsNamingTheColumnAndRow()
    {
        await using var h = await new Harness().StartAsync();
        foreach (var silo in Data)
        {
            h.Blobs.Items[$"mem://{silo.SiloId}/data/cities.csv"] = "city,x\nOslo,1\nLima,2\n"u8.ToArray();
        }

        var (meta, result) = await AnalyzeAsync(h, new AnalysisSpec
        {
            AnalysisId = "fa-text",
            Silos = Data.Select(d => d.SiloId).ToArray(),
            Data = new AnalysisDataSpec { Path = "data/cities.csv" },
            Features = [new FeatureAnalysis { Column = "city", Statistics = ["mean"] }],
        });

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Null(result);
        Assert.Contains("column 'city' row 1", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("not a number", meta.FailureDetails.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Analysis_ParquetData_GivesTheSameResultAsTheSameRowsInCsv()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        foreach (var silo in Data)
        {
            var lines = Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{silo.SiloId}/data/train.csv"]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var header = lines[0].Split(',');
            var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
            var fields = header.Select(name => name == "label" ? (Parquet.Schema.DataField)new Parquet.Schema.DataField<long>(name) : new Parquet.Schema.DataField<double>(name)).ToArray();
            using var parquet = new MemoryStream();
            await using (var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(fields), parquet))
            {
                using var group = writer.CreateRowGroup();
                for (var j = 0; j < header.Length; j++)
                {
                    if (header[j] == "label")
                    {
                        await group.WriteAsync<long>(fields[j], rows.Select(r => long.Parse(r[j], CultureInfo.InvariantCulture)).ToArray());
                    }
                    else
                    {
                        await group.WriteAsync<double>(fields[j], rows.Select(r => double.Parse(r[j], CultureInfo.InvariantCulture)).ToArray());
                    }
                }
            }

            h.Blobs.Items[$"mem://{silo.SiloId}/data/train.parquet"] = parquet.ToArray();
        }

        var (csvMeta, csv) = await AnalyzeAsync(h, Spec("fa-csv", union.Header));
        var (parquetMeta, fromParquet) = await AnalyzeAsync(h, Spec("fa-parquet", union.Header) with { Data = new AnalysisDataSpec { Format = DataFormats.Parquet, Path = "data/train.parquet" } });

        Assert.True(csvMeta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, csvMeta.FailureDetails?.ErrorMessage);
        Assert.True(parquetMeta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, parquetMeta.FailureDetails?.ErrorMessage);
        Assert.Equal(JsonSerializer.Serialize(csv!.Results, AnalysisJson.Options), JsonSerializer.Serialize(fromParquet!.Results, AnalysisJson.Options));
        Assert.Equal(JsonSerializer.Serialize(csv.Groups, AnalysisJson.Options), JsonSerializer.Serialize(fromParquet.Groups, AnalysisJson.Options));
        Assert.Equal(Column(union, union.Header[0]).Length, fromParquet.Results[union.Header[0]].Count);
    }

    [Fact]
    public async Task Analysis_SmallCells_AreNeverReported_AndASilosOwnMinimumRaisesTheAnalysiss()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        h.Backend.MinCounts[Data[2].SiloId] = 60;
        var x1 = union.Header[1];

        // Edges with a bin of about 10 rows, one of about 45, and wide ones: the small ones must not be reported.
        var sorted = Column(union, x1).Order().ToArray();
        double[] edges = [sorted[0], sorted[10], sorted[55], sorted[sorted.Length / 2], sorted[^1]];
        var spec = Spec("fa-small", union.Header, minCount: 20);
        spec = spec with { Features = [spec.Features[0], spec.Features[1] with { Histogram = new HistogramSpec { Edges = edges } }, .. spec.Features.Skip(2)] };
        var (meta, result) = await AnalyzeAsync(h, spec);

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        Assert.Equal(60, result!.MinCount);
        var expected = Histogram.Of(Column(union, x1), edges).Counts;
        Assert.Contains(expected, n => n is > 0 and < 60);

        // No cell under 60 is shown; every shown cell is exact; and what is withheld adds up to 0 or at least 60, so that
        // the total minus the shown cells never isolates a small cell (complementary suppression).
        var shown = result.Results[x1].Histogram!.Counts;
        Assert.All(shown.Zip(expected), p => Assert.True(p.First is null || p.First == p.Second, $"shown {p.First}, exact {p.Second}"));
        Assert.DoesNotContain(shown, n => n is > 0 and < 60);
        Assert.Contains(shown, n => n is null);
        var withheld = expected.Sum() - shown.Sum(n => n ?? 0);
        Assert.True(withheld == 0 || withheld >= 60, $"withheld cells add up to {withheld}");
        Assert.All(result.Groups!, g => Assert.True(g.Value.Rows >= 60));

        // A quantile stops at a bracket of at least 60 rows instead of naming one row's value.
        var median = result.Results[union.Header[0]].Quantiles!["0.5"];
        Assert.Null(median.Value);
        var a = Column(union, union.Header[0]);
        Assert.True(a.Count(v => v >= median.Low && v <= median.High) >= 60);
    }

    [Fact]
    public async Task Analysis_EyesOff_LeavesNoPerSiloValueInHistory_AndReportsNoExtremes()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        var (meta, result) = await AnalyzeAsync(h, Spec("fa-eyesoff", union.Header, minCount: 5, mode: PrivacyModes.EyesOff, minSilos: 3));

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        Assert.Null(result!.Results[union.Header[0]].Min);

        // Each silo's own row count and mean of the first column: neither may appear in anything the orchestration serialized.
        var history = string.Join("\n", h.Converter.Texts);
        foreach (var silo in Data)
        {
            var lines = Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{silo.SiloId}/data/train.csv"]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToArray();
            var values = lines.Select(l => double.Parse(l.Split(',')[0], CultureInfo.InvariantCulture)).ToArray();
            Assert.DoesNotContain(Moments.Of(values).Mean.ToString("R", CultureInfo.InvariantCulture), history, StringComparison.Ordinal);
            Assert.False(HistoryScan.HasNumber(history, "rows", lines.Length), $"{silo.SiloId}'s row count is in history");
            Assert.False(HistoryScan.HasNumber(history, "count", lines.Length), $"{silo.SiloId}'s row count is in history");
        }

        // The scan does see numbers in history: the count over every silo, which the orchestrator needs, is there.
        Assert.True(HistoryScan.HasNumber(history, "count", union.Rows.Length), "the scan found not even the total count: it cannot see what it looks for");

        Assert.Contains("\"partial\"", history, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Analysis_RunAgainUnderTheSameId_ReadsItsOwnPartialsNotThoseOfTheEarlierExecution()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        var spec = Spec("fa-again", union.Header);
        var (first, before) = await AnalyzeAsync(h, spec);
        Assert.True(first.RuntimeStatus == OrchestrationRuntimeStatus.Completed, first.FailureDetails?.ErrorMessage);

        // The silo's data changes, and the same analysis runs again: its result must count the new rows.
        var path = $"mem://{Data[0].SiloId}/data/train.csv";
        var csv = Encoding.UTF8.GetString(h.Blobs.Items[path]);
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        h.Blobs.Items[path] = Encoding.UTF8.GetBytes(string.Join('\n', lines.Concat(lines.Skip(1).Take(7))) + "\n");
        var (second, after) = await AnalyzeAsync(h, spec);

        Assert.True(second.RuntimeStatus == OrchestrationRuntimeStatus.Completed, second.FailureDetails?.ErrorMessage);
        Assert.Equal(before!.Rows + 7, after!.Rows);
    }

    [Fact]
    public async Task Analysis_FewerSilosThanTheMinimum_FailsAndReportsNothing()
    {
        await using var h = await new Harness().StartAsync();
        var union = Union(h);
        var spec = Spec("fa-few", union.Header, minSilos: 2) with { Silos = [Data[0].SiloId] };
        var (meta, result) = await AnalyzeAsync(h, spec);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("fewer than privacy.minSilos", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Null(result);
    }

    // A host whose data/train.csv is under budget "synth" of the given total ε, with noise seeded by NoiseSeed.
    internal const long NoiseSeed = 42;

    internal static Harness BudgetedHarness(double total) => new()
    {
        Services = services =>
        {
            services.AddSingleton(new AnalysisOptions { Budgets = { ["synth"] = new DatasetBudgetOptions { Epsilon = total, Path = "data/train.csv" } } });
            services.AddSingleton(new AnalysisNoise(() => new SeededGaussianSource(NoiseSeed)));
        },
    };

    internal static AnalysisSpec DpSpec(string id, string column, double epsilon) => new()
    {
        AnalysisId = id,
        Silos = Data.Select(d => d.SiloId).ToArray(),
        Data = new AnalysisDataSpec { Path = "data/train.csv" },
        Features =
        [
            new FeatureAnalysis { Column = column, Statistics = ["count", "sum", "mean", "histogram"], Histogram = new HistogramSpec { Edges = [-3, -1, 0, 1, 3] }, Bounds = new BoundsSpec { Min = -3, Max = 3 } },
        ],
        Privacy = new AnalysisPrivacySpec
        {
            Mode = PrivacyModes.EyesOff,
            MinCount = 5,
            MinSilos = 2,
            DifferentialPrivacy = new AnalysisDifferentialPrivacySpec { Mechanism = DpMechanisms.Laplace, Epsilon = epsilon, Budget = "synth" },
        },
    };

    [Fact]
    public async Task Analysis_DeclaredCategories_FoldEveryOtherValueInTheSilo_AndDpPartialsArePaddedEyesOnToo()
    {
        await using var h = await BudgetedHarness(total: 5).StartAsync();
        var x0 = Union(h).Header[0];
        var exact = DpSpec("fa-cats", x0, epsilon: 1) with
        {
            Features = [new FeatureAnalysis { Column = "label", Statistics = ["valueCounts"], Categories = ["0", "1"] }],
            Privacy = new AnalysisPrivacySpec { MinCount = 1 },
            Data = new AnalysisDataSpec { Path = "data/train.csv" },
        };
        var noisy = DpSpec("fa-dp-eyes-on", x0, epsilon: 1) with { Privacy = DpSpec("x", x0, 1).Privacy with { Mode = PrivacyModes.EyesOn } };

        var (exactMeta, exactResult) = await AnalyzeAsync(h, exact with { Data = new AnalysisDataSpec { Path = "data/test.csv" } });
        var (noisyMeta, _) = await AnalyzeAsync(h, noisy);

        Assert.True(exactMeta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, exactMeta.FailureDetails?.ErrorMessage);
        Assert.True(noisyMeta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, noisyMeta.FailureDetails?.ErrorMessage);
        var labels = Data.SelectMany(d => d.Test.Labels).ToArray();
        Assert.Equal(labels.LongCount(l => l >= 2), exactResult!.Results["label"].ValueCounts![AnalysisReport.OtherValues]);
        foreach (var (key, bytes) in h.Blobs.Items.Where(b => b.Key.Contains("/outbox/fa-cats/", StringComparison.Ordinal)))
        {
            var text = Encoding.UTF8.GetString(bytes);
            Assert.DoesNotContain("\"2\":", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\"3\":", text, StringComparison.Ordinal);
        }

        var padded = h.Blobs.Items.Where(b => b.Key.Contains("/outbox/fa-dp-eyes-on/", StringComparison.Ordinal)).Select(b => b.Value.Length).ToArray();
        Assert.NotEmpty(padded);
        Assert.All(padded, n => Assert.True(n >= 4096 && System.Numerics.BitOperations.IsPow2(n), $"a partial of {n} bytes"));
    }

    [Fact]
    public async Task Analysis_DifferentialPrivacy_ReleasesExactPlusTheSeededNoiseAndChargesTheBudget()
    {
        await using var h = await BudgetedHarness(total: 2).StartAsync();
        var union = Union(h);
        var x0 = union.Header[0];
        var (meta, result) = await AnalyzeAsync(h, DpSpec("fa-dp", x0, epsilon: 1.5));

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        var exact = Column(union, x0).Select(v => Math.Clamp(v, -3, 3)).ToArray();

        // Three queries (counts, sum, histogram) share ε = 1.5: 0.5 each, so the sum's Laplace scale is 3 / 0.5 = 6. The noise
        // is the seeded stream, drawn in the plan's order: present, missing, then the sum.
        var mirror = new SeededGaussianSource(NoiseSeed);
        var (present, _, sum) = (mirror.NextStandardLaplace(), mirror.NextStandardLaplace(), mirror.NextStandardLaplace());
        var r = result!.Results[x0];
        Assert.Equal(exact.Sum() + (6 * sum), r.Sum!.Value, 9);
        Assert.Equal((long)Math.Round(exact.Length + (2 * present)), r.Count);
        Assert.NotEqual(exact.Sum(), r.Sum!.Value);

        // Histogram cells are noisy counts near the exact ones (b = 2: beyond 30 is a 1e-6 event per cell).
        var bins = Histogram.Of(exact, [-3, -1, 0, 1, 3]).Counts;
        Assert.All(r.Histogram!.Counts.Zip(bins), p => Assert.True(p.First is null || Math.Abs(p.First.Value - p.Second) <= 30, $"noisy {p.First}, exact {p.Second}"));
        Assert.NotEqual(bins.Select(c => (long?)c), r.Histogram.Counts);

        // What was spent is in the result and in the ledger; the exact count never reached history.
        var dp = result.DifferentialPrivacy!;
        Assert.Equal((DpMechanisms.Laplace, 1.5, "synth", 0.5), (dp.Mechanism, dp.Epsilon, dp.Budget, dp.EpsilonPerQuery));
        var ledger = JsonSerializer.Deserialize<PrivacyLedger>((await h.Store.GetDocumentAsync("checkpoints", BlobLayout.PrivacyLedger("synth"), default))!, AnalysisJson.Options)!;
        Assert.Equal(1.5, ledger.EpsilonSpent);
        Assert.Equal("fa-dp", Assert.Single(ledger.Charges).AnalysisId);
        Assert.False(HistoryScan.HasNumber(string.Join("\n", h.Converter.Texts), "count", exact.Length), "the exact count is in history");
    }

    [Fact]
    public async Task Analysis_PastTheDatasetsBudget_IsRefusedBeforeAnySiloReadsARow()
    {
        await using var h = await BudgetedHarness(total: 1).StartAsync();
        var x0 = Union(h).Header[0];
        var (first, _) = await AnalyzeAsync(h, DpSpec("fa-dp-a", x0, epsilon: 0.6));
        Assert.True(first.RuntimeStatus == OrchestrationRuntimeStatus.Completed, first.FailureDetails?.ErrorMessage);

        var (second, result) = await AnalyzeAsync(h, DpSpec("fa-dp-b", x0, epsilon: 0.6));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, second.RuntimeStatus);
        Assert.Contains("Privacy budget 'synth' refuses analysis 'fa-dp-b': epsilon spent 0.6 of 1, requested 0.6", second.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Null(result);
        // Eyes-off, the silos' outboxes hold masked partials, under the analysis id and its execution.
        Assert.Contains(h.Blobs.Items.Keys, k => k.Contains("/outbox/fa-dp-a-", StringComparison.Ordinal));
        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.Contains("/outbox/fa-dp-b", StringComparison.Ordinal));
        var ledger = JsonSerializer.Deserialize<PrivacyLedger>((await h.Store.GetDocumentAsync("checkpoints", BlobLayout.PrivacyLedger("synth"), default))!, AnalysisJson.Options)!;
        Assert.Equal(0.6, ledger.EpsilonSpent);
    }

    [Fact]
    public async Task Analysis_ExactAnalysisOfBudgetedData_IsRefusedSoTheBudgetCannotBeSteppedAround()
    {
        await using var h = await BudgetedHarness(total: 1).StartAsync();
        var union = Union(h);
        var (meta, result) = await AnalyzeAsync(h, Spec("fa-dp-exact", union.Header));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("is under privacy budget 'synth'", meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Null(result);
        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.Contains("/outbox/fa-dp-exact/", StringComparison.Ordinal));
    }
}
