using System.CommandLine;
using System.Text.Json;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary><c>fl analyze</c> and <c>fl analysis</c>: federated analysis through the durable orchestrator, on the registered silos.</summary>
public static class AnalysisCommands
{
    private static readonly Option<bool> Json = new("--json") { Description = "End with one line of JSON: the result (analysisId, silos, results keyed by column)." };

    private static readonly Option<DirectoryInfo> Png = new("--png") { Description = "Also write each histogram as a PNG bar chart into this folder: {column}.png." };

    /// <summary><c>fl analyze --spec FILE</c>.</summary>
    public static Command Analyze(CommandContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var specFile = new Option<FileInfo>("--spec") { Description = "Analysis spec (JSON); see docs/federated-analysis.md.", Required = true };
        var cmd = new Command(
            "analyze",
            "Validates an analysis spec and runs it through the durable orchestrator on the registered silos: statistics computed in each silo and combined, small cells suppressed. The result is stored beside the checkpoints.\n" +
            "Example: fl analyze --spec eda.json --json --png plots")
        { specFile, Json, Png };
        cmd.SetAction(async (pr, ct) =>
        {
            var file = pr.GetValue(specFile)!;
            if (!file.Exists)
            {
                await ctx.Error.WriteLineAsync($"error: spec file '{file.FullName}' does not exist").ConfigureAwait(false);
                return 2;
            }

            var parsed = AnalysisSpecParser.Parse(await File.ReadAllTextAsync(file.FullName, ct).ConfigureAwait(false));
            if (!parsed.IsValid)
            {
                await ctx.Error.WriteLineAsync($"error: {file.Name} is not a valid analysis spec:").ConfigureAwait(false);
                foreach (var e in parsed.Errors)
                {
                    await ctx.Error.WriteLineAsync($"  {e}").ConfigureAwait(false);
                }

                return 2;
            }

            var spec = parsed.Spec! with { AnalysisId = parsed.Spec!.AnalysisId ?? $"analysis-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..4]}" };
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            using var loggers = CommandContext.CreateLoggerFactory();
            await using var host = await FlCommands.StartHostAsync(ws, storage, DurableBackendKind.InMemory, loggers, runWorker: true, ct).ConfigureAwait(false);
            try
            {
                var catalog = host.Services.GetRequiredService<ISiloCatalog>();
                foreach (var silo in spec.Silos)
                {
                    catalog.Placement(silo);
                }
            }
            catch (SiloRegistryException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message} Register it with 'fl data synth' or 'fl data put'.").ConfigureAwait(false);
                return 2;
            }

            try
            {
                var result = await new AnalysisRunner(host).RunAsync(spec, ct).ConfigureAwait(false);
                await PrintAsync(ctx, result, pr.GetValue(Json), pr.GetValue(Png), ct).ConfigureAwait(false);
                return 0;
            }
            catch (RunFailedException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 1;
            }
            catch (InvalidOperationException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return cmd;
    }

    /// <summary><c>fl analysis ID</c>: reads a stored result back.</summary>
    public static Command Analysis(CommandContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var id = new Argument<string>("analysis") { Description = "Analysis id." };
        var cmd = new Command("analysis", "Prints a stored analysis result.\nExample: fl analysis adult-eda --png plots") { id, Json, Png };
        cmd.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var store = new Adapters.Checkpoints.BlobCheckpointStore(new Azure.Storage.Blobs.BlobServiceClient(storage));
            var result = await AnalysisService.ReadResultAsync(store, AnalysisRunner.Container, pr.GetValue(id)!, ct).ConfigureAwait(false);
            if (result is null)
            {
                await ctx.Error.WriteLineAsync($"error: there is no analysis '{pr.GetValue(id)}' in container '{AnalysisRunner.Container}'").ConfigureAwait(false);
                return 1;
            }

            await PrintAsync(ctx, result, pr.GetValue(Json), pr.GetValue(Png), ct).ConfigureAwait(false);
            return 0;
        });
        return cmd;
    }

    private static async Task PrintAsync(CommandContext ctx, AnalysisResult result, bool json, DirectoryInfo? png, CancellationToken cancellationToken)
    {
        await ctx.Output.WriteAsync(AnalysisRunner.Format(result)).ConfigureAwait(false);
        if (png is not null)
        {
            Directory.CreateDirectory(png.FullName);
            foreach (var (column, statistics) in result.Results.Where(r => r.Value.Histogram is not null))
            {
                var file = Path.Combine(png.FullName, string.Concat(column.Select(c => Path.GetInvalidFileNameChars().Contains(c) ? '_' : c)) + ".png");
                await File.WriteAllBytesAsync(file, Plots.HistogramPng.Draw(column, statistics.Histogram!).ToPng(), cancellationToken).ConfigureAwait(false);
                await ctx.Output.WriteLineAsync($"Histogram of {column}: {file}").ConfigureAwait(false);
            }
        }

        if (json)
        {
            await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(result, AnalysisJson.Options)).ConfigureAwait(false);
        }
    }
}
