using System.Globalization;
using System.IO.Compression;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// The image and tensor formats through the durable orchestrator: the UCI digits (python3-sklearn) as PNG image folders in
/// label-skewed silos, and generated images as <c>.npz</c> and safetensors splits, each run against the same pixels in
/// another format. A format only changes how a silo reads its split, so the same pixels must train the same model.
/// </summary>
public sealed class DataFormatTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ImageFolder_DigitsAsPngsInLabelSkewedSilos_TrainTheDocumentedCnnExactlyAsTheirCsvRows()
    {
        var digits = ImageModelTests.LabelSkewedDigits(4, seed: 7);
        var spec = ImageModelTests.DigitsSpec();

        // The PNGs store the digits' levels 0-16 times 15 (0-240, exact in 8 bits), so a silo reads level × 15 / 255. The CSV
        // run gets those very values, in the image folder's row order (class, then file), so both runs see the same table.
        var csvSilos = digits.Select(s => new SiloDataset(s.SiloId, ImageOrder(s.Train), ImageOrder(s.Test))).ToArray();
        await using var h = await new Harness(csvSilos).StartAsync();

        // Label skew leaves some silo's test split without an image of some digit: the folders cannot say which class
        // ids they are by sorting alone, so the spec names them (data.classNames).
        Assert.Contains(digits, s => s.Test.ClassCounts(10).Contains(0));
        foreach (var silo in digits)
        {
            foreach (var (split, table) in new[] { ("train", silo.Train), ("test", silo.Test) })
            {
                for (var row = 0; row < table.Rows; row++)
                {
                    var levels = table.Features.AsSpan(row * 64, 64).ToArray().Select(v => (byte)(Level(v) * 15)).ToArray();
                    h.Blobs.Items[$"mem://{silo.SiloId}/images/{split}/{table.Labels[row]}/{row:D4}.png"] = TestPng.Gray(8, 8, levels);
                }
            }
        }

        // The CSV rows' run is the same run, so its first round is enough to show it: the same updates, model and accuracy.
        var csvSpec = spec with { RunId = "digits-csv-rows", Training = spec.Training with { Rounds = 1 } };
        var pngSpec = spec with
        {
            RunId = "digits-png",
            Data = spec.Data with { Format = DataFormats.ImageFolder, Train = "images/train", Test = "images/test", ClassNames = [.. Enumerable.Range(0, 10).Select(d => d.ToString(CultureInfo.InvariantCulture))] },
        };
        Assert.Empty(RunSpecValidator.Validate(pngSpec));

        // What a silo reads from the PNGs is, value for value, the CSV table, and the original digits up to the factor 15 / 16.
        var cache = new SiloDataCache();
        foreach (var (silo, csv) in digits.Zip(csvSilos))
        {
            var storage = h.Backend.Storage(silo.SiloId);
            var fromPng = await cache.ReadAsync(storage, pngSpec.Data, "images/train", 64, default);
            Assert.True(fromPng.ContentEquals(await cache.ReadAsync(storage, csvSpec.Data, "data/train.csv", 64, default)), $"{silo.SiloId}: the PNG split differs from its CSV rows");
            Assert.Equal(ImageOrder(silo.Train).Labels, fromPng.Labels);
            var original = silo.Train.Features.Chunk(64).Zip(silo.Train.Labels).Select((r, i) => (r.First, r.Second, i)).OrderBy(r => r.Second).ThenBy(r => r.i).SelectMany(r => r.First).ToArray();
            Assert.Equal(original.Select(v => Level(v) * 15), fromPng.Features.Select(v => (int)Math.Round(v * 255)));
            Assert.True(fromPng.ContentEquals(await cache.ReadAsync(storage, pngSpec.Data, "images/train", 64, default)));
        }

        var runs = await Task.WhenAll(h.RunAsync(csvSpec), h.RunAsync(pngSpec));
        Assert.All(runs, meta => Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage));
        var csvRun = await h.Store.ListAsync("checkpoints", csvSpec.RunId!, default);
        var pngRun = await h.Store.ListAsync("checkpoints", pngSpec.RunId!, default);
        var accuracy = pngRun[^1].Metrics.EvalAccuracy!.Value;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"digits as PNG image folders, 4 label-skewed silos: federated cnn {accuracy:P1} after {pngRun.Count - 1} rounds; round 1 {pngRun[1].Metrics.EvalAccuracy:P1}, from the same pixels as CSV rows {csvRun[1].Metrics.EvalAccuracy:P1}"));
        output.WriteLine("accuracy per round: " + string.Join(", ", pngRun.Skip(1).Select(m => m.Metrics.EvalAccuracy!.Value.ToString("P1", CultureInfo.InvariantCulture))));

        Assert.Equal(2, csvRun.Count);
        Assert.Equal(csvRun[1].Metrics.EvalAccuracy, pngRun[1].Metrics.EvalAccuracy);
        await AssertSameTrainingAsync(h, csvRun, pngRun.Take(2).ToArray());
        Assert.True(accuracy >= 0.9, $"the cnn reached {accuracy:P1} on the PNG digits");
        Assert.True(pngRun[1].Metrics.EvalAccuracy < accuracy, "the accuracy did not improve over the rounds");
    }

    [Fact]
    public async Task NpzAndSafetensors_GeneratedImagesOfBars_TrainTheSameCnn()
    {
        // Three silos of 8×8 images of four classes, each mostly its own class; uint8 in the .npz, float32 / 255 in safetensors.
        var silos = Enumerable.Range(0, 3).Select(s =>
        {
            long Label(Random random) => random.NextDouble() < 0.7 ? s : random.Next(4);
            return (Id: $"bars-{s + 1}", Train: Bars(160, 10 + s, Label), Test: Bars(60, 20 + s, Label));
        }).ToArray();
        var datasets = silos.Select(s => new SiloDataset(s.Id, Table(s.Train), Table(s.Test))).ToArray();
        await using var h = await new Harness(datasets).StartAsync();
        foreach (var (silo, data) in silos.Zip(datasets))
        {
            foreach (var (split, pixels, table) in new[] { ("train", silo.Train, data.Train), ("test", silo.Test, data.Test) })
            {
                h.Blobs.Items[$"mem://{silo.Id}/arrays/{split}.npz"] = Npz(
                    ("x", Npy.Serialize("|u1", [pixels.Labels.Length, 1, 8, 8], pixels.Pixels)),
                    ("y", Npy.Serialize("<i8", [pixels.Labels.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels.Labels.AsSpan()))));
                h.Blobs.Items[$"mem://{silo.Id}/arrays/{split}.safetensors"] = TensorDataWriter.ToSafetensors(table, [1, 8, 8]);
            }
        }

        var model = new ModelSpec
        {
            Architecture = ModelArchitectures.Convolutional,
            Inputs = 64,
            Shape = [1, 8, 8],
            Layers = [new LayerSpec { Type = "conv2d", Filters = 4, Kernel = 3, Padding = 1 }, new LayerSpec { Type = "relu" }, new LayerSpec { Type = "maxpool2d", Kernel = 2 }],
        };
        RunSpec Spec(string format) => new()
        {
            RunId = "bars-" + format,
            Model = model,
            Data = new DataSpec { Format = format, Train = $"arrays/train.{format}", Test = $"arrays/test.{format}", Classes = 4 },
            Training = new TrainingSpec { Rounds = 2, BatchSize = 32, LearningRate = 0.02, Optimizer = Optimizers.Adam, Seed = 3 },
            Silos = [.. silos.Select(s => s.Id)],
        };
        var (npz, safetensors) = (Spec(DataFormats.Npz), Spec(DataFormats.Safetensors));
        Assert.Empty(RunSpecValidator.Validate(npz));

        // The uint8 archive is read as value / 255: the very table the float32 file holds.
        var storage = h.Backend.Storage("bars-2");
        var fromNpz = await new SiloDataCache().ReadAsync(storage, npz.Data, npz.Data.Test, 64, default);
        Assert.True(fromNpz.ContentEquals(datasets[1].Test with { FeatureNames = TensorDataReader.FeatureNames(64) }));
        Assert.True(fromNpz.ContentEquals(await new SiloDataCache().ReadAsync(storage, safetensors.Data, safetensors.Data.Test, 64, default)));

        var runs = await Task.WhenAll(h.RunAsync(npz), h.RunAsync(safetensors));
        Assert.All(runs, meta => Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage));
        var npzRun = await h.Store.ListAsync("checkpoints", npz.RunId!, default);
        var safetensorsRun = await h.Store.ListAsync("checkpoints", safetensors.RunId!, default);
        var accuracy = npzRun[^1].Metrics.EvalAccuracy!.Value;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bars, 3 label-skewed silos: cnn {accuracy:P1} from .npz (uint8), {safetensorsRun[^1].Metrics.EvalAccuracy:P1} from safetensors (float32)"));

        await AssertSameTrainingAsync(h, npzRun, safetensorsRun);
        Assert.True(accuracy >= 0.95, $"the cnn reached {accuracy:P1} on the bars");
    }

    [Fact]
    public async Task ImageFolder_ClassMissingInASilo_FailsThatSiloNamingTheFolders()
    {
        var data = Data.Take(2).ToArray();
        await using var h = await new Harness(data).StartAsync();
        foreach (var (silo, classes) in new[] { (data[0].SiloId, 4), (data[1].SiloId, 3) })
        {
            foreach (var split in new[] { "train", "test" })
            {
                for (var c = 0; c < classes; c++)
                {
                    h.Blobs.Items[$"mem://{silo}/img/{split}/class-{c}/0.png"] = TestPng.Gray(2, 2, [(byte)c, 0, 0, 0]);
                }
            }
        }

        var spec = Spec("imagefolder-missing-class", rounds: 1) with
        {
            Model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 },
            Data = new DataSpec { Format = DataFormats.ImageFolder, Train = "img/train", Test = "img/test", Classes = 4 },
            Silos = [.. data.Select(d => d.SiloId)],
            Participation = new ParticipationSpec { FailurePolicy = FailurePolicies.Strict },
        };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains(data[1].SiloId, meta.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        var manifests = await h.Store.ListAsync("checkpoints", spec.RunId!, default);
        Assert.DoesNotContain(manifests, m => m.Round > 0);
        var ex = await Assert.ThrowsAsync<Core.Silos.DataValidationException>(() => new SiloDataCache().ReadAsync(h.Backend.Storage(data[1].SiloId), spec.Data, "img/train", 4, default));
        Assert.Contains("there are 3 class folders ('class-0', 'class-1', 'class-2'), but data.classes is 4", ex.Message, StringComparison.Ordinal);
        Assert.Contains("needs data.classNames", ex.Message, StringComparison.Ordinal);
    }

    // Every silo sent the same update in every round, and the final models hold the same weights (their files differ only
    // in the run id they carry).
    private static async Task AssertSameTrainingAsync(Harness h, IReadOnlyList<Core.Runs.RoundManifest> a, IReadOnlyList<Core.Runs.RoundManifest> b)
    {
        Assert.Equal(a.Count, b.Count);
        Assert.Equal(a.Select(m => string.Join(",", m.Participants.Select(p => p.UpdateSha256))), b.Select(m => string.Join(",", m.Participants.Select(p => p.UpdateSha256))));
        var (first, second) = (Core.Tensors.Safetensors.Parse(await h.Store.ReadModelAsync(a[^1].Model, default)), Core.Tensors.Safetensors.Parse(await h.Store.ReadModelAsync(b[^1].Model, default)));
        Assert.Equal(first.Tensors.Select(t => (t.Name, Core.Hashing.Sha256Hex(t.Data.Span))), second.Tensors.Select(t => (t.Name, Core.Hashing.Sha256Hex(t.Data.Span))));
    }

    // A digit's level 0-16 from its scaled value (level / 16, exact in float32).
    private static int Level(float scaled) => (int)Math.Round(scaled * 16);

    // The rows in an image folder's order (class, then file named by row index), pixels as the PNGs hold them (level × 15 / 255).
    private static TabularData ImageOrder(TabularData table)
    {
        var rows = Enumerable.Range(0, table.Rows).OrderBy(r => table.Labels[r]).ThenBy(r => r).ToArray();
        var features = rows.SelectMany(r => table.Features.AsSpan(r * table.Columns, table.Columns).ToArray().Select(v => (Level(v) * 15) / 255f)).ToArray();
        return new TabularData(features, [.. rows.Select(r => table.Labels[r])], table.Rows, table.Columns, table.FeatureNames);
    }

    // 8×8 grayscale images: class k is a bright bar on rows 2k and 2k + 1 over a noisy background.
    private static (byte[] Pixels, long[] Labels) Bars(int count, int seed, Func<Random, long> label)
    {
        var random = new Random(seed);
        var labels = new long[count];
        var pixels = new byte[count * 64];
        for (var i = 0; i < count; i++)
        {
            labels[i] = label(random);
            for (var p = 0; p < 64; p++)
            {
                var bar = p / 16 == labels[i];
                pixels[(i * 64) + p] = (byte)(bar ? random.Next(150, 256) : random.Next(0, 110));
            }
        }

        return (pixels, labels);
    }

    private static TabularData Table((byte[] Pixels, long[] Labels) images) =>
        new([.. images.Pixels.Select(b => b / 255f)], images.Labels, images.Labels.Length, 64, [.. Enumerable.Range(0, 64).Select(i => "p" + i.ToString(CultureInfo.InvariantCulture))]);

    private static byte[] Npz(params (string Name, byte[] Npy)[] arrays)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, npy) in arrays)
            {
                using var entry = zip.CreateEntry(name + ".npy", CompressionLevel.Fastest).Open();
                entry.Write(npy);
            }
        }

        return buffer.ToArray();
    }
}
