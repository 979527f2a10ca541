using System.CommandLine;
using System.Text.Json;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary><c>fl data synth</c> and <c>fl data put</c>: data into silo containers.</summary>
public static class DataCommands
{
    /// <summary>The <c>fl data</c> command and its subcommands.</summary>
    public static Command Data(CommandContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var data = new Command("data", "Puts data into silo containers.\nExample: fl data synth --silos 4 --alpha 0.3");
        data.Subcommands.Add(Synth(ctx));
        data.Subcommands.Add(Put(ctx));
        return data;
    }

    private static Command Synth(CommandContext ctx)
    {
        var silos = new Option<int>("--silos") { Description = "Number of silos (ids silo-1..silo-N).", DefaultValueFactory = _ => 4 };
        var classes = new Option<int>("--classes") { Description = "Number of classes.", DefaultValueFactory = _ => 10 };
        var features = new Option<int>("--features") { Description = "Number of features.", DefaultValueFactory = _ => 16 };
        var train = new Option<int>("--train-per-silo") { Description = "Train examples per silo.", DefaultValueFactory = _ => 2000 };
        var test = new Option<int>("--test-per-silo") { Description = "Test examples per silo.", DefaultValueFactory = _ => 500 };
        var alpha = new Option<double?>("--alpha") { Description = "Dirichlet alpha of the label skew; omit for IID." };
        var seed = new Option<long>("--seed") { Description = "Seed.", DefaultValueFactory = _ => 42 };
        var format = new Option<string>("--format") { Description = "csv, parquet, npz or safetensors: the splits are data/train.{format} and data/test.{format} (give the spec's data.format, train and test for the last two).", DefaultValueFactory = _ => DataFormats.Csv };
        format.AcceptOnlyFromAmong(DataFormats.Csv, DataFormats.Parquet, DataFormats.Npz, DataFormats.Safetensors);
        var compute = FlCommands.ComputeOption();
        var synth = new Command(
            "synth",
            "Writes a seeded synthetic federated dataset (IID, or label-skewed by Dirichlet alpha) into N silos (a data and an outbox container each, each reachable only with the silo's own SAS), writes each silo's credential file, and registers the silos with the orchestrator (a read-only SAS on each outbox).\n" +
            "Example: fl data synth --silos 8 --alpha 0.3 --seed 7")
        { silos, classes, features, train, test, alpha, seed, format, compute };
        synth.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var options = new SyntheticOptions(pr.GetValue(silos), pr.GetValue(classes), pr.GetValue(features), pr.GetValue(train), pr.GetValue(test), pr.GetValue(alpha), pr.GetValue(seed));
            var ids = await FlCommands.SynthesizeAsync(ws, storage, options, pr.GetValue(compute)!, ct, pr.GetValue(format)!).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"Wrote {ids.Count} silos ({string.Join(", ", ids)}) on the '{pr.GetValue(compute)}' compute; registry: {ws.SiloRegistryPath}").ConfigureAwait(false);
            return 0;
        });
        return synth;
    }

    private static Command Put(CommandContext ctx)
    {
        var silo = new Option<string>("--silo") { Description = "Silo id (its container has the same name).", Required = true };
        var file = new Option<FileSystemInfo>("--file") { Description = "A data file (.csv, .parquet, .npz, .safetensors) or an image folder ({class}/{file}.png)." };
        var blobName = new Option<string?>("--as") { Description = "Blob path of --file inside the silo's container (default data/train.{ext}, or data/train for a folder)." };
        var train = new Option<FileSystemInfo>("--train") { Description = "The train split, a file or an image folder: uploaded as data/train.{ext} (data/train for a folder)." };
        var test = new Option<FileSystemInfo>("--test") { Description = "The test split: uploaded as data/test.{ext} (data/test for a folder)." };
        var json = new Option<bool>("--json") { Description = "End with one line of JSON: the spec's data fields for what was uploaded (format, train, test)." };
        var put = new Command(
            "put",
            "Uploads your own data into a silo's container with that silo's credential (a local silo is created and registered if new). " +
            "CSV and Parquet files are uploaded as they are; .npz and .safetensors files (arrays x and y) and image folders ({class}/{file}.png) are first read as the silo will read them, " +
            "and refused with the reason if they are not valid. A folder is refused if the silo already has other blobs under its path.\n" +
            "Example: fl data put --silo hospital-a --file train.csv --as data/train.csv\n" +
            "         fl data put --silo hospital-a --train train.npz --test test.npz\n" +
            "         fl data put --silo hospital-a --train images/train --test images/test")
        { silo, file, blobName, train, test, json };
        put.SetAction(async (pr, ct) =>
        {
            var id = pr.GetValue(silo)!;
            if (!RunSpecValidator.IsValidSiloId(id))
            {
                await ctx.Error.WriteLineAsync($"error: '{id}' is not a valid silo id (lowercase a-z, 0-9 and '-', 1-63 characters)").ConfigureAwait(false);
                return 2;
            }

            var (single, name, trainSplit, testSplit) = (pr.GetValue(file), pr.GetValue(blobName), pr.GetValue(train), pr.GetValue(test));
            if ((single is null) == (trainSplit is null && testSplit is null) || (name is not null && single is null))
            {
                await ctx.Error.WriteLineAsync("error: give --file (with --as), or --train and/or --test").ConfigureAwait(false);
                return 2;
            }

            var sources = new List<(string Split, FileSystemInfo Source, string Blob)>();
            if (single is not null)
            {
                sources.Add(("train", single, name ?? LocalDataFiles.DefaultBlobPath("train", single)));
            }

            foreach (var (split, source) in new[] { ("train", trainSplit), ("test", testSplit) })
            {
                if (source is not null)
                {
                    sources.Add((split, source, LocalDataFiles.DefaultBlobPath(split, source)));
                }
            }

            var checkedSplits = new List<LocalSplit>();
            foreach (var (_, source, blob) in sources)
            {
                if (RunSpecValidator.BlobPathProblem(blob) is { } problem)
                {
                    await ctx.Error.WriteLineAsync($"error: '{blob}' is not a relative blob path: {problem}").ConfigureAwait(false);
                    return 2;
                }

                try
                {
                    checkedSplits.Add(await LocalDataFiles.CheckAsync(source, blob, ct).ConfigureAwait(false));
                }
                catch (FileNotFoundException ex)
                {
                    await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                    return 2;
                }
                catch (DataValidationException ex)
                {
                    await ctx.Error.WriteLineAsync($"error: {source.FullName} is not valid {LocalDataFiles.FormatOf(source)} data: {ex.Message}").ConfigureAwait(false);
                    return 2;
                }
            }

            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var registry = await FlCommands.EnsureSilosAsync(ws, storage, [id], FlCommands.ComputeOf(ws, storage, id), ct).ConfigureAwait(false);
            var container = LocalSiloProvisioner.DataContainer(registry[id]);
            foreach (var split in checkedSplits)
            {
                if (await LocalDataFiles.StaleBlobsAsync(container, split, ct).ConfigureAwait(false) is [var firstStale, ..] stale)
                {
                    await ctx.Error.WriteLineAsync($"error: silo '{id}' already has {stale.Count} blobs under {split.BlobPath}/ that {split.Source} does not have (such as {firstStale}); the silo would read them as part of the split. Put the folder at a new path, or delete them with an identity that may delete (the silo's own credential may not). Nothing was uploaded.").ConfigureAwait(false);
                    return 2;
                }
            }

            foreach (var split in checkedSplits)
            {
                await LocalDataFiles.UploadAsync(container, split, ct).ConfigureAwait(false);
                await ctx.Output.WriteLineAsync($"Uploaded {split.Source} to silo '{id}' as {split.BlobPath}{(split.Files.Count > 1 ? $"/ ({split.Files.Count} files)" : string.Empty)}: {(split.Format is null ? string.Empty : split.Format + ", ")}{split.Description}").ConfigureAwait(false);
            }

            var formats = checkedSplits.Select(s => s.Format).Distinct().ToArray();
            if (formats is [{ } format])
            {
                var fields = new Dictionary<string, string> { ["format"] = format };
                foreach (var ((split, _, _), done) in sources.Zip(checkedSplits))
                {
                    fields[split] = done.BlobPath;
                }

                var text = JsonSerializer.Serialize(fields);
                await ctx.Output.WriteLineAsync($"In the run spec: \"data\": {text[..^1]}, \"classes\": … }}").ConfigureAwait(false);
                if (pr.GetValue(json))
                {
                    await ctx.Output.WriteLineAsync(text).ConfigureAwait(false);
                }
            }

            return 0;
        });
        return put;
    }
}
