using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Commands;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

public sealed class CliTests
{
    private static async Task<(int Code, string Out, string Err)> InvokeAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var root = FlCommands.Build(new CommandContext(output, error));
        var code = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("demo")]
    [InlineData("train")]
    [InlineData("experiment")]
    [InlineData("resume")]
    [InlineData("status")]
    [InlineData("checkpoints")]
    [InlineData("audit")]
    [InlineData("trainer")]
    [InlineData("aggregate")]
    [InlineData("model", "get")]
    [InlineData("data", "synth")]
    [InlineData("data", "put")]
    [InlineData("azurite", "stop")]
    [InlineData("serve")]
    [InlineData("recurring", "template")]
    [InlineData("recurring", "tick")]
    [InlineData("silo", "onboard")]
    [InlineData("analyze")]
    [InlineData("analysis")]
    public async Task Help_EveryCommand_DescribesItWithAnExample(params string[] command)
    {
        var (code, output, _) = await InvokeAsync([.. command, "--help"]);
        Assert.Equal(0, code);
        Assert.Contains("Example: fl " + string.Join(' ', command), output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Aggregate_TwoFiles_WritesTheExampleWeightedAverage()
    {
        using var dir = new TempDirectory();
        static NamedTensor T(params float[] v) => new("w", TensorDType.F32, [v.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
        var a = Path.Combine(dir.Path, "a.safetensors");
        var b = Path.Combine(dir.Path, "b.safetensors");
        var outFile = Path.Combine(dir.Path, "out.safetensors");
        await File.WriteAllBytesAsync(a, Safetensors.Serialize([T(1, 2)]));
        await File.WriteAllBytesAsync(b, Safetensors.Serialize([T(3, 4)]));

        var (code, output, error) = await InvokeAsync("aggregate", "--out", outFile, a + ":120", b + ":80");

        Assert.True(code == 0, error);
        Assert.Contains("200 examples", output, StringComparison.Ordinal);
        var result = Safetensors.Parse(await File.ReadAllBytesAsync(outFile)).Tensors.Single();
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(result.Data.Span).ToArray();
        Assert.Equal(1.8f, values[0], 5);
        Assert.Equal(2.8f, values[1], 5);
    }

    [Fact]
    public async Task Aggregate_BadArgument_FailsWithAClearError()
    {
        var (code, _, error) = await InvokeAsync("aggregate", "--out", "x.safetensors", "missing.safetensors:abc");
        Assert.Equal(2, code);
        Assert.Contains("FILE:EXAMPLES", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_InvalidSpec_ListsEveryViolationWithItsPath()
    {
        using var dir = new TempDirectory();
        var spec = Path.Combine(dir.Path, "bad.json");
        await File.WriteAllTextAsync(spec, """{"runId":"Bad_Id","training":{"rounds":0},"silos":["a/b"]}""");
        var (code, _, error) = await InvokeAsync("train", "--spec", spec);
        Assert.Equal(2, code);
        Assert.Contains("$.runId", error, StringComparison.Ordinal);
        Assert.Contains("$.training.rounds", error, StringComparison.Ordinal);
        Assert.Contains("$.silos[0]", error, StringComparison.Ordinal);
    }
}

/// <summary>Runs the real <c>fl</c> binary the way the README does, with shorter settings.</summary>
public sealed class DemoEndToEndTests
{
    private static Task<(int Code, string Out, string Err)> RunFlAsync(string home, params string[] args) =>
        FlProcess.RunAsync(home, storage: null, args);

    [Fact]
    public async Task Demo_ShortRun_PrintsEveryRoundAndEndsWithJson()
    {
        using var home = new TempDirectory();
        try
        {
            var (code, output, error) = await RunFlAsync(home.Path, "demo", "--rounds", "3", "--train-per-silo", "600", "--json");
            Assert.True(code == 0, $"exit {code}\n{output}\n{error}");

            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var round in new[] { "1", "2", "3" })
            {
                Assert.Contains(lines, l => l.StartsWith(round + " ", StringComparison.Ordinal) && l.Contains("4/4", StringComparison.Ordinal));
            }

            using var json = JsonDocument.Parse(lines[^1]);
            var root = json.RootElement;
            Assert.Equal(3, root.GetProperty("rounds").GetInt32());
            var runId = root.GetProperty("runId").GetString()!;
            Assert.StartsWith("demo-", runId, StringComparison.Ordinal);
            Assert.InRange(root.GetProperty("finalAccuracy").GetDouble(), 0.3, 1.0);
            Assert.EndsWith("/round-00003/model.safetensors", root.GetProperty("checkpoint").GetString(), StringComparison.Ordinal);
            Assert.Contains("Final accuracy:", output, StringComparison.Ordinal);

            // The checkpoints outlive the run: a second command lists them from blob storage.
            var (listCode, listing, listError) = await RunFlAsync(home.Path, "checkpoints", runId);
            Assert.True(listCode == 0, listError);
            Assert.Contains("(latest)", listing, StringComparison.Ordinal);
            Assert.Equal(5, listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header + rounds 0..3

            // The trained model out, as a file: the latest round's bytes, hashed as its manifest records them.
            var downloaded = Path.Combine(home.Path, "demo.safetensors");
            var (getCode, got, getError) = await RunFlAsync(home.Path, "model", "get", runId, "--out", downloaded, "--json");
            Assert.True(getCode == 0, $"exit {getCode}\n{got}\n{getError}");
            using var gotJson = JsonDocument.Parse(got.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            Assert.Equal(3, gotJson.RootElement.GetProperty("round").GetInt32());
            Assert.Equal(Core.Hashing.Sha256Hex(await File.ReadAllBytesAsync(downloaded)), gotJson.RootElement.GetProperty("sha256").GetString());
            Assert.Contains(gotJson.RootElement.GetProperty("sha256").GetString()![..12], listing.Split('\n').Single(l => l.Contains("(latest)", StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.Equal(4, Core.Tensors.Safetensors.Parse(await File.ReadAllBytesAsync(downloaded)).Tensors.Count); // the MLP 16→64→10: two weights, two biases
            var kept = await File.ReadAllBytesAsync(downloaded);
            var (missingCode, _, missingError) = await RunFlAsync(home.Path, "model", "get", runId, "--round", "9", "--out", downloaded);
            Assert.Equal(2, missingCode);
            Assert.Contains("no committed round 9", missingError, StringComparison.Ordinal);
            Assert.Equal(kept, await File.ReadAllBytesAsync(downloaded));
            var (unwritableCode, _, unwritableError) = await RunFlAsync(home.Path, "model", "get", runId, "--out", Path.Combine(home.Path, "no-such-folder", "m.safetensors"));
            Assert.Equal(1, unwritableCode);
            Assert.Contains("could not write", unwritableError, StringComparison.Ordinal);

            // --json keeps its promise with --verify: the last line is the audit report, verified.
            var (auditCode, auditOut, auditError) = await RunFlAsync(home.Path, "audit", runId, "--verify", "--json");
            Assert.True(auditCode == 0, $"exit {auditCode}\n{auditOut}\n{auditError}");
            using var audit = JsonDocument.Parse(auditOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            Assert.True(audit.RootElement.GetProperty("verification").GetProperty("isValid").GetBoolean());

            // Pretrained weights from outside: fl model put, then a run that starts from them on the demo's silos.
            var weights = Path.Combine(home.Path, "mlp.safetensors");
            var start = Ml.ModelFactory.InitialState(new Core.Specs.ModelSpec { Architecture = "mlp", Hidden = [64] }, 16, 10, seed: 77);
            await File.WriteAllBytesAsync(weights, Core.Tensors.Safetensors.Serialize(start, new Dictionary<string, string>()));
            var (putCode, put, putError) = await RunFlAsync(home.Path, "model", "put", "--file", weights, "--json");
            Assert.True(putCode == 0, $"exit {putCode}\n{put}\n{putError}");
            using var pretrained = JsonDocument.Parse(put.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            Assert.Equal("pretrained/mlp.safetensors", pretrained.RootElement.GetProperty("path").GetString());
            Assert.Equal(Core.Hashing.Sha256Hex(await File.ReadAllBytesAsync(weights)), pretrained.RootElement.GetProperty("sha256").GetString());
            var spec = Path.Combine(home.Path, "fine-tune.json");
            await File.WriteAllTextAsync(spec, $$"""
                { "runId": "fine-tune", "model": { "architecture": "mlp", "inputs": 16, "hidden": [64], "pretrained": {{pretrained.RootElement.GetRawText()}} },
                  "data": { "classes": 10 }, "training": { "rounds": 1 }, "silos": ["silo-1", "silo-2", "silo-3", "silo-4"] }
                """);
            var (trainCode, train, trainError) = await RunFlAsync(home.Path, "train", "--spec", spec, "--json");
            Assert.True(trainCode == 0, $"exit {trainCode}\n{train}\n{trainError}");

            // A TorchScript module, as torch.jit.save writes it: fl model put prints model.script, and a run trains it.
            var module = Path.Combine(home.Path, "net.pt");
            await File.WriteAllBytesAsync(module, TorchScriptWriter.Mlp([16, 32, 10], seed: 8));
            var (scriptCode, scriptPut, scriptError) = await RunFlAsync(home.Path, "model", "put", "--file", module, "--json");
            Assert.True(scriptCode == 0, $"exit {scriptCode}\n{scriptPut}\n{scriptError}");
            Assert.Contains("\"architecture\": \"torchscript\"", scriptPut, StringComparison.Ordinal);
            using var script = JsonDocument.Parse(scriptPut.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            Assert.Equal("scripts/net.pt", script.RootElement.GetProperty("path").GetString());
            await File.WriteAllTextAsync(spec, $$"""
                { "runId": "byo-script", "model": { "architecture": "torchscript", "inputs": 16, "script": {{script.RootElement.GetRawText()}} },
                  "data": { "classes": 10 }, "training": { "rounds": 2 }, "silos": ["silo-1", "silo-2", "silo-3", "silo-4"] }
                """);
            var (refusedCode, _, refusedError) = await RunFlAsync(home.Path, "train", "--spec", spec);
            Assert.Equal(1, refusedCode);
            Assert.Contains("ApprovedScripts", refusedError, StringComparison.Ordinal);
            var approve = FlProcess.Create(home.Path, null, "train", "--spec", spec, "--json");
            approve.Environment["FL_Trust__ApprovedScripts__0"] = script.RootElement.GetProperty("sha256").GetString();
            using var approved = System.Diagnostics.Process.Start(approve)!;
            var byoOut = approved.StandardOutput.ReadToEndAsync();
            var byoErr = approved.StandardError.ReadToEndAsync();
            await approved.WaitForExitAsync();
            var (byoCode, byo, byoError) = (approved.ExitCode, await byoOut, await byoErr);
            Assert.True(byoCode == 0, $"exit {byoCode}\n{byo}\n{byoError}");
            Assert.Contains("torchscript [16→10, scripts/net.pt]", byo, StringComparison.Ordinal);
            using var byoResult = JsonDocument.Parse(byo.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            Assert.InRange(byoResult.RootElement.GetProperty("finalAccuracy").GetDouble(), 0.3, 1.0);

            var (notWeights, _, notWeightsError) = await RunFlAsync(home.Path, "model", "put", "--file", spec);
            Assert.Equal(2, notWeights);
            Assert.Contains("is not a safetensors file", notWeightsError, StringComparison.Ordinal);
        }
        finally
        {
            await RunFlAsync(home.Path, "azurite", "stop");
        }
    }

    [Fact]
    public async Task Experiment_OnASyntheticSplit_ComparesEveryArmInATable_AndWritesResultsAndPlots()
    {
        using var home = new TempDirectory();
        try
        {
            var spec = Path.Combine(home.Path, "experiment.json");
            await File.WriteAllTextAsync(spec, """
                { "experimentId": "cli-exp",
                  "dataset": { "source": "synthetic", "silos": 3, "alpha": 0.5, "trainPerSilo": 300, "testPerSilo": 100, "classes": 4, "features": 8, "seed": 3 },
                  "run": { "model": { "architecture": "mlp", "inputs": 8, "hidden": [16] }, "data": { "classes": 4 },
                           "training": { "rounds": 3, "batchSize": 32, "learningRate": 0.1, "seed": 11 } },
                  "strategies": [ { "name": "fedavg" }, { "label": "prox", "name": "fedprox", "proximalMu": 0.1 }, { "name": "fedmedian" } ],
                  "targetAccuracy": 0.5 }
                """);
            var outDir = Path.Combine(home.Path, "out");

            var (code, output, error) = await RunFlAsync(home.Path, "experiment", "--spec", spec, "--out", outDir, "--json");

            Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
            string[] arms = ["centralized", "cli-exp-1 alone", "cli-exp-2 alone", "cli-exp-3 alone", "fedavg", "prox", "fedmedian"];
            var table = await File.ReadAllTextAsync(Path.Combine(outDir, "table.txt"));
            var rows = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(arms.Length + 1, rows.Length);
            Assert.Contains("to 50 %", rows[0], StringComparison.Ordinal);
            Assert.Equal(arms, rows.Skip(1).Select(r => r[..r.IndexOf("  ", StringComparison.Ordinal)].Trim()));
            Assert.Contains(table, output, StringComparison.Ordinal);

            using var json = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
            var results = json.RootElement.GetProperty("arms").EnumerateArray().ToArray();
            Assert.Equal(arms, results.Select(a => a.GetProperty("name").GetString()));
            Assert.All(results, a => Assert.InRange(a.GetProperty("finalAccuracy").GetDouble(), 0.25, 1.0));
            var federated = results.Where(a => a.GetProperty("kind").GetString() == "federated").ToArray();
            Assert.Equal(3, federated.Length);

            // Each federated arm is a real run: its checkpoints are there, and its last round's accuracy is the table's.
            var fedavg = federated[0].GetProperty("runId").GetString()!;
            Assert.StartsWith("cli-exp-fedavg-", fedavg, StringComparison.Ordinal);
            var (listCode, listing, listError) = await RunFlAsync(home.Path, "checkpoints", fedavg);
            Assert.True(listCode == 0, listError);
            Assert.Contains("(latest)", listing, StringComparison.Ordinal);
            var saved = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(outDir, "results.json"))).RootElement.GetProperty("arms");
            Assert.Equal(3, saved[4].GetProperty("rounds").GetArrayLength());

            foreach (var png in new[] { "accuracy.png", "loss.png" })
            {
                var (width, height, _) = Plots.HistogramPngTests.Decode(await File.ReadAllBytesAsync(Path.Combine(outDir, png)));
                Assert.Equal((LocalHost.Plots.LineChartPng.Width, LocalHost.Plots.LineChartPng.Height), (width, height));
            }

            // An experiment the parser refuses never starts: every problem is listed with its path.
            await File.WriteAllTextAsync(spec, """
                { "experimentId": "cli-exp", "dataset": { "source": "digits", "silos": 3, "alpha": 1 },
                  "run": { "model": { "architecture": "mlp", "inputs": 64 }, "data": { "classes": 10 }, "silos": ["a"] },
                  "strategies": [ { "name": "fedprox", "proximalMu": -1 } ] }
                """);
            var (bad, _, badError) = await RunFlAsync(home.Path, "experiment", "--spec", spec);
            Assert.Equal(2, bad);
            Assert.Contains("$.dataset.alpha", badError, StringComparison.Ordinal);
            Assert.Contains("$.run.silos", badError, StringComparison.Ordinal);
        }
        finally
        {
            await RunFlAsync(home.Path, "azurite", "stop");
        }
    }

    [Fact]
    public async Task Analyze_OnSynthesizedSilos_PrintsATableEndsWithJson_AndTheResultReadsBack()
    {
        using var home = new TempDirectory();
        try
        {
            var (synth, _, synthError) = await RunFlAsync(home.Path, "data", "synth", "--silos", "3", "--seed", "5");
            Assert.True(synth == 0, synthError);
            var spec = Path.Combine(home.Path, "eda.json");
            await File.WriteAllTextAsync(spec, """
                { "analysisId": "cli-eda", "silos": ["silo-1", "silo-2", "silo-3"], "data": { "path": "data/train.csv" },
                  "features": [ { "column": "x0", "statistics": ["count", "mean", "stddev", "histogram"], "histogram": { "bins": 4 } },
                                { "column": "label", "statistics": ["valueCounts"] } ],
                  "privacy": { "minCount": 5 } }
                """);

            var (code, output, error) = await RunFlAsync(home.Path, "analyze", "--spec", spec, "--json");
            Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
            Assert.Contains("Analysis cli-eda: 3 silos", output, StringComparison.Ordinal);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            using var json = JsonDocument.Parse(lines[^1]);
            var x0 = json.RootElement.GetProperty("results").GetProperty("x0");
            var rows = json.RootElement.GetProperty("rows").GetInt64();
            Assert.Equal(rows, x0.GetProperty("count").GetInt64());
            Assert.Equal(rows, x0.GetProperty("histogram").GetProperty("counts").EnumerateArray().Sum(c => c.GetInt64()));
            Assert.Equal(["silo-1", "silo-2", "silo-3"], json.RootElement.GetProperty("silos").EnumerateArray().Select(s => s.GetString()));

            var plots = Path.Combine(home.Path, "plots");
            var (readCode, readBack, readError) = await RunFlAsync(home.Path, "analysis", "cli-eda", "--json", "--png", plots);
            Assert.True(readCode == 0, readError);
            Assert.Equal(lines[^1], readBack.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1]);
            Assert.Equal(["x0.png"], Directory.GetFiles(plots).Select(Path.GetFileName));
            var (width, height, _) = Plots.HistogramPngTests.Decode(await File.ReadAllBytesAsync(Path.Combine(plots, "x0.png")));
            Assert.Equal((640, 400), (width, height));

            // Every partial that left a silo is in the audit log, which verifies against the analysis's manifest.
            var (auditCode, audit, auditError) = await RunFlAsync(home.Path, "audit", "cli-eda", "--verify");
            Assert.True(auditCode == 0, $"exit {auditCode}\n{audit}\n{auditError}");
            Assert.Contains("Verified:", audit, StringComparison.Ordinal);
            Assert.Equal(3 * 2, audit.Split('\n').Count(l => l.Contains("analysis-partial", StringComparison.Ordinal)));

            var (bad, _, badError) = await RunFlAsync(home.Path, "analyze", "--spec", spec.Replace("eda.json", "missing.json", StringComparison.Ordinal));
            Assert.Equal(2, bad);
            Assert.Contains("does not exist", badError, StringComparison.Ordinal);
        }
        finally
        {
            await RunFlAsync(home.Path, "azurite", "stop");
        }
    }
}
