using System.CommandLine;
using System.Globalization;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml.Experiments;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary><c>fl experiment</c>: centralized, single-silo and federated training side by side on one simulated split.</summary>
public static class ExperimentCommands
{
    /// <summary>Builds the command.</summary>
    public static Command Experiment(CommandContext ctx, Option<string> backendOption, Option<bool> jsonOption)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var specFile = new Option<FileInfo>("--spec") { Description = "Experiment file (JSON); see docs/experiments.md.", Required = true };
        var outDir = new Option<DirectoryInfo?>("--out") { Description = "Where to write table.txt, results.json, accuracy.png and loss.png; .fl/experiments/<id>-<time> by default." };
        var compute = new Option<string>("--compute") { Description = "Where the silos' steps run: 'local' (default) or 'process'.", DefaultValueFactory = _ => Adapters.Silos.SiloComputeKinds.Local };
        compute.AcceptOnlyFromAmong(Adapters.Silos.SiloComputeKinds.Local, Adapters.Silos.SiloComputeKinds.Process);
        var cmd = new Command(
            "experiment",
            "Simulates a split over local silos and trains on it, one arm after another: centrally on the union, each silo alone, and federated with each listed strategy; prints a comparison table and writes accuracy-per-round plots.\n" +
            "Example: fl experiment --spec docs/examples/digits-experiment.json")
        { specFile, outDir, compute, backendOption, jsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var file = pr.GetValue(specFile)!;
            if (!file.Exists)
            {
                await ctx.Error.WriteLineAsync($"error: experiment file '{file.FullName}' does not exist").ConfigureAwait(false);
                return 2;
            }

            var (spec, errors) = ExperimentSpecParser.Parse(await File.ReadAllTextAsync(file.FullName, ct).ConfigureAwait(false));
            if (spec is null)
            {
                await ctx.Error.WriteLineAsync($"error: {file.Name} is not a valid experiment:").ConfigureAwait(false);
                foreach (var e in errors)
                {
                    await ctx.Error.WriteLineAsync($"  {e}").ConfigureAwait(false);
                }

                return 2;
            }

            var ws = CommandContext.Workspace();
            var directory = pr.GetValue(outDir)?.FullName
                ?? Path.Combine(ws.Home, "experiments", $"{spec.ExperimentId}-{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            ExperimentOutcome outcome;
            try
            {
                outcome = await new ExperimentRunner(ctx.Output).RunAsync(spec, ws, storage, pr.GetValue(backendOption)!, pr.GetValue(compute)!, directory, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RunFailedException or FileNotFoundException or InvalidDataException)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 1;
            }

            await ctx.Output.WriteLineAsync().ConfigureAwait(false);
            await ctx.Output.WriteAsync(outcome.Table).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"Written to {outcome.Directory}: table.txt, results.json, accuracy.png, loss.png").ConfigureAwait(false);
            if (pr.GetValue(jsonOption))
            {
                await ctx.Output.WriteLineAsync(System.Text.Json.JsonSerializer.Serialize(
                    new
                    {
                        experimentId = outcome.ExperimentId,
                        directory = outcome.Directory,
                        arms = outcome.Arms.Select(a => new { name = a.Name, kind = a.Kind, finalAccuracy = a.Failure is null ? a.FinalAccuracy : (double?)null, bestAccuracy = a.Failure is null ? a.BestAccuracy : (double?)null, seconds = a.Seconds, runId = a.RunId, failure = a.Failure }),
                    })).ConfigureAwait(false);
            }

            return outcome.Arms.Any(a => a.Failure is not null) ? 1 : 0;
        });
        return cmd;
    }
}
