using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using FederatedFunctions.Api;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Plots;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary><c>fl plot</c> and <c>fl predict</c>: a run's results as charts, and its model on new rows.</summary>
public static class ResultCommands
{
    /// <summary><c>fl plot RUN [--out DIR]</c>.</summary>
    public static Command Plot(CommandContext ctx, Option<bool> jsonOption)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var run = new Argument<string>("run") { Description = "Run id." };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Where to write the PNG files; .fl/plots/<run> by default." };
        var container = FlCommands.CheckpointContainerOption();
        var cmd = new Command(
            "plot",
            "Draws a run's round manifests as PNG charts: accuracy.png (evaluation accuracy per round), loss.png (train and evaluation loss), participation.png (silos sampled, taking part, left out, failing evaluation) and, with differential privacy, epsilon.png (ε spent after each round).\n" +
            "Example: fl plot demo-20261201-101500 --out plots")
        { run, outDir, container, jsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var runId = pr.GetValue(run)!;
            var store = await FlCommands.CheckpointStoreAsync(ct).ConfigureAwait(false);
            var manifests = await store.ListAsync(pr.GetValue(container)!, runId, ct).ConfigureAwait(false);
            IReadOnlyList<RunPlots.Chart> charts;
            try
            {
                charts = RunPlots.Charts(runId, manifests);
            }
            catch (ArgumentException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message} (container '{pr.GetValue(container)}')").ConfigureAwait(false);
                return 2;
            }

            var directory = pr.GetValue(outDir)?.FullName ?? Path.Combine(CommandContext.Workspace().Home, "plots", runId);
            var files = new List<string>();
            try
            {
                Directory.CreateDirectory(directory);
                foreach (var chart in charts)
                {
                    var file = Path.Combine(directory, chart.File);
                    await File.WriteAllBytesAsync(file, chart.Png(), ct).ConfigureAwait(false);
                    files.Add(file);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await ctx.Error.WriteLineAsync($"error: could not write the charts to {directory}: {ex.Message}").ConfigureAwait(false);
                return 1;
            }

            var rounds = manifests.Count(m => m.Round > 0);
            await ctx.Output.WriteLineAsync($"Drew {rounds} rounds of {runId}:").ConfigureAwait(false);
            foreach (var file in files)
            {
                await ctx.Output.WriteLineAsync("  " + file).ConfigureAwait(false);
            }

            if (charts.All(c => c.File != "epsilon.png"))
            {
                await ctx.Output.WriteLineAsync("  (no epsilon.png: the run has no differential privacy)").ConfigureAwait(false);
            }

            if (pr.GetValue(jsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(new { runId, rounds, files }, CommandContext.Json)).ConfigureAwait(false);
            }

            return 0;
        });
        return cmd;
    }

    /// <summary><c>fl predict --run RUN --data FILE</c>.</summary>
    public static Command Predict(CommandContext ctx, Option<bool> jsonOption)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var run = new Option<string>("--run") { Description = "Run id.", Required = true };
        var round = new Option<int?>("--round") { Description = "A committed round; default the run's latest." };
        var data = new Option<string>("--data") { Description = "A CSV file (the run's columns; the label column optional), a Parquet file (with the label column), a safetensors or .npz file of x and y, or an image folder ({class}/{file}.png).", Required = true };
        var output = new Option<FileInfo?>("--out") { Description = "Write one CSV row per input row (row, predicted, probability, label) here; without it the first rows are printed." };
        var container = FlCommands.CheckpointContainerOption();
        var cmd = new Command(
            "predict",
            "Scores rows locally with a run's trained model: downloads the round's checkpoint (checked against its manifest), reads the rows as the silos read their test split (the run's data spec and standardization), and prints or writes each row's predicted class and probability; with labels, also the accuracy and mean loss, as federated evaluation computes them.\n" +
            "Example: fl predict --run demo-20261201-101500 --data rows.csv --out predictions.csv")
        { run, round, data, output, container, jsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var store = await FlCommands.CheckpointStoreAsync(ct).ConfigureAwait(false);
            RunPredictor.Prediction p;
            try
            {
                p = await RunPredictor.PredictAsync(store, pr.GetValue(container)!, pr.GetValue(run)!, pr.GetValue(round), pr.GetValue(data)!, ct).ConfigureAwait(false);
            }
            catch (DataValidationException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 2;
            }
            catch (Exception ex) when (FlCommands.IsCheckpointFailure(ex))
            {
                return await FlCommands.CheckpointFailureAsync(ctx, ex, "nothing was scored").ConfigureAwait(false);
            }

            var rows = p.Predicted.Length;
            string Row(int i) => string.Create(CultureInfo.InvariantCulture, $"{i},{p.Predicted[i]},{p.Probabilities[(i * p.Classes) + p.Predicted[i]]:R}{(p.Labels is null ? string.Empty : "," + p.Labels[i])}");
            var header = "row,predicted,probability" + (p.Labels is null ? string.Empty : ",label");
            if (pr.GetValue(output) is { } file)
            {
                var text = new StringBuilder(header).Append('\n');
                for (var i = 0; i < rows; i++)
                {
                    text.Append(Row(i)).Append('\n');
                }

                try
                {
                    await File.WriteAllTextAsync(file.FullName, text.ToString(), ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    await ctx.Error.WriteLineAsync($"error: could not write {file.FullName}: {ex.Message}").ConfigureAwait(false);
                    return 1;
                }
            }
            else
            {
                await ctx.Output.WriteLineAsync(header).ConfigureAwait(false);
                for (var i = 0; i < Math.Min(rows, 20); i++)
                {
                    await ctx.Output.WriteLineAsync(Row(i)).ConfigureAwait(false);
                }

                if (rows > 20)
                {
                    await ctx.Output.WriteLineAsync($"… {rows - 20} more rows (--out FILE writes them all)").ConfigureAwait(false);
                }
            }

            await ctx.Output.WriteLineAsync(p.Score is { } s
                ? string.Create(CultureInfo.InvariantCulture, $"Scored {rows} rows with round {p.Round} of {p.RunId}: accuracy {p.Accuracy:0.0000} ({s.Correct}/{s.Examples}), mean loss {s.Loss:0.0000}.")
                : $"Scored {rows} rows with round {p.Round} of {p.RunId} (no labels: no accuracy).").ConfigureAwait(false);
            if (pr.GetValue(jsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(
                    new { runId = p.RunId, round = p.Round, rows, labeled = p.Labels is not null, correct = p.Score?.Correct, accuracy = p.Accuracy, loss = p.Score?.Loss, output = pr.GetValue(output)?.FullName },
                    CommandContext.Json)).ConfigureAwait(false);
            }

            return 0;
        });
        return cmd;
    }
}
