using System.Diagnostics;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Ml.Experiments;

/// <summary>The experiment's non-federated arms: the same model, seed and training settings, trained in this process.</summary>
/// <remarks>
/// One baseline "round" is <c>training.localEpochs</c> epochs, as one federated round is for each silo, so curves line up
/// round by round. Every arm is scored on the union of the silos' test splits, which is what federated evaluation's
/// accuracy (total correct over total examples) measures. With <c>data.standardize</c> each baseline standardizes by its
/// own train split (the union, or the one silo's), as a data owner training alone would.
/// </remarks>
public static class Baselines
{
    /// <summary>Centralized training on the union of the silos' train splits.</summary>
    public static ArmResult Centralized(RunSpec run, IReadOnlyList<SiloDataset> silos, Action<ArmRound>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(silos);
        return Train("centralized", ArmKinds.Centralized, run, Union(silos.Select(s => s.Train).ToArray()), Union(silos.Select(s => s.Test).ToArray()), progress, cancellationToken);
    }

    /// <summary>One silo alone, on its own train split, scored on the union of every silo's test split.</summary>
    public static ArmResult Alone(RunSpec run, SiloDataset silo, IReadOnlyList<SiloDataset> silos, Action<ArmRound>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(silos);
        return Train(silo.SiloId + " alone", ArmKinds.Local, run, silo.Train, Union(silos.Select(s => s.Test).ToArray()), progress, cancellationToken);
    }

    /// <summary>The rows of several tables with the same columns, in order.</summary>
    public static TabularData Union(IReadOnlyList<TabularData> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentOutOfRangeException.ThrowIfLessThan(parts.Count, 1, nameof(parts));
        return new TabularData(parts.SelectMany(p => p.Features).ToArray(), parts.SelectMany(p => p.Labels).ToArray(), parts.Sum(p => p.Rows), parts[0].Columns, parts[0].FeatureNames);
    }

    /// <summary>Each column's mean and population standard deviation (1 for a constant column).</summary>
    public static FeatureStandardization StandardizationOf(TabularData table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var mean = new double[table.Columns];
        var square = new double[table.Columns];
        for (var i = 0; i < table.Features.Length; i++)
        {
            mean[i % table.Columns] += table.Features[i];
        }

        for (var j = 0; j < table.Columns; j++)
        {
            mean[j] /= Math.Max(1, table.Rows);
        }

        for (var i = 0; i < table.Features.Length; i++)
        {
            var d = table.Features[i] - mean[i % table.Columns];
            square[i % table.Columns] += d * d;
        }

        var stddev = square.Select(s => Math.Sqrt(s / Math.Max(1, table.Rows))).Select(s => s > 0 ? s : 1).ToArray();
        return new FeatureStandardization(mean, stddev);
    }

    private static ArmResult Train(string name, string kind, RunSpec run, TabularData train, TabularData test, Action<ArmRound>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        var watch = Stopwatch.StartNew();
        if (run.Data.Standardize)
        {
            var standardization = StandardizationOf(train);
            (train, test) = (train.Standardized(standardization), test.Standardized(standardization));
        }

        var classes = run.Data.Classes;
        var state = ModelFactory.InitialState(run.Model, train.Columns, classes, run.Training.Seed);
        var rounds = new List<ArmRound>();
        for (var round = 1; round <= run.Training.Rounds; round++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            state = LocalTrainer.Train(run.Model, run.Training, classes, state, train, round, name, cancellationToken).State;
            var scored = LocalTrainer.Evaluate(run.Model, classes, state, test, cancellationToken);
            var result = new ArmRound(round, (double)scored.Correct / Math.Max(1, scored.Examples), scored.Loss);
            rounds.Add(result);
            progress?.Invoke(result);
        }

        return new ArmResult(name, kind, rounds, watch.Elapsed.TotalSeconds);
    }
}
