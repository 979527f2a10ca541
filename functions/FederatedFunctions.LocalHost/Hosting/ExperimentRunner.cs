using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Commands;
using FederatedFunctions.LocalHost.Plots;
using FederatedFunctions.Ml;
using FederatedFunctions.Ml.Experiments;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>What an experiment wrote: its arms, in table order, and where the table, results and plots are.</summary>
public sealed record ExperimentOutcome(string ExperimentId, IReadOnlyList<ArmResult> Arms, string Table, string Directory);

/// <summary>
/// Runs an experiment: makes its split and puts it in local silos, trains the baselines in this process, and each
/// federated arm through the durable orchestrator on the local host, exactly as <c>fl train</c> would.
/// </summary>
public sealed class ExperimentRunner(TextWriter output)
{
    /// <summary>The silos' datasets an experiment's split gives (deterministic in its seed).</summary>
    /// <param name="dataset">The split.</param>
    /// <param name="siloIds">The silos' ids, one per silo.</param>
    /// <param name="repositoryRoot">Where the digits file is (<see cref="DigitsDataset.PathUnder"/>).</param>
    public static IReadOnlyList<SiloDataset> Split(ExperimentDataset dataset, IReadOnlyList<string> siloIds, string repositoryRoot)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(siloIds);
        if (dataset.Source == ExperimentSources.Digits)
        {
            return DigitsDataset.LabelSkewed(DigitsDataset.Read(DigitsDataset.PathUnder(repositoryRoot)), siloIds, unchecked((int)dataset.Seed), dataset.LabelSkew, dataset.TestFraction);
        }

