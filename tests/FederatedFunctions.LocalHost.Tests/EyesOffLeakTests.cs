using System.Globalization;
using FederatedFunctions.Core.Silos;
using System.Text;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// The eyes-off leak test: silos whose data holds marker values train eyes-off on the durable Azure Storage backend;
/// everything the aggregator can read (the silos' outboxes, history and instance tables, status, checkpoint blobs, audit
/// entries apart from their hashes, the model's header, the host's logs) is scanned for the markers, for each silo's train
/// and test counts, and for every sum of two or more of them.
/// </summary>
/// <remarks>
/// Without secure aggregation the aggregator reads each silo's update and evaluation report in its outbox, and the scan
/// finds the counts there (and only there): the control that shows it can fail. With secure aggregation it finds nothing.
/// </remarks>
[Collection(AzuriteCollection.Name)]
public sealed partial class EyesOffLeakTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    // Per-silo row counts (train, test): each is a marker too, since a per-silo count must not leave its silo. Five
    // digits, so that no log line's latency or byte count matches one by chance.
    private static readonly (int Train, int Test)[] Sizes = [(13731, 10301), (14093, 10357), (14471, 10391), (14813, 10433)];
    private const string FeatureMarker = "918273.645";
    private const string BadCellMarker = "leakmarkerzzq";

    [Fact]
    public async Task EyesOff_MarkersAndPerSiloCounts_AppearOnlyInTheReportsAndUpdatesTheAggregatorReadsInTheOutboxes()
    {
        var (leaks, scanned) = await RunAndScanAsync("leak-off", PrivacyModes.EyesOff);

        Report(leaks, scanned);
        foreach (var source in new[] { "History", "Instances", "/manifest.json", "/audit/round-", "/spec.json", "model.safetensors", "status", "logs", "analysis result", "leak-off-eda/analysis/result.json", "leak-off-eda/analysis/manifest.json", "leak-off-eda/audit/round-00001.jsonl" })
        {
            Assert.Contains(scanned, s => s.Where.Contains(source, StringComparison.Ordinal) && s.Text.Length > 0);
        }

        // Without secure aggregation the aggregator reads every silo's evaluation report and update: the scan finds each
        // silo's test count in its reports and its train count in its updates' headers, and nothing anywhere else.
        Assert.All(leaks, l => Assert.Matches(@"^silo leak-off-silo-[1-4]/outbox/leak-off-run/round-0000[12]/(evaluation\.json|update\.safetensors)$", l.Where));
        for (var i = 0; i < 4; i++)
        {
            var silo = $"silo leak-off-silo-{i + 1}/outbox/leak-off-run/";
            Assert.Contains(leaks, l => l.Marker == Sizes[i].Test.ToString(CultureInfo.InvariantCulture) && l.Where.StartsWith(silo, StringComparison.Ordinal) && l.Where.EndsWith("evaluation.json", StringComparison.Ordinal));
            Assert.Contains(leaks, l => l.Marker == Sizes[i].Train.ToString(CultureInfo.InvariantCulture) && l.Where.StartsWith(silo, StringComparison.Ordinal) && l.Where.EndsWith("update.safetensors", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task EyesOffWithSecureAggregation_MarkersPerSiloCountsAndTheirSums_AppearNowhereTheAggregatorCanRead()
    {
        var (leaks, scanned) = await RunAndScanAsync("leak-sa", PrivacyModes.EyesOff, secure: true);

        Report(leaks, scanned);
        foreach (var source in new[] { "History", "Instances", "/manifest.json", "/audit/round-", "status", "logs", "analysis result", "leak-sa-eda/analysis/result.json", "leak-sa-eda/analysis/manifest.json", "leak-sa-eda/audit/round-00001.jsonl" })
        {
            Assert.Contains(scanned, s => s.Where.Contains(source, StringComparison.Ordinal) && s.Text.Length > 0);
        }

        // Every silo's outbox was scanned, whole: its masked updates, masked evaluations and the analysis's masked partials
        // (header and every value), and what else it holds; no evaluation report and no update is there.
        for (var i = 0; i < 4; i++)
        {
            Assert.Contains(scanned, s => s.Where.StartsWith($"silo leak-sa-silo-{i + 1}/outbox/leak-sa-run/round-00002/masked-00.safetensors", StringComparison.Ordinal));
            Assert.Contains(scanned, s => s.Where.StartsWith($"silo leak-sa-silo-{i + 1}/outbox/leak-sa-run-evaluation-/round-00002/masked-00.safetensors", StringComparison.Ordinal));
            Assert.Contains(scanned, s => s.Where.StartsWith($"silo leak-sa-silo-{i + 1}/outbox/leak-sa-eda-", StringComparison.Ordinal));
        }

        Assert.DoesNotContain(scanned, s => s.Where.EndsWith("evaluation.json", StringComparison.Ordinal) || s.Where.EndsWith("update.safetensors", StringComparison.Ordinal));
        Assert.Empty(leaks);
    }

    private void Report(List<(string Marker, string Where)> leaks, List<(string Where, string Text)> scanned) =>
        log.WriteLine($"scanned {scanned.Count} places ({scanned.Count(s => s.Where.Contains("/outbox/", StringComparison.Ordinal))} in the silos' outboxes), {scanned.Sum(s => (long)s.Text.Length)} characters, for {Markers(["x"]).Length - 1} markers: {leaks.Count} found, {leaks.Select(l => l.Marker).Distinct().Count()} distinct, in {leaks.Select(l => l.Where).Distinct().Count()} places");

    [Fact]
    public async Task EyesOn_SameRun_TheScanFindsThePerSiloCounts()
    {
        // The control: eyes-on reports per-silo counts and errors, and the same scan finds them. Raw data never leaves.
        var (leaks, _) = await RunAndScanAsync("leak-on", PrivacyModes.EyesOn);

        Assert.Contains(leaks, l => l.Marker == Sizes[0].Train.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.DoesNotContain(leaks, l => l.Marker == FeatureMarker);
    }

    private async Task<(List<(string Marker, string Where)> Leaks, List<(string Where, string Text)> Scanned)> RunAndScanAsync(string prefix, string mode, bool secure = false)
    {
        var data = SyntheticData.Generate(new SyntheticOptions(5, 3, 4, 15000, 10500, null, 17))
            .Select(d => d with { SiloId = $"{prefix}-{d.SiloId}" }).ToArray();
        var ids = data.Select(d => d.SiloId).ToArray();
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, ids, TimeSpan.FromHours(2));
        for (var i = 0; i < 4; i++)
        {
            var train = Take(data[i].Train, Sizes[i].Train);
            train.Features[(5 * train.Columns) + 1] = float.Parse(FeatureMarker, System.Globalization.CultureInfo.InvariantCulture);
            var test = Take(data[i].Test, Sizes[i].Test);
            test.Features[(7 * test.Columns) + 1] = float.Parse(FeatureMarker, System.Globalization.CultureInfo.InvariantCulture);
            await LocalSiloProvisioner.WriteSplitsAsync(entries[ids[i]], data[i] with { Train = train, Test = test });

            // The analysis's file: the first rows of the test split, so that the analysis's released total is no marker.
            var silo = LocalSiloProvisioner.DataContainer(entries[ids[i]]);
            var testCsv = (await silo.GetBlobClient("data/test.csv").DownloadContentAsync()).Value.Content.ToString().Split('\n');
            await silo.GetBlobClient(AnalysisFile).UploadAsync(BinaryData.FromString(string.Join('\n', testCsv.Take(AnalysisRows[i] + 1)) + "\n"), overwrite: true);
        }

        // The fifth silo's data is bad, with a marker in the bad cell: its error must not carry it out.
        await LocalSiloProvisioner.WriteSplitsAsync(entries[ids[4]], data[4]);
        var container = LocalSiloProvisioner.DataContainer(entries[ids[4]]);
        var csv = (await container.GetBlobClient("data/train.csv").DownloadContentAsync()).Value.Content.ToString();
        var lines = csv.Split('\n');
        var cells = lines[7].Split(',');
        cells[2] = BadCellMarker;
        lines[7] = string.Join(',', cells);
        await container.GetBlobClient("data/train.csv").UploadAsync(BinaryData.FromString(string.Join('\n', lines)), overwrite: true);

        var hub = "flleak" + Guid.NewGuid().ToString("N")[..6];
        var trainer = LocalTrainerIdentity.Value;
        var settings = LocalSiloProvisioner.ToSettings(entries);
        settings["Storage:ConnectionString"] = azurite.ConnectionString;
        settings["Trust:ApprovedTrainers:0:Id"] = trainer.Id;
        settings["Trust:ApprovedTrainers:0:Sha256"] = trainer.Sha256;
        // Not disposed: the backend's background loops may still log after the host has stopped.
        var logs = new StringBuilder();
        var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(new WriterLoggerProvider(logs)));
        var spec = new RunSpec
        {
            RunId = prefix + "-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 2 },
            Silos = ids,
            Checkpoints = new CheckpointSpec { Container = prefix + "-checkpoints" },
            Participation = new ParticipationSpec { MinSilos = 2 },
            Retry = new RetrySpec { MaxAttempts = 1 },
            Privacy = new PrivacySpec { Mode = mode, MinAggregateSilos = 2, SecureAggregation = secure ? new SecureAggregationSpec { ClipNorm = 10 } : null },
        };

        var scanned = new List<(string Where, string Text)>();
        await using (var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = hub,
            Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
            LoggerFactory = loggers,
            MaxQueuePollingInterval = TimeSpan.FromMilliseconds(100),
        }))
        {
            using var output = new StringWriter();
            var report = await new RunRunner(host, output).RunAsync(spec, spec.RunId, "azurestorage", default);
            Assert.Equal(2, report.Rounds);
            scanned.Add(("fl output", output.ToString()));
            var meta = await host.Client.GetInstanceAsync(spec.RunId, getInputsAndOutputs: true);
            scanned.Add(("status", meta!.SerializedCustomStatus ?? string.Empty));
            scanned.Add(("output", meta.SerializedOutput ?? string.Empty));
            var manifests = await host.Services.GetRequiredService<ICheckpointStore>().ListAsync(spec.Checkpoints.Container, spec.RunId, default);
            if (mode == PrivacyModes.EyesOff)
            {
                Assert.All(manifests.Skip(1), m =>
                {
                    Assert.Equal(4, m.Participants.Count);
                    Assert.All(m.Participants, p => Assert.Equal((null, null), (p.Examples, p.Weight)));
                    // Totals are withheld too: over rounds with different participants they would give counts by subtraction.
                    Assert.Equal((null, null), (m.Metrics.TrainExamples, m.Metrics.EvalExamples));
                    Assert.NotNull(m.Metrics.TrainLoss);
                    Assert.NotNull(m.Metrics.EvalAccuracy);
                    var bad = Assert.Single(m.Rejected);
                    Assert.Equal((ids[4], "bad-data"), (bad.SiloId, bad.Reason));
                    Assert.Contains("reference", bad.Detail, StringComparison.Ordinal);
                });

                // Every update, and every evaluation report, has the same size whatever its silo's counts.
                var audit = Core.Audit.AuditLog.Parse(await host.Services.GetRequiredService<ICheckpointStore>().ReadAuditAsync(spec.Checkpoints.Container, spec.RunId, 2, default));
                Assert.Equal(2 * (4 + 5), audit.Count);
                Assert.All(audit.GroupBy(e => e.Kind), g => Assert.Single(g.Select(e => e.Bytes).Distinct()));
                Assert.Equal(secure ? 8 : 0, audit.Count(e => e.Kind == Core.Audit.AuditKinds.MaskedUpdate));
                Assert.Equal(secure ? 0 : 8, audit.Count(e => e.Kind == Core.Audit.AuditKinds.Update));
            }

            if (secure)
            {
                await AssertSecureRoundAsync(host, spec, entries, ids);
            }

            if (mode == PrivacyModes.EyesOff)
            {
                // A federated analysis too, of a survey file in the four good silos (whose row counts are not markers): every
                // statistic eyes-off allows, per group as well; its history, result, manifest and audit are scanned below.
                // Eyes-off, it is securely aggregated: the groups and categories are declared, the silos send masked partials only.
                var analysis = new Core.Analysis.AnalysisSpec
                {
                    AnalysisId = AnalysisId(prefix),
                    Silos = ids.Take(4).ToArray(),
                    Data = new Core.Analysis.AnalysisDataSpec { Path = AnalysisFile },
                    Features =
                    [
                        .. Enumerable.Range(0, 4).Select(j => new Core.Analysis.FeatureAnalysis
                        {
                            Column = "x" + j.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            Statistics = ["count", "missing", "sum", "mean", "variance", "stddev", "histogram", "quantiles"],
                            Histogram = new Core.Analysis.HistogramSpec { Edges = [-6, -2, 0, 2, 6] },
                            Quantiles = [0, 0.5, 1],
                        }),
                        new Core.Analysis.FeatureAnalysis { Column = "label", Statistics = ["valueCounts"], Categories = ["0", "1", "2"] },
                    ],
                    GroupBy = "label",
                    Groups = ["0", "1", "2"],
                    Covariance = ["x0", "x1"],
                    Privacy = new Core.Analysis.AnalysisPrivacySpec { Mode = PrivacyModes.EyesOff, MinCount = 5, MinSilos = 2 },
                };
                var result = await new AnalysisRunner(host).RunAsync(analysis, default);
                Assert.Equal(AnalysisRows.Sum(), result.Rows);
                Assert.NotEmpty(result.Groups!);
                scanned.Add(("analysis result", AnalysisRunner.Format(result) + System.Text.Json.JsonSerializer.Serialize(result, Core.Analysis.AnalysisJson.Options)));
            }
        }

        // The silos' outboxes are readable by the aggregator, every blob of them: JSON as text; a safetensors file by its
        // header and, for a masked vector, every value as a decimal number (an unmasked count would show there).
        foreach (var id in ids)
        {
            var outbox = LocalSiloProvisioner.OutboxContainer(entries[id]);
            await foreach (var item in outbox.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "outbox/", default))
            {
                var bytes = (await outbox.GetBlobClient(item.Name).DownloadContentAsync()).Value.Content.ToArray();
                scanned.Add(($"silo {id}/{item.Name}", item.Name.EndsWith(".safetensors", StringComparison.Ordinal) ? SafetensorsText(bytes) : Encoding.UTF8.GetString(bytes)));
            }
        }

        // Every table of the task hub: history, instances (inputs, outputs, status), partitions.
        var tables = new TableServiceClient(azurite.ConnectionString);
        await foreach (var t in tables.QueryAsync(t => t.Name.CompareTo(hub) >= 0 && t.Name.CompareTo(hub + "~") < 0))
        {
            var sb = new StringBuilder();
            await foreach (var entity in tables.GetTableClient(t.Name).QueryAsync<TableEntity>())
            {
                foreach (var (key, value) in (IDictionary<string, object>)entity)
                {
                    sb.Append(key).Append('=').Append(value).Append('\n');
                }
            }

            scanned.Add(("table " + t.Name, sb.ToString()));
        }

        // Every blob of the task hub and of the checkpoint container, and the analysis's in the analyses' container; for
        // models, their safetensors header only.
        foreach (var (name, under) in new[] { (spec.Checkpoints.Container, ""), (hub.ToLowerInvariant() + "-largemessages", ""), (hub.ToLowerInvariant() + "-leases", ""), (AnalysisRunner.Container, AnalysisId(prefix) + "/") })
        {
            var c = azurite.Blobs.GetBlobContainerClient(name);
            if (!(await c.ExistsAsync()).Value)
            {
                continue;
            }

            await foreach (var item in c.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, under, default))
            {
                var bytes = (await c.GetBlobClient(item.Name).DownloadContentAsync()).Value.Content.ToArray();
                var text = item.Name.EndsWith(".safetensors", StringComparison.Ordinal)
                    ? string.Join(';', Safetensors.Parse(bytes).Metadata.Select(kv => kv.Key + "=" + kv.Value))
                    : Encoding.UTF8.GetString(bytes);
                scanned.Add(($"blob {name}/{item.Name}", text));
            }
        }

        lock (logs)
        {
            scanned.Add(("logs", logs.ToString()));
        }
        // Each silo's SAS signature is a marker too: no credential may reach history, status, blobs or logs.
        var signatures = entries.Values.SelectMany(LocalSiloProvisioner.SasTokens).Select(t => System.Web.HttpUtility.ParseQueryString(t)["sig"]!).ToArray();
        Assert.All(signatures, sig => Assert.True(sig.Length > 20));
        var markers = Markers(signatures.Concat(signatures.Select(Uri.EscapeDataString)));
        Assert.DoesNotContain(AnalysisRows.Sum().ToString(CultureInfo.InvariantCulture), markers);
        var leaks = new List<(string Marker, string Where)>();
        foreach (var (where, raw) in scanned)
        {
            // Hashes (and other long hex runs) are random-looking digits and letters; timestamps hold digit runs. Neither
            // can carry a marker, so they are removed before the scan, as the issue allows for audit hashes.
            var text = HexRuns().Replace(raw, "#");
            foreach (var marker in markers)
            {
                // A number with leading zeros is the same number: the updates' headers hold counts at a fixed width.
                var pattern = $"(?<![0-9.])0*{Regex.Escape(marker)}(?![0-9])";
                if (Regex.IsMatch(text, pattern))
                {
                    leaks.Add((marker, where));
                    var at = Regex.Match(text, pattern).Index;
                    log.WriteLine($"{marker} found in {where}: ...{text.Substring(Math.Max(0, at - 150), Math.Min(300, text.Length - Math.Max(0, at - 150)))}...");
                }
            }
        }

        return (leaks, scanned);
    }

    // Through the real silo backend: round 1's model is the weighted FedAvg of the updates the silos kept (read here
    // with the silos' own credentials, as only a silo can), within the encoding's quantization error.
    private async Task AssertSecureRoundAsync(LocalDurableHost host, RunSpec spec, IReadOnlyDictionary<string, ProvisionedSilo> entries, string[] ids)
    {
        var store = host.Services.GetRequiredService<ICheckpointStore>();
        var manifests = await store.ListAsync(spec.Checkpoints.Container, spec.RunId!, default);
        Assert.All(manifests.Skip(1), m => Assert.Equal(0, m.Privacy!.SecureAggregationAttempt));
        var m1 = manifests.Single(m => m.Round == 1);
        var global = Flat(Safetensors.Parse(await store.ReadModelAsync(manifests.Single(m => m.Round == 0).Model, default)));
        var actual = Flat(Safetensors.Parse(await store.ReadModelAsync(m1.Model, default)));
        var sum = new double[global.Length];
        double total = 0;
        foreach (var id in ids.Take(4))
        {
            var kept = Safetensors.Parse((await LocalSiloProvisioner.DataContainer(entries[id]).GetBlobClient(Core.Runs.BlobLayout.SiloPrivateUpdate(spec.RunId!, 1)).DownloadContentAsync()).Value.Content.ToArray());
            var w = Core.SecureAggregation.SiloMasking.Weight(long.Parse(kept.Metadata[Core.Runs.UpdateMetadata.Examples], System.Globalization.CultureInfo.InvariantCulture), spec.Privacy.SecureAggregation!.MaxExamples, equalWeights: false);
            var delta = Flat(kept).Zip(global, (u, g) => u - g).ToArray();
            var clip = Math.Min(1, 10 / Math.Sqrt(delta.Sum(d => d * d)));
            for (var k = 0; k < sum.Length; k++)
            {
                sum[k] += w * clip * delta[k];
            }

            total += w;
        }

        var error = global.Select((g, k) => Math.Abs(g + (sum[k] / total) - actual[k])).Max();
        var scale = actual.Max(Math.Abs);
        var bound = (10 * Core.SecureAggregation.MaskedUpdateCodec.Encoding(5).MaxSumError / total) + (2.0 / (1 << 24) * Math.Max(1, scale));
        log.WriteLine(System.FormattableString.Invariant($"secure aggregation through the silo backend: max |secure - plain FedAvg| = {error:E2}, bound {bound:E2}"));
        Assert.True(error <= bound, $"error {error} over bound {bound}");
    }

    private static double[] Flat(SafetensorsFile file) =>
        file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal).SelectMany(t => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray().Select(v => (double)v)).ToArray();

    // Every marker: each silo's train and test counts, every sum of two or more of them (train with train, test with test,
    // the bad fifth silo's sizes included in the totals), the marker values in the data, and the silos' credentials.
    private static string[] Markers(IEnumerable<string> credentials)
    {
        var counts = new[] { Sizes.Select(s => s.Train).ToArray(), Sizes.Select(s => s.Test).ToArray() };
        var sums = counts.SelectMany(c => Enumerable.Range(1, (1 << c.Length) - 1).Select(subset => Enumerable.Range(0, c.Length).Where(i => (subset & (1 << i)) != 0).Sum(i => c[i])));
        return sums.Append(Sizes.Sum(s => s.Train) + 15000).Append(Sizes.Sum(s => s.Test) + 10500)
            .Select(n => n.ToString(CultureInfo.InvariantCulture))
            .Append(FeatureMarker).Append(BadCellMarker).Concat(credentials).Distinct().ToArray();
    }

    private static string SafetensorsText(byte[] bytes)
    {
        var file = Safetensors.Parse(bytes);
        var header = string.Join(';', file.Metadata.Select(kv => kv.Key + "=" + kv.Value));
        if (file.Metadata.GetValueOrDefault("format") != Core.SecureAggregation.MaskedUpdateCodec.FormatName)
        {
            return header;
        }

        // The first and last values, where every vector's counts sit (an evaluation's first three, an analysis pass's rows
        // and first counts): an unmasked vector shows its counts there. Not all values: thousands of uniform 32-bit values
        // would match a five-digit marker by chance about once in a hundred runs.
        var values = Core.SecureAggregation.MaskedUpdateCodec.Parse(bytes).Update.Values;
        return header + "\n" + string.Join(',', values.Take(64).Concat(values.Skip(Math.Max(64, values.Length - 64))).Select(v => v.ToString(CultureInfo.InvariantCulture)));
    }

    private static string AnalysisId(string prefix) => prefix + "-eda";

    private const string AnalysisFile = "data/survey.csv";

    // Rows of each good silo's survey file: none of them, nor their total, is a marker (checked before the scan).
    private static readonly int[] AnalysisRows = [9001, 9040, 9077, 9118];

    private static TabularData Take(TabularData t, int rows) =>
        new(t.Features[..(rows * t.Columns)], t.Labels[..rows], rows, t.Columns, t.FeatureNames);

    // A hex run must hold a letter: a run of digits only is a number (a count at a fixed width is one), and stays.
    [GeneratedRegex("(?=[0-9-]*[a-fA-F])[0-9a-fA-F-]{12,}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)?")]
    private static partial Regex HexRuns();
}
