using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Api;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary>The <c>fl</c> command tree.</summary>
public static class FlCommands
{
    private static readonly Option<string> BackendOption = new("--backend")
    {
        Description = "Durable backend: 'inmemory' (embedded, default) or 'azurestorage' (DurableTask.AzureStorage on the same storage; runs survive a host restart).",
        DefaultValueFactory = _ => "inmemory",
    };

    private static readonly Option<bool> JsonOption = new("--json") { Description = "End with one line of JSON describing the result." };

    /// <summary>Builds the root command.</summary>
    public static RootCommand Build(CommandContext ctx)
    {
        BackendOption.AcceptOnlyFromAmong("inmemory", "azurestorage");
        var root = new RootCommand(
            "fl: federated training on the shared Durable orchestrations, run on this machine.\n" +
            "Example: fl demo");
        root.Subcommands.Add(Demo(ctx));
        root.Subcommands.Add(Train(ctx));
        root.Subcommands.Add(ExperimentCommands.Experiment(ctx, BackendOption, JsonOption));
        root.Subcommands.Add(Resume(ctx));
        root.Subcommands.Add(Status(ctx));
        root.Subcommands.Add(Checkpoints(ctx));
        root.Subcommands.Add(Audit(ctx));
        root.Subcommands.Add(Trainer(ctx));
        root.Subcommands.Add(Aggregate(ctx));
        root.Subcommands.Add(DataCommands.Data(ctx));
        root.Subcommands.Add(Model(ctx));
        root.Subcommands.Add(ResultCommands.Plot(ctx, JsonOption));
        root.Subcommands.Add(ResultCommands.Predict(ctx, JsonOption));
        root.Subcommands.Add(Serve(ctx));
        root.Subcommands.Add(WorkerCommands.Worker(ctx));
        root.Subcommands.Add(Recurring(ctx));
        root.Subcommands.Add(AzuriteCommand(ctx));
        root.Subcommands.Add(SiloCommands.Build(ctx));
        root.Subcommands.Add(AnalysisCommands.Analyze(ctx));
        root.Subcommands.Add(AnalysisCommands.Analysis(ctx));
        return root;
    }