        var generated = SyntheticData.Generate(new SyntheticOptions(dataset.Silos, dataset.Classes, dataset.Features, dataset.TrainPerSilo, dataset.TestPerSilo, dataset.Alpha, dataset.Seed));
        return generated.Select((d, i) => d with { SiloId = siloIds[i] }).ToArray();
    }

    /// <summary>Runs every arm and writes <c>results.json</c>, <c>table.txt</c>, <c>accuracy.png</c> and <c>loss.png</c> into <paramref name="directory"/>.</summary>
    public async Task<ExperimentOutcome> RunAsync(ExperimentSpec spec, Workspace ws, string storage, string backend, string compute, string directory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(ws);
        var ids = ExperimentSpecParser.SiloIds(spec.ExperimentId, spec.Dataset.Silos);
        var silos = Split(spec.Dataset, ids, ws.RepositoryRoot);
        if (silos.FirstOrDefault(s => s.Train.Rows == 0 || s.Test.Rows == 0) is { } empty)
        {
            throw new InvalidDataException($"The split leaves silo {empty.SiloId} with {empty.Train.Rows} train and {empty.Test.Rows} test rows: use fewer silos, a lower dataset.labelSkew, or more data.");
        }

        await output.WriteLineAsync($"Experiment {spec.ExperimentId}: {spec.Dataset.Source}, {silos.Count} silos ({string.Join(", ", silos.Select(s => $"{s.SiloId} {s.Train.Rows}/{s.Test.Rows}"))} train/test rows), {spec.Run.Training.Rounds} rounds x {spec.Run.Training.LocalEpochs} epochs").ConfigureAwait(false);
        var provisioned = await Commands.FlCommands.EnsureSilosAsync(ws, storage, ids, compute, cancellationToken).ConfigureAwait(false);
        foreach (var silo in silos)
        {
            // Written with the silo's own SAS, as a data provider would; every arm reads this same split.
            await Local.LocalSiloProvisioner.WriteSplitsAsync(provisioned[silo.SiloId], silo, DataFormats.Csv, cancellationToken).ConfigureAwait(false);
        }

        var run = spec.Run with { Silos = ids };
        var arms = new List<ArmResult>();
        if (spec.Centralized)
        {
            arms.Add(await BaselineAsync(() => Baselines.Centralized(run, silos, cancellationToken: cancellationToken)).ConfigureAwait(false));
        }

        if (spec.Local)
        {
            foreach (var silo in silos)
            {
                arms.Add(await BaselineAsync(() => Baselines.Alone(run, silo, silos, cancellationToken: cancellationToken)).ConfigureAwait(false));
            }
        }

        using (var loggers = CommandContext.CreateLoggerFactory())
        {
            await using var host = await Commands.FlCommands.StartHostAsync(ws, storage, backend == "azurestorage" ? DurableBackendKind.AzureStorage : DurableBackendKind.InMemory, loggers, runWorker: true, cancellationToken).ConfigureAwait(false);
            var runner = new RunRunner(host, output);
            var checkpoints = host.Services.GetRequiredService<ICheckpointStore>();
            var stamp = DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
            foreach (var arm in spec.Strategies)
            {
                var runId = $"{spec.ExperimentId}-{arm.Label}-{stamp}";
                await output.WriteLineAsync($"{arm.Label}: federated run {runId} ({arm.Strategy.Name})").ConfigureAwait(false);
                RunReport report;
                try
                {
                    report = await runner.RunAsync(run with { RunId = runId, Strategy = arm.Strategy }, runId, backend, cancellationToken).ConfigureAwait(false);
                }
                catch (RunFailedException ex)
                {
                    // One failed arm does not throw the others away: it is in the table, with why.
                    await output.WriteLineAsync($"{arm.Label}: {ex.Message}").ConfigureAwait(false);
                    arms.Add(new ArmResult(arm.Label, ArmKinds.Federated, [], 0, runId, ex.Message));
                    continue;
                }

                var manifests = await checkpoints.ListAsync(run.Checkpoints.Container, runId, cancellationToken).ConfigureAwait(false);
                var rounds = manifests
                    .Where(m => m.Round > 0 && m.Metrics.EvalAccuracy is not null)
                    .Select(m => new ArmRound(m.Round, m.Metrics.EvalAccuracy!.Value, m.Metrics.EvalLoss ?? double.NaN))
                    .ToArray();
                arms.Add(new ArmResult(arm.Label, ArmKinds.Federated, rounds, report.Seconds, runId));
            }
        }

        var table = ExperimentTable.Format(arms, spec.TargetAccuracy);
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(Path.Combine(directory, "table.txt"), table, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(directory, "results.json"), JsonSerializer.Serialize(new { spec.ExperimentId, spec.Dataset, spec.TargetAccuracy, Arms = arms }, Json), cancellationToken).ConfigureAwait(false);
        await File.WriteAllBytesAsync(Path.Combine(directory, "accuracy.png"), Plot(spec, arms, "accuracy", r => r.Accuracy), cancellationToken).ConfigureAwait(false);
        await File.WriteAllBytesAsync(Path.Combine(directory, "loss.png"), Plot(spec, arms, "loss", r => r.Loss), cancellationToken).ConfigureAwait(false);
        return new ExperimentOutcome(spec.ExperimentId, arms, table, directory);
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static byte[] Plot(ExperimentSpec spec, IReadOnlyList<ArmResult> arms, string metric, Func<ArmRound, double> value) =>
        LineChartPng.Draw(
            $"{spec.ExperimentId}: {metric} per round",
            "round",
            metric,
            arms.Select(a => new LineSeries(a.Name, a.Rounds.Select(r => ((double)r.Round, value(r))).ToArray())).ToArray(),
            metric == "accuracy" ? (0, 1) : null).ToPng();

    private async Task<ArmResult> BaselineAsync(Func<ArmResult> train)
    {
        var result = await Task.Run(train).ConfigureAwait(false);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{result.Name}: accuracy {result.FinalAccuracy:P1} after {result.Rounds.Count} rounds ({result.Seconds:0.0} s)")).ConfigureAwait(false);
        return result;
    }
}
