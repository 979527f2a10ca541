using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.LocalHost.Plots;
using FederatedFunctions.LocalHost.Tests.Plots;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Configuration;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// <c>fl plot</c> and <c>fl predict</c> as the README runs them, on a real run (three silos on Azurite, standardized
/// features): the charts' points are the manifests' values, and the model scores the silos' own test rows exactly as
/// federated evaluation scored them.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ResultCommandsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private const string Container = "results-checkpoints";
    private static readonly string[] Silos = ["res-silo-1", "res-silo-2", "res-silo-3"];
    private readonly TempDirectory home = new();
    private IReadOnlyList<SiloDataset> data = [];
    private IConfiguration silos = new ConfigurationBuilder().Build();

    public async Task InitializeAsync()
    {
        // Distinct test sizes, so that the silos' mean is not the rows' mean by accident of equal weights.
        data = SyntheticData.Generate(new SyntheticOptions(Silos.Length, 4, 8, 300, 120, 0.5, 21))
            .Select((d, i) => d with { SiloId = Silos[i], Test = Head(d.Test, 60 + (23 * i)) })
            .ToArray();
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, Silos, TimeSpan.FromHours(2));
        foreach (var d in data)
        {
            await LocalSiloProvisioner.WriteSplitsAsync(entries[d.SiloId], d);
        }

        silos = new ConfigurationBuilder().AddInMemoryCollection(LocalSiloProvisioner.ToSettings(entries)).Build();
    }

    public Task DisposeAsync()
    {
        home.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task PlotAndPredict_OnARealRun_ChartTheManifestsAndScoreAsFederatedEvaluation()
    {
        const string RunId = "res-run";
        await TrainAsync(RunId);
        var store = new BlobCheckpointStore(azurite.Blobs);
        var manifests = (await store.ListAsync(Container, RunId, default)).Where(m => m.Round > 0).OrderBy(m => m.Round).ToArray();
        Assert.Equal(3, manifests.Length);

        // fl plot: the charts, each a PNG of the chart size whose points lie where the manifests' values put them.
        var plots = Path.Combine(home.Path, "plots");
        var (code, stdout, stderr) = await Fl("plot", RunId, "--container", Container, "--out", plots, "--json");
        Assert.True(code == 0, stderr);
        using var plotJson = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
        Assert.Equal(["accuracy.png", "loss.png", "participation.png"], plotJson.RootElement.GetProperty("files").EnumerateArray().Select(f => Path.GetFileName(f.GetString())));
        Assert.Contains("no epsilon.png", stdout, StringComparison.Ordinal);
        // What each chart must show, built here from the manifests (not by the code under test).
        LineSeries Line(string name, Func<RoundManifest, double?> value) => new(name, manifests.Select(m => ((double)m.Round, value(m) ?? double.NaN)).ToArray());
        var charts = new[]
        {
            (File: "accuracy.png", Series: new[] { Line("evaluation accuracy", m => m.Metrics.EvalAccuracy) }, YRange: ((double, double)?)(0, 1)),
            ("loss.png", [Line("train loss", m => m.Metrics.TrainLoss), Line("evaluation loss", m => m.Metrics.EvalLoss)], null),
            ("participation.png", [Line("sampled", m => m.Sampled.Count), Line("took part", m => m.Participants.Count), Line("left out", m => m.Rejected.Count), Line("evaluation failed", m => m.EvaluationFailures.Count)], null),
        };
        foreach (var chart in charts)
        {
            var bytes = await File.ReadAllBytesAsync(Path.Combine(plots, chart.File));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
            var image = HistogramPngTests.Decode(bytes);
            Assert.Equal((LineChartPng.Width, LineChartPng.Height), (image.Width, image.Height));

            // The last series drawn at a point owns its pixel: check each point against the colours of its series or a later one there.
            for (var i = 0; i < chart.Series.Length; i++)
            {
                foreach (var m in manifests)
                {
                    var y = chart.Series[i].Points.Single(p => p.X == m.Round).Y;
                    var (px, py) = LineChartPng.PixelOf(chart.Series, chart.YRange, m.Round, y);
                    var owners = Enumerable.Range(i, chart.Series.Length - i).Where(j => Math.Abs(LineChartPng.PixelOf(chart.Series, chart.YRange, m.Round, chart.Series[j].Points.Single(p => p.X == m.Round).Y).Y - py) <= LineChartPng.MarkerSize / 2);
                    Assert.Contains(image.Pixels[(py * image.Width) + px], owners.Select(LineChartPng.ColourOf));
                }
            }
        }

        // fl predict on every silo's test rows: the federated evaluation's accuracy and loss of the latest round.
        var rows = Path.Combine(home.Path, "test.csv");
        await using (var file = File.Create(rows))
        {
            await TabularWriter.WriteCsvAsync(file, Concat(data.Select(d => d.Test).ToArray()), "label");
        }

        var predictions = Path.Combine(home.Path, "predictions.csv");
        (code, stdout, stderr) = await Fl("predict", "--run", RunId, "--container", Container, "--data", rows, "--out", predictions, "--json");
        Assert.True(code == 0, stderr);
        using var predicted = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
        var latest = manifests[^1].Metrics;
        Assert.Equal(latest.EvalExamples, predicted.RootElement.GetProperty("rows").GetInt64());
        Assert.Equal(Math.Round(latest.EvalAccuracy!.Value * latest.EvalExamples!.Value), predicted.RootElement.GetProperty("correct").GetInt64());
        Assert.Equal(latest.EvalAccuracy.Value, predicted.RootElement.GetProperty("accuracy").GetDouble(), 12);
        // The loss is a float32 sum per batch, and the batches are the silos' files there and one file here: equal to 1e-6.
        Assert.InRange(Math.Abs(predicted.RootElement.GetProperty("loss").GetDouble() - latest.EvalLoss!.Value), 0, 1e-6 * latest.EvalLoss.Value);
        var lines = await File.ReadAllLinesAsync(predictions);
        Assert.Equal("row,predicted,probability,label", lines[0]);
        Assert.Equal(latest.EvalExamples + 1, lines.Length);

        // The same rows without their label column: the same predictions, and no accuracy.
        var unlabeled = Path.Combine(home.Path, "unlabeled.csv");
        await File.WriteAllLinesAsync(unlabeled, (await File.ReadAllLinesAsync(rows)).Select(l => l[..l.LastIndexOf(',')]));
        var unlabeledOut = Path.Combine(home.Path, "unlabeled-predictions.csv");
        (code, stdout, stderr) = await Fl("predict", "--run", RunId, "--container", Container, "--data", unlabeled, "--out", unlabeledOut, "--json");
        Assert.True(code == 0, stderr);
        using (var json = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]))
        {
            Assert.False(json.RootElement.GetProperty("labeled").GetBoolean());
        }

        Assert.Equal(lines.Skip(1).Select(l => l.Split(',')[1]), (await File.ReadAllLinesAsync(unlabeledOut)).Skip(1).Select(l => l.Split(',')[1]));

        // Bad input is refused with the reason: a missing file, a column the run does not have, a tampered checkpoint.
        (code, _, stderr) = await Fl("predict", "--run", RunId, "--container", Container, "--data", Path.Combine(home.Path, "nothing.csv"));
        Assert.Equal(2, code);
        Assert.Contains("no such file", stderr, StringComparison.Ordinal);
        var renamed = Path.Combine(home.Path, "renamed.csv");
        await File.WriteAllLinesAsync(renamed, (await File.ReadAllLinesAsync(rows)).Select((l, i) => i == 0 ? l.Replace("x3", "x3b", StringComparison.Ordinal) : l));
        (code, _, stderr) = await Fl("predict", "--run", RunId, "--container", Container, "--data", renamed);
        Assert.Equal(2, code);
        Assert.Contains("x3", stderr, StringComparison.Ordinal);
        (code, _, stderr) = await Fl("predict", "--run", "res-ghost", "--container", Container, "--data", rows);
        Assert.Equal(2, code);

        var blob = azurite.Blobs.GetBlobContainerClient(Container).GetBlobClient(BlobLayout.Model(RunId, 3));
        var model = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        model[^1] ^= 0x01;
        await blob.UploadAsync(new BinaryData(model), overwrite: true);
        (code, _, stderr) = await Fl("predict", "--run", RunId, "--container", Container, "--data", rows);
        Assert.Equal(1, code);
        Assert.Contains("does not match its manifest", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Predict_AnImageFolder_ScoresItAsTheSilosEvaluationDid()
    {
        // Two silos of 3×3 grey images in two classes (bright top row or bright bottom row, with noise), as fl data put puts them.
        var random = new Random(7);
        string Folder(string name, int perClass)
        {
            var root = Path.Combine(home.Path, name);
            foreach (var (cls, row) in new[] { ("top", 0), ("bottom", 2) })
            {
                Directory.CreateDirectory(Path.Combine(root, cls));
                for (var i = 0; i < perClass; i++)
                {
                    var pixels = Enumerable.Range(0, 9).Select(k => (byte)((k / 3 == row ? 150 : 40) + random.Next(0, 90))).ToArray();
                    File.WriteAllBytes(Path.Combine(root, cls, $"{i}.png"), TestPng.Gray(3, 3, pixels));
                }
            }

            return root;
        }

        foreach (var (silo, tests) in new[] { (Silos[0], 7), (Silos[1], 11) })
        {
            var (put, _, error) = await Fl("data", "put", "--silo", silo, "--train", Folder(silo + "-train", 20), "--test", Folder(silo + "-test", tests));
            Assert.True(put == 0, error);
        }

        var spec = Path.Combine(home.Path, "images.json");
        await File.WriteAllTextAsync(spec, """
            { "runId": "res-images", "model": { "architecture": "mlp", "inputs": 9, "hidden": [8] },
              "data": { "format": "imagefolder", "train": "data/train", "test": "data/test", "classes": 2, "classNames": ["bottom", "top"] },
              "training": { "rounds": 2 }, "silos": ["res-silo-1", "res-silo-2"], "checkpoints": { "container": "results-checkpoints" } }
            """);
        var (code, _, stderr) = await Fl("train", "--spec", spec);
        Assert.True(code == 0, stderr);

        // Both silos' test images in one folder: 36 images, scored as the two silos' evaluations together.
        var all = Path.Combine(home.Path, "all-test");
        foreach (var silo in Silos[..2])
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(home.Path, silo + "-test"), "*.png", SearchOption.AllDirectories))
            {
                var cls = Path.GetFileName(Path.GetDirectoryName(file)!);
                Directory.CreateDirectory(Path.Combine(all, cls));
                File.Copy(file, Path.Combine(all, cls, silo + "-" + Path.GetFileName(file)));
            }
        }

        string stdout;
        (code, stdout, stderr) = await Fl("predict", "--run", "res-images", "--container", Container, "--data", all, "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
        var latest = (await new BlobCheckpointStore(azurite.Blobs).GetManifestAsync(Container, "res-images", 2, default))!.Metrics;
        Assert.Equal(36, json.RootElement.GetProperty("rows").GetInt32());
        Assert.Equal(latest.EvalExamples, 36);
        Assert.Equal(Math.Round(latest.EvalAccuracy!.Value * 36), json.RootElement.GetProperty("correct").GetInt64());
    }

    private async Task TrainAsync(string runId)
    {
        var spec = Path.Combine(home.Path, "spec.json");
        await File.WriteAllTextAsync(spec, JsonSerializer.Serialize(new
        {
            runId,
            model = new { architecture = "mlp", inputs = 8, hidden = new[] { 16 } },
            data = new { classes = 4, standardize = true, features = Enumerable.Range(0, 8).Select(i => "x" + i.ToString(CultureInfo.InvariantCulture)).ToArray() },
            training = new { rounds = 3 },
            silos = Silos,
            checkpoints = new { container = Container },
        }));
        var (code, _, stderr) = await Fl("train", "--spec", spec);
        Assert.True(code == 0, stderr);
    }

    private async Task<(int Code, string Out, string Err)> Fl(params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(FlProcess.Create(home.Path, azurite.ConnectionString, args).WithSilos(silos))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    private static TabularData Head(TabularData t, int rows) =>
        new(t.Features[..(rows * t.Columns)], t.Labels[..rows], rows, t.Columns, t.FeatureNames);

    private static TabularData Concat(IReadOnlyList<TabularData> tables) =>
        new(tables.SelectMany(t => t.Features).ToArray(), tables.SelectMany(t => t.Labels).ToArray(), tables.Sum(t => t.Rows), tables[0].Columns, tables[0].FeatureNames);
}