    private static Command Demo(CommandContext ctx)
    {
        var rounds = new Option<int>("--rounds") { Description = "Federated rounds.", DefaultValueFactory = _ => 10 };
        var silos = new Option<int>("--silos") { Description = "Number of simulated silos.", DefaultValueFactory = _ => 4 };
        var alpha = new Option<double>("--alpha") { Description = "Dirichlet alpha of the label skew (smaller is more skewed).", DefaultValueFactory = _ => 0.5 };
        var train = new Option<int>("--train-per-silo") { Description = "Train examples per silo.", DefaultValueFactory = _ => 2000 };
        var seed = new Option<long>("--seed") { Description = "Seed of data, initialisation and training.", DefaultValueFactory = _ => 42 };
        var compute = ComputeOption();
        var cmd = new Command(
            "demo",
            "Simulates 4 label-skewed silos in local Azurite and trains an MLP on them through the durable orchestrator, printing each round.\n" +
            "Example: fl demo --rounds 10 --json")
        { rounds, silos, alpha, train, seed, compute, BackendOption, JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
            var n = pr.GetValue(silos);
            var options = new SyntheticOptions(n, Classes: 10, Features: 16, pr.GetValue(train), TestPerSilo: 500, pr.GetValue(alpha), pr.GetValue(seed));
            await ctx.Output.WriteLineAsync($"Simulating {n} silos (label skew: Dirichlet alpha {options.DirichletAlpha}, {options.TrainPerSilo} train / {options.TestPerSilo} test examples each)...").ConfigureAwait(false);
            var ids = await SynthesizeAsync(ws, storage, options, pr.GetValue(compute)!, ct).ConfigureAwait(false);
            var spec = new RunSpec
            {
                RunId = $"demo-{stamp}",
                Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = options.Features, Hidden = [64] },
                Data = new DataSpec { Format = DataFormats.Csv, Label = "label", Classes = options.Classes },
                Training = new TrainingSpec { Rounds = pr.GetValue(rounds), LocalEpochs = 1, BatchSize = 32, LearningRate = 0.05, Optimizer = Optimizers.Sgd, Seed = pr.GetValue(seed) },
                Silos = ids,
                Evaluation = new EvaluationSpec { EveryRounds = 1 },
            };
            var specPath = Path.Combine(ws.Home, "specs", spec.RunId + ".json");
            Directory.CreateDirectory(Path.GetDirectoryName(specPath)!);
            await File.WriteAllTextAsync(specPath, JsonSerializer.Serialize(spec, RunSpecJson.Options), ct).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"Spec written to {specPath}").ConfigureAwait(false);
            return await TrainAsync(ctx, ws, storage, spec, pr.GetValue(BackendOption)!, pr.GetValue(JsonOption), ct).ConfigureAwait(false);
        });
        return cmd;
    }

    private static Command Train(CommandContext ctx)
    {
        var specFile = new Option<FileInfo>("--spec") { Description = "Run spec (JSON); see docs/run-spec.md.", Required = true };
        var runId = new Option<string?>("--run-id") { Description = "Overrides the spec's run id." };
        var noWorker = new Option<bool>("--no-worker")
        {
            Description = "azurestorage backend only: start the run and follow it without executing any of its work here; the task hub's 'fl worker' processes do it.",
        };
        var cmd = new Command(
            "train",
            "Validates a run spec and trains it through the durable orchestrator. On the azurestorage backend, running it again attaches to an unfinished run.\n" +
            "Example: fl train --spec my-run.json --backend azurestorage")
        { specFile, runId, BackendOption, noWorker, JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var file = pr.GetValue(specFile)!;
            if (!file.Exists)
            {
                await ctx.Error.WriteLineAsync($"error: spec file '{file.FullName}' does not exist").ConfigureAwait(false);
                return 2;
            }

            var parsed = RunSpecParser.Parse(await File.ReadAllBytesAsync(file.FullName, ct).ConfigureAwait(false));
            if (!parsed.IsValid)
            {
                await ctx.Error.WriteLineAsync($"error: {file.Name} is not a valid run spec:").ConfigureAwait(false);
                foreach (var e in parsed.Errors)
                {
                    await ctx.Error.WriteLineAsync($"  {e}").ConfigureAwait(false);
                }

                return 2;
            }

            var spec = parsed.Spec!;
            var id = pr.GetValue(runId);
            if (id is not null)
            {
                spec = spec with { RunId = id };
                var errors = RunSpecValidator.Validate(spec);
                if (errors.Count > 0)
                {
                    await ctx.Error.WriteLineAsync($"error: {errors[0]}").ConfigureAwait(false);
                    return 2;
                }
            }

            spec = spec with { RunId = spec.RunId ?? $"run-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..4]}" };
            if (pr.GetValue(noWorker) && pr.GetValue(BackendOption) != "azurestorage")
            {
                await ctx.Error.WriteLineAsync("error: --no-worker needs --backend azurestorage: on the in-memory backend no other process can do the run's work.").ConfigureAwait(false);
                return 2;
            }

            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            return await TrainAsync(ctx, ws, storage, spec, pr.GetValue(BackendOption)!, pr.GetValue(JsonOption), ct, runWorker: !pr.GetValue(noWorker)).ConfigureAwait(false);
        });
        return cmd;
    }

    private static async Task<int> TrainAsync(CommandContext ctx, Workspace ws, string storage, RunSpec spec, string backend, bool json, CancellationToken ct, bool runWorker = true)
    {
        using var loggers = CommandContext.CreateLoggerFactory();
        LocalDurableHost host;
        try
        {
            host = await StartHostAsync(ws, storage, ParseBackend(backend), loggers, runWorker, ct).ConfigureAwait(false);
        }
        catch (ArgumentException ex)
        {
            await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        await using var hostScope = host;
        var runner = new RunRunner(host, ctx.Output);
        try
        {
            runner.CheckSilos(spec);
        }
        catch (SiloRegistryException ex)
        {
            await ctx.Error.WriteLineAsync($"error: {ex.Message} Register it with 'fl data synth' or 'fl data put'.").ConfigureAwait(false);
            return 2;
        }

        var model = spec.Model.Architecture switch
        {
            ModelArchitectures.MultilayerPerceptron => $"mlp [{RunSpecValidator.ResolveInputs(spec)}→{string.Join("→", spec.Model.Hidden)}→{spec.Data.Classes}]",
            ModelArchitectures.Convolutional => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"cnn [{string.Join("×", spec.Model.Shape!)}, {spec.Model.Layers!.Count} layers→{spec.Data.Classes}, {RunSpecValidator.CountParameters(spec.Model, RunSpecValidator.ResolveInputs(spec), spec.Data.Classes):N0} parameters]"),
            Core.Models.RecurrentModel.GatedRecurrentUnit or Core.Models.RecurrentModel.LongShortTermMemory => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{spec.Model.Architecture} [{string.Join("×", spec.Model.Shape!)}→{string.Join("→", spec.Model.Hidden)}→{spec.Data.Classes}, {RunSpecValidator.CountParameters(spec.Model, RunSpecValidator.ResolveInputs(spec), spec.Data.Classes):N0} parameters]"),
            ModelArchitectures.TorchScript => $"torchscript [{RunSpecValidator.ResolveInputs(spec)}→{spec.Data.Classes}, {spec.Model.Script!.Path}]",
            _ => $"logreg [{RunSpecValidator.ResolveInputs(spec)}→{spec.Data.Classes}]",
        };
        var catalog = host.Services.GetRequiredService<ISiloCatalog>();
        var computes = string.Join(" + ", spec.Silos.GroupBy(s => catalog.Placement(s).Kind).Select(g => g.Count() == spec.Silos.Count ? g.Key : $"{g.Key} ×{g.Count()}"));
        var who = spec.Simulation is { } simulation
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{simulation.VirtualSilos} virtual silos ({simulation.Split} split of {spec.Silos[0]}'s data, up to {simulation.PerStep} per step, {computes} compute)")
            : $"{spec.Silos.Count} silos ({computes} compute)";
        await ctx.Output.WriteLineAsync($"Run {spec.RunId}: {who}, {spec.Training.Rounds} rounds, {model}, {spec.Strategy.Name}, backend {backend}").ConfigureAwait(false);
        return await ReportAsync(ctx, () => runner.RunAsync(spec, spec.RunId!, backend, ct), json).ConfigureAwait(false);
    }

    private static Command Resume(CommandContext ctx)
    {
        var run = new Argument<string>("run") { Description = "Run id." };
        var container = CheckpointContainerOption();
        var cmd = new Command(
            "resume",
            "Resumes a run whose orchestration was lost, failed or was cancelled, from its latest checkpoint, with the spec it was started with; attaches if it is running.\n" +
            "Example: fl resume demo-mlp --backend azurestorage")
        { run, container, BackendOption, JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var backend = pr.GetValue(BackendOption)!;
            using var loggers = CommandContext.CreateLoggerFactory();
            await using var host = await StartHostAsync(ws, storage, ParseBackend(backend), loggers, runWorker: true, ct).ConfigureAwait(false);
            var runner = new RunRunner(host, ctx.Output);
            return await ReportAsync(ctx, () => runner.ResumeAsync(pr.GetValue(run)!, pr.GetValue(container), backend, ct), pr.GetValue(JsonOption)).ConfigureAwait(false);
        });
        return cmd;
    }

    private static async Task<int> ReportAsync(CommandContext ctx, Func<Task<RunReport>> run, bool json)
    {
        RunReport report;
        try
        {
            report = await run().ConfigureAwait(false);
        }
        catch (RunFailedException ex)
        {
            await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        await ctx.Output.WriteLineAsync().ConfigureAwait(false);
        await ctx.Output.WriteLineAsync($"Run {report.RunId} completed {report.Rounds} rounds in {report.Seconds:0.0} s.").ConfigureAwait(false);
        await ctx.Output.WriteLineAsync($"Final accuracy: {(report.FinalAccuracy is { } a ? a.ToString("0.0000", CultureInfo.InvariantCulture) : "not evaluated")} (federated evaluation on every silo's test split)").ConfigureAwait(false);
        await ctx.Output.WriteLineAsync($"Checkpoint: {report.Checkpoint}").ConfigureAwait(false);
        await ctx.Output.WriteLineAsync($"Manifest:   {report.Manifest}").ConfigureAwait(false);
        await ctx.Output.WriteLineAsync($"List the checkpoints with: ./fl checkpoints {report.RunId}").ConfigureAwait(false);
        if (report.CrossSite is { } crossSite)
        {
            await ctx.Output.WriteLineAsync($"Cross-site evaluation after round {crossSite.Round} (accuracy of each model on each silo's test split):").ConfigureAwait(false);
            await ctx.Output.WriteAsync(RunRunner.FormatCrossSite(crossSite)).ConfigureAwait(false);
        }

        if (json)
        {
            await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(new
            {
                runId = report.RunId,
                rounds = report.Rounds,
                finalAccuracy = report.FinalAccuracy,
                finalLoss = report.FinalLoss,
                checkpoint = report.Checkpoint,
                manifest = report.Manifest,
                backend = report.Backend,
                seconds = Math.Round(report.Seconds, 2),
            }, CommandContext.Json)).ConfigureAwait(false);
        }

        return 0;
    }

    private static Command Status(CommandContext ctx)
    {
        var run = new Argument<string>("run") { Description = "Run id." };
        var container = CheckpointContainerOption();
        var cmd = new Command(
            "status",
            "Shows a run's progress: the durable instance (azurestorage backend) and its latest committed round.\n" +
            "Example: fl status demo-20261201-101500 --backend azurestorage")
        { run, container, BackendOption, JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var runId = pr.GetValue(run)!;
            string? runtime = null;
            RunStatus? status = null;
            string? failure = null;
            var backend = ParseBackend(pr.GetValue(BackendOption)!);
            using var loggers = CommandContext.CreateLoggerFactory();
            await using var host = await StartHostAsync(ws, storage, backend, loggers, runWorker: false, ct).ConfigureAwait(false);
            if (backend == DurableBackendKind.AzureStorage)
            {
                var meta = await host.Client.GetInstanceAsync(runId, getInputsAndOutputs: true, ct).ConfigureAwait(false);
                runtime = meta?.RuntimeStatus.ToString();
                status = meta?.SerializedCustomStatus is null ? null : meta.ReadCustomStatusAs<RunStatus>();
                failure = RunFailures.Message(meta);
            }

            var latest = await host.Services.GetRequiredService<ICheckpointStore>().GetLatestAsync(pr.GetValue(container)!, runId, ct).ConfigureAwait(false);
            if (runtime is null && latest is null)
            {
                await ctx.Error.WriteLineAsync($"error: no run '{runId}' found{(backend == DurableBackendKind.InMemory ? " (the in-memory backend keeps no instances after its process ends; showing checkpoints only)" : string.Empty)}").ConfigureAwait(false);
                return 1;
            }

            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(new { runId, runtimeStatus = runtime, status, failure, latest }, CommandContext.Json)).ConfigureAwait(false);
                return 0;
            }

            await ctx.Output.WriteLineAsync($"Run {runId}").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"  instance:  {runtime ?? "(not tracked by this backend)"}{(status is null ? string.Empty : $", {status.Phase}, round {status.Round}/{status.TotalRounds}")}").ConfigureAwait(false);
            if (failure is not null)
            {
                await ctx.Output.WriteLineAsync($"  failure:   {failure}").ConfigureAwait(false);
            }

            await ctx.Output.WriteLineAsync(latest is null ? "  latest:    no committed round" : $"  latest:    round {latest.Round}, model {latest.Model.Uri} (sha256 {latest.Model.Sha256[..12]}…)").ConfigureAwait(false);
            foreach (var r in status?.Recent ?? [])
            {
                await ctx.Output.WriteLineAsync("  " + RunRunner.FormatRound(r, r.Participants + r.Rejected)).ConfigureAwait(false);
            }

            return 0;
        });
        return cmd;
    }

    private static Command Audit(CommandContext ctx)
    {
        var run = new Argument<string>("run") { Description = "Run id." };
        var container = CheckpointContainerOption();
        var verify = new Option<bool>("--verify") { Description = "Check the hash chain and its head against the latest manifest; exit 1 if it fails." };
        var cmd = new Command(
            "audit",
            "Shows a run's or an analysis's audit log: one entry per artifact that left a silo, hash-chained.\n" +
            "Example: fl audit demo-20261201-101500 --verify")
        { run, container, verify, JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var store = await CheckpointStoreAsync(ct).ConfigureAwait(false);
            var report = await Api.AuditReader.ReadAsync(store, pr.GetValue(container)!, pr.GetValue(run)!, ct).ConfigureAwait(false);
            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(report, CommandContext.Json)).ConfigureAwait(false);
            }
            else
            {
                foreach (var e in report.Entries)
                {
                    await ctx.Output.WriteLineAsync($"{e.Sequence,5}  round {e.Round,4}  {e.SiloId,-16} {e.Kind,-8} {e.Bytes,9} B  sha256 {e.Sha256[..12]}…  {e.Policy.Name}: {e.Policy.Checks}{(e.DpNoise is { } n ? $"  dp z={n.NoiseMultiplier} C={n.ClipNorm}" : string.Empty)}  hash {e.Hash[..12]}…").ConfigureAwait(false);
                }
            }

            if (!pr.GetValue(verify))
            {
                return 0;
            }

            var v = report.Verification;
            if (pr.GetValue(JsonOption))
            {
                // The JSON above holds the verification; --json keeps its promise of a last line of JSON on stdout.
                if (!v.IsValid)
                {
                    await ctx.Error.WriteLineAsync($"error: the audit log of '{report.RunId}' does not verify: {v.Reason} at entry {v.FirstBadIndex}: {v.Detail}").ConfigureAwait(false);
                }

                return v.IsValid ? 0 : 1;
            }

            await (v.IsValid ? ctx.Output : ctx.Error).WriteLineAsync(v.IsValid
                ? $"Verified: {report.Entries.Count} entries, chain intact, head {v.HeadHash?[..12]}… matches the latest manifest."
                : $"error: the audit log of '{report.RunId}' does not verify: {v.Reason} at entry {v.FirstBadIndex}: {v.Detail}").ConfigureAwait(false);
            return v.IsValid ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>The <c>--container</c> option of the commands that read a run's checkpoints.</summary>
    internal static Option<string> CheckpointContainerOption() =>
        new("--container") { Description = "Checkpoint container.", DefaultValueFactory = _ => "checkpoints" };

    /// <summary>
    /// Reports a failure to read a run's model, and returns its exit code: 2 for no such run or round, 1 for a checkpoint
    /// that is not the one its manifest records (<paramref name="consequence"/> says what was not done).
    /// </summary>
    internal static async Task<int> CheckpointFailureAsync(CommandContext ctx, Exception ex, string consequence)
    {
        if (ex is ModelNotFoundException)
        {
            await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        await ctx.Error.WriteLineAsync($"error: the checkpoint does not match its manifest, {consequence}: {ex.Message}").ConfigureAwait(false);
        return 1;
    }

    /// <summary>The exceptions <see cref="CheckpointFailureAsync"/> reports.</summary>
    internal static bool IsCheckpointFailure(Exception ex) => ex is ModelNotFoundException or Core.Runs.IntegrityException or Core.Tensors.SafetensorsFormatException;

    // The workspace's checkpoint store (its Azurite, started if needed), as the runs write it.
    internal static async Task<BlobCheckpointStore> CheckpointStoreAsync(CancellationToken ct)
    {
        var ws = CommandContext.Workspace();
        var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
        return new BlobCheckpointStore(Adapters.AdaptersRegistration.CreateOrchestratorBlobService(ws.BuildConfiguration(storage)));
    }

    private static Command Model(CommandContext ctx)
    {
        var model = new Command("model", "Puts pretrained weights (safetensors) or a TorchScript module where a run spec's model.pretrained or model.script names them, or gets a run's checkpoint as a file.\nExample: fl model put --file resnet.safetensors");
        var file = new Option<FileInfo>("--file") { Description = "A safetensors file of the model's weights, or a TorchScript module saved by torch.jit.save.", Required = true };
        var name = new Option<string?>("--as") { Description = "Its blob path in the checkpoint container; default pretrained/{file name}, or scripts/{file name} for a TorchScript module." };
        var container = CheckpointContainerOption();
        var put = new Command(
            "put",
            "Uploads a safetensors file (or a TorchScript module) into the checkpoint container and prints the model.pretrained (or model.script) a spec gives to use it.\n" +
            "Example: fl model put --file digits.safetensors --as pretrained/digits.safetensors")
        { file, name, container, JsonOption };
        put.SetAction(async (pr, ct) =>
        {
            var source = pr.GetValue(file)!;
            var bytes = source.Exists ? await File.ReadAllBytesAsync(source.FullName, ct).ConfigureAwait(false) : [];
            var script = Api.TorchScriptFiles.LooksLikeTorchScript(bytes);
            var path = pr.GetValue(name) ?? (script ? "scripts/" : "pretrained/") + source.Name;
            if (RunSpecValidator.BlobPathProblem(path) is { } problem)
            {
                await ctx.Error.WriteLineAsync($"error: --as must be a relative blob path: {problem}.").ConfigureAwait(false);
                return 2;
            }

            if (!source.Exists)
            {
                await ctx.Error.WriteLineAsync($"error: {source.FullName} does not exist.").ConfigureAwait(false);
                return 2;
            }

            var what = "a TorchScript module";
            if (!script)
            {
                try
                {
                    what = $"{Core.Tensors.Safetensors.Parse(bytes).Tensors.Count} tensors";
                }
                catch (Core.Tensors.SafetensorsFormatException ex)
                {
                    await ctx.Error.WriteLineAsync($"error: {source.Name} is not a safetensors file (nor a TorchScript module): {ex.Message}").ConfigureAwait(false);
                    return 2;
                }
            }

            var store = await CheckpointStoreAsync(ct).ConfigureAwait(false);
            var written = await store.PutDocumentAsync(pr.GetValue(container)!, path, bytes, ct).ConfigureAwait(false);
            var pretrained = new PretrainedSpec { Path = path, Sha256 = written.Sha256 };
            await ctx.Output.WriteLineAsync($"Put {source.Name} ({what}, {bytes.Length} bytes) at {pr.GetValue(container)}/{path}. {(script ? "Train it with" : "Start a run from it with")}:").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync(script
                ? $"  \"model\": {{ \"architecture\": \"torchscript\", \"inputs\": …, \"script\": {JsonSerializer.Serialize(pretrained, RunSpecJson.Options)} }}"
                : $"  \"model\": {{ …, \"pretrained\": {JsonSerializer.Serialize(pretrained, RunSpecJson.Options)} }}").ConfigureAwait(false);
            if (script)
            {
                await ctx.Output.WriteLineAsync($"  A run of it needs its SHA-256 approved: FL_{Api.TrustOptions.Section}__ApprovedScripts__0={written.Sha256} on this host ({Api.TrustOptions.Section}__ApprovedScripts__0 in the Functions app).").ConfigureAwait(false);
            }
            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(pretrained, RunSpecJson.Options)).ConfigureAwait(false);
            }

            return 0;
        });
        model.Subcommands.Add(put);
        model.Subcommands.Add(ModelGet(ctx, container));
        return model;
    }

    private static Command ModelGet(CommandContext ctx, Option<string> container)
    {
        var run = new Argument<string>("run") { Description = "Run id." };
        var round = new Option<int?>("--round") { Description = "A committed round; default the run's latest." };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the model (safetensors).", Required = true };
        var get = new Command(
            "get",
            "Downloads a run's model checkpoint with the orchestrator's credential, checks its size and SHA-256 against the round's manifest, and writes it as a safetensors file (load it in PyTorch with safetensors.torch.load_file).\n" +
            "Example: fl model get demo-20261201-101500 --round 10 --out model.safetensors")
        { run, round, output, container, JsonOption };
        get.SetAction(async (pr, ct) =>
        {
            var store = await CheckpointStoreAsync(ct).ConfigureAwait(false);
            ModelDownload.Downloaded model;
            try
            {
                model = await ModelDownload.GetAsync(store, pr.GetValue(container)!, pr.GetValue(run)!, pr.GetValue(round), ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsCheckpointFailure(ex))
            {
                return await CheckpointFailureAsync(ctx, ex, "nothing was written").ConfigureAwait(false);
            }

            // Written beside the target and moved over it: an interrupted write leaves no half file and no damaged old one.
            var file = pr.GetValue(output)!;
            var partial = file.FullName + ".partial";
            try
            {
                await File.WriteAllBytesAsync(partial, model.Bytes, ct).ConfigureAwait(false);
                File.Move(partial, file.FullName, overwrite: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                if (File.Exists(partial))
                {
                    File.Delete(partial);
                }

                await ctx.Error.WriteLineAsync($"error: could not write {file.FullName}: {ex.Message}").ConfigureAwait(false);
                return 1;
            }

            await ctx.Output.WriteLineAsync($"Wrote round {model.Round} of {model.RunId} to {file.FullName}: {model.Tensors} tensors, {model.Bytes.Length} bytes, SHA-256 {model.Model.Sha256} (as the manifest records).").ConfigureAwait(false);
            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(new { runId = model.RunId, round = model.Round, file = file.FullName, sha256 = model.Model.Sha256, bytes = model.Bytes.Length, tensors = model.Tensors }, CommandContext.Json)).ConfigureAwait(false);
            }

            return 0;
        });
        return get;
    }

    private static Command Trainer(CommandContext ctx)
    {
        var cmd = new Command(
            "trainer",
            "Prints this build's trainer identity (name and SHA-256) and the settings that approve it for eyes-off runs.\n" +
            "Example: fl trainer")
        { JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var t = LocalTrainerIdentity.Value;
            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(t, CommandContext.Json)).ConfigureAwait(false);
                return 0;
            }

            await ctx.Output.WriteLineAsync($"Trainer {t.Id}, SHA-256 {t.Sha256}").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync("Approve it for eyes-off runs in the orchestrator's settings (Functions app):").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"  Trust__ApprovedTrainers__0__Id={t.Id}").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"  Trust__ApprovedTrainers__0__Sha256={t.Sha256}").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync("or, for fl, in the environment:").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"  export FL_Trust__ApprovedTrainers__0__Id={t.Id} FL_Trust__ApprovedTrainers__0__Sha256={t.Sha256}").ConfigureAwait(false);
            return 0;
        });
        return cmd;
    }

    private static Command Checkpoints(CommandContext ctx)
    {
        var run = new Argument<string>("run") { Description = "Run id." };
        var container = CheckpointContainerOption();
        var cmd = new Command(
            "checkpoints",
            "Lists a run's checkpoints from blob storage: one line per committed round, with its model hash and URI.\n" +
            "Example: fl checkpoints demo-20261201-101500")
        { run, container, JsonOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var store = await CheckpointStoreAsync(ct).ConfigureAwait(false);
            var runId = pr.GetValue(run)!;
            var manifests = await store.ListAsync(pr.GetValue(container)!, runId, ct).ConfigureAwait(false);
            var latest = await store.GetLatestAsync(pr.GetValue(container)!, runId, ct).ConfigureAwait(false);
            if (manifests.Count == 0)
            {
                await ctx.Error.WriteLineAsync($"error: run '{runId}' has no checkpoints in container '{pr.GetValue(container)}'").ConfigureAwait(false);
                return 1;
            }

            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(new { runId, latest = latest?.Round, checkpoints = manifests }, CommandContext.Json)).ConfigureAwait(false);
                return 0;
            }

            var ci = CultureInfo.InvariantCulture;
            await ctx.Output.WriteLineAsync($"{"round",5}  {"silos",5}  {"rejected",8}  {"examples",9}  {"eval acc",8}  {"sha256",12}  model").ConfigureAwait(false);
            foreach (var m in manifests)
            {
                await ctx.Output.WriteLineAsync(string.Format(
                    ci,
                    "{0,5}  {1,5}  {2,8}  {3,9}  {4,8}  {5,12}  {6}{7}",
                    m.Round,
                    m.Participants.Count,
                    m.Rejected.Count,
                    m.Metrics.TrainExamples?.ToString(ci) ?? "-",
                    m.Metrics.EvalAccuracy?.ToString("0.0000", ci) ?? "-",
                    m.Model.Sha256[..12],
                    m.Model.Uri,
                    latest?.Round == m.Round ? "  (latest)" : string.Empty)).ConfigureAwait(false);
            }

            return 0;
        });
        return cmd;
    }

    private static Command Aggregate(CommandContext ctx)
    {
        var output = new Option<FileInfo>("--out") { Description = "Output safetensors file.", Required = true };
        var inputs = new Argument<string[]>("updates") { Description = "Updates as FILE:EXAMPLES, e.g. a.safetensors:120.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command(
            "aggregate",
            "Runs the same weighted aggregation offline on safetensors files; the number after each file's colon is its example count.\n" +
            "Example: fl aggregate --out global.safetensors a.safetensors:120 b.safetensors:80")
        { output, inputs };
        cmd.SetAction(async (pr, ct) =>
        {
            var updates = new List<(IReadOnlyList<NamedTensor> Update, long Examples)>();
            foreach (var arg in pr.GetValue(inputs)!)
            {
                var colon = arg.LastIndexOf(':');
                if (colon <= 0 || !long.TryParse(arg.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var examples) || examples <= 0)
                {
                    await ctx.Error.WriteLineAsync($"error: '{arg}' is not FILE:EXAMPLES with a positive example count").ConfigureAwait(false);
                    return 2;
                }

                var path = arg[..colon];
                if (!File.Exists(path))
                {
                    await ctx.Error.WriteLineAsync($"error: '{path}' does not exist").ConfigureAwait(false);
                    return 2;
                }

                try
                {
                    updates.Add((Safetensors.Parse(await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false)).Tensors, examples));
                }
                catch (SafetensorsFormatException ex)
                {
                    await ctx.Error.WriteLineAsync($"error: '{path}' is not a valid safetensors file: {ex.Message}").ConfigureAwait(false);
                    return 2;
                }
            }

            IReadOnlyList<NamedTensor> result;
            try
            {
                result = OfflineAggregation.WeightedAverage(updates);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or ModelStateException)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            var bytes = Safetensors.Serialize(result);
            var outFile = pr.GetValue(output)!;
            await File.WriteAllBytesAsync(outFile.FullName, bytes, ct).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"Aggregated {updates.Count} updates ({updates.Sum(u => u.Examples)} examples, {result.Count} tensors) into {outFile.FullName}").ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"sha256 {Hashing.Sha256Hex(bytes)}").ConfigureAwait(false);
            return 0;
        });
        return cmd;
    }

    private static Command Serve(CommandContext ctx)
    {
        var urls = new Option<string>("--urls") { Description = "Address to listen on (loopback).", DefaultValueFactory = _ => "http://127.0.0.1:7071" };
        var cmd = new Command(
            "serve",
            "Serves the runs and analyses HTTP API (the same routes, handlers and JSON as the Functions app) and the dashboard (open the printed address in a browser), and runs the trainings and analyses it starts, until Ctrl+C.\n" +
            "Example: fl serve --backend azurestorage")
        { urls, BackendOption };
        cmd.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            using var loggers = CommandContext.CreateLoggerFactory();
            await using var host = await StartHostAsync(ws, storage, ParseBackend(pr.GetValue(BackendOption)!), loggers, runWorker: true, ct).ConfigureAwait(false);
            LocalApiServer server;
            try
            {
                server = await LocalApiServer.StartAsync(host, pr.GetValue(urls)!, loggers, ct).ConfigureAwait(false);
            }
            catch (ArgumentException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            await using var serverScope = server;
            await ctx.Output.WriteLineAsync($"Serving the runs and analyses API on {server.Address}/api/runs and {server.Address}/api/analyses, and the dashboard on {server.Address}/ (backend {pr.GetValue(BackendOption)}). Ctrl+C stops.").ConfigureAwait(false);
            return await ctx.RunUntilStoppedAsync(ct).ConfigureAwait(false);
        });
        return cmd;
    }

    private static Command Recurring(CommandContext ctx)
    {
        var cmd = new Command("recurring", "Recurring training: its spec template, and one tick on demand.\nExample: fl recurring template --spec nightly.json");
        var specFile = new Option<FileInfo>("--spec") { Description = "Run spec template (JSON); its runId is ignored, each run gets recurring-<time>.", Required = true };
        var template = new Command(
            "template",
            "Validates a spec and stores it as the recurring training template in the orchestrator's storage (Recurring:Container / Recurring:TemplateBlob).\n" +
            "Example: fl recurring template --spec nightly.json")
        { specFile };
        template.SetAction(async (pr, ct) =>
        {
            var file = pr.GetValue(specFile)!;
            var bytes = file.Exists ? await File.ReadAllBytesAsync(file.FullName, ct).ConfigureAwait(false) : null;
            var parsed = bytes is null ? null : RunSpecParser.Parse(bytes);
            if (parsed is not { IsValid: true })
            {
                await ctx.Error.WriteLineAsync(parsed is null ? $"error: '{file.FullName}' does not exist" : "error: invalid spec:\n  " + string.Join("\n  ", parsed.Errors)).ConfigureAwait(false);
                return 2;
            }

            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var config = ws.BuildConfiguration(storage);
            var o = new RecurringOptions();
            Microsoft.Extensions.Configuration.ConfigurationBinder.Bind(config.GetSection(RecurringOptions.Section), o);
            var container = Adapters.AdaptersRegistration.CreateOrchestratorBlobService(config).GetBlobContainerClient(o.Container);
            await container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
            await container.GetBlobClient(o.TemplateBlob).UploadAsync(BinaryData.FromBytes(bytes!), overwrite: true, ct).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"Stored the recurring template at {o.Container}/{o.TemplateBlob}").ConfigureAwait(false);
            return 0;
        });
        var tick = new Command(
            "tick",
            "Runs one tick of recurring training now, exactly as the timer trigger does, and waits for the run it starts (azurestorage keeps it for the next tick).\n" +
            "Example: fl recurring tick --backend azurestorage")
        { BackendOption, JsonOption };
        tick.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            using var loggers = CommandContext.CreateLoggerFactory();
            await using var host = await StartHostAsync(ws, storage, ParseBackend(pr.GetValue(BackendOption)!), loggers, runWorker: true, ct).ConfigureAwait(false);
            var service = host.Services.GetRequiredService<Api.RecurringTrainingService>();
            var result = await service.TickAsync(host.Client, Api.ManagementUrls.ApiRoutes, ct).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync($"Tick: {result.Outcome}{(result.RunId is null ? string.Empty : $" {result.RunId}")}{(result.ResumedFrom is null ? string.Empty : $" from {result.ResumedFrom.RunId} round {result.ResumedFrom.Round}")}{(result.Reason is null ? string.Empty : $" ({result.Reason})")}").ConfigureAwait(false);
            if (result.Outcome == "started")
            {
                var meta = await host.Client.WaitForInstanceCompletionAsync(result.RunId!, getInputsAndOutputs: false, ct).ConfigureAwait(false);
                await ctx.Output.WriteLineAsync($"Run {result.RunId} {meta.RuntimeStatus.ToString().ToLowerInvariant()}.").ConfigureAwait(false);
            }

            if (pr.GetValue(JsonOption))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(result, CommandContext.Json)).ConfigureAwait(false);
            }

            return result.Outcome == "failed" ? 1 : 0;
        });
        cmd.Subcommands.Add(template);
        cmd.Subcommands.Add(tick);
        return cmd;
    }

    private static Command AzuriteCommand(CommandContext ctx)
    {
        var cmd = new Command("azurite", "Starts or stops the workspace's local Azurite.\nExample: fl azurite stop");
        var start = new Command("start", "Starts the workspace's Azurite (kept in .fl/azurite) and prints its connection string.\nExample: fl azurite start");
        start.SetAction(async (pr, ct) =>
        {
            var ws = CommandContext.Workspace();
            var ep = await Azurite.EnsureDaemonAsync(Azurite.FindExecutable(ws.RepositoryRoot), ws.Home, ct).ConfigureAwait(false);
            await ctx.Output.WriteLineAsync(ep.ConnectionString).ConfigureAwait(false);
            return 0;
        });
        var stop = new Command("stop", "Stops the workspace's Azurite; its data stays in .fl/azurite.\nExample: fl azurite stop");
        stop.SetAction(async (pr, ct) =>
        {
            var stopped = Azurite.StopDaemon(CommandContext.Workspace().Home);
            await ctx.Output.WriteLineAsync(stopped ? "Azurite stopped." : "Azurite was not running.").ConfigureAwait(false);
            return 0;
        });
        cmd.Subcommands.Add(start);
        cmd.Subcommands.Add(stop);
        return cmd;
    }

    internal static async Task<IReadOnlyList<string>> SynthesizeAsync(Workspace ws, string storage, SyntheticOptions options, string compute, CancellationToken ct, string format = DataFormats.Csv)
    {
        var datasets = SyntheticData.Generate(options);
        var ids = datasets.Select(d => d.SiloId).ToArray();
        var registry = await EnsureSilosAsync(ws, storage, ids, compute, ct).ConfigureAwait(false);
        foreach (var d in datasets)
        {
            // Written with the silo's own SAS, exactly as a data provider would.
            await LocalSiloProvisioner.WriteSplitsAsync(registry[d.SiloId], d, format, ct).ConfigureAwait(false);
        }

        return ids;
    }

    // Each silo gets its containers, its own credential file (only its runner opens it) and an entry in the orchestrator's registry.
    internal static async Task<IReadOnlyDictionary<string, ProvisionedSilo>> EnsureSilosAsync(Workspace ws, string storage, IReadOnlyList<string> ids, string compute, CancellationToken ct)
    {
        var account = Adapters.AdaptersRegistration.CreateOrchestratorBlobService(ws.BuildConfiguration(storage));
        var silos = await LocalSiloProvisioner.ProvisionAsync(account, ids, TimeSpan.FromDays(30), compute, ws.SiloCredentialPath, ct).ConfigureAwait(false);
        foreach (var silo in silos.Values)
        {
            await SiloRegistryFile.WriteCredentialsAsync(ws.SiloCredentialPath(silo.Id), silo.Credentials, ct).ConfigureAwait(false);
        }

        await SiloRegistryFile.MergeAsync(ws.SiloRegistryPath, silos.ToDictionary(s => s.Key, s => s.Value.Entry), ct).ConfigureAwait(false);
        return silos;
    }

    // The compute kind a silo already has in the registry file; local for a new one.
    internal static string ComputeOf(Workspace ws, string storage, string siloId)
    {
        var registry = new SiloRegistryOptions();
        Microsoft.Extensions.Configuration.ConfigurationBinder.Bind(ws.BuildConfiguration(storage).GetSection(SiloRegistryOptions.Section), registry.Silos);
        return registry.Silos.TryGetValue(siloId, out var entry) ? entry.Compute.Kind : SiloComputeKinds.Local;
    }

    /// <summary>Starts the local host on the workspace's storage; on the azurestorage backend it joins the task hub with the hub's own partition count.</summary>
    /// <exception cref="ArgumentException">The task hub has another partition count than <paramref name="partitions"/>, also when another host created it at the same moment.</exception>
    internal static async Task<LocalDurableHost> StartHostAsync(
        Workspace ws, string storage, DurableBackendKind backend, Microsoft.Extensions.Logging.ILoggerFactory loggers, bool runWorker, CancellationToken ct, int? partitions = null, string? workerName = null, int? maxActivities = null)
    {
        var azure = backend == DurableBackendKind.AzureStorage;
        var count = azure ? await TaskHubPartitions.ResolveAsync(storage, Workspace.TaskHub, partitions, ct).ConfigureAwait(false) : TaskHubPartitions.Default;
        var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = backend,
            DurableStorageConnectionString = storage,
            Configuration = ws.BuildConfiguration(storage),
            LoggerFactory = loggers,
            RunWorker = runWorker,
            TaskHub = Workspace.TaskHub,
            WorkItemVisibilityTimeout = Workspace.VisibilityTimeout,
            PartitionCount = count,
            WorkerName = workerName,
            MaxConcurrentActivities = maxActivities ?? Math.Max(1, Environment.ProcessorCount),
            HoldOnlyRunnableActivities = maxActivities is not null,
        }, ct).ConfigureAwait(false);

        // Two hosts that found no hub may have created it at once with different counts: the table tells which won.
        if (azure && await TaskHubPartitions.ReadAsync(storage, Workspace.TaskHub, ct).ConfigureAwait(false) is { } actual && actual != count)
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw new ArgumentException($"Task hub '{Workspace.TaskHub}' was created with {actual} partition(s) by another host while this one started with {count}; start it again without --partitions to join it.");
        }

        return host;
    }

    internal static Option<string> ComputeOption()
    {
        var compute = new Option<string>("--compute")
        {
            Description = "Where the silos' steps run: 'local' (in this process, default) or 'process' (a separate silo runner process per step, with only that silo's credential file; this process holds no silo credential).",
            DefaultValueFactory = _ => SiloComputeKinds.Local,
        };
        compute.AcceptOnlyFromAmong(SiloComputeKinds.Local, SiloComputeKinds.Process);
        return compute;
    }

    private static DurableBackendKind ParseBackend(string value) =>
        value == "azurestorage" ? DurableBackendKind.AzureStorage : DurableBackendKind.InMemory;
}
