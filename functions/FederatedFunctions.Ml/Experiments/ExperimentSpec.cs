using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Ml.Experiments;

/// <summary>
/// An experiment (<c>fl experiment --spec FILE</c>): one simulated data split, and on it centralized training, each silo
/// alone, and federated training with each listed strategy, compared round by round. See <c>docs/experiments.md</c>.
/// </summary>
/// <param name="ExperimentId">Names the experiment's silos (<c>{id}-{n}</c>), runs (<c>{id}-{arm}-{stamp}</c>) and output folder.</param>
/// <param name="Dataset">The simulated split.</param>
/// <param name="Run">The run every arm shares (model, data columns, training, privacy), with the experiment's silos filled in and the strategy of each federated arm.</param>
/// <param name="Strategies">The federated arms, each a strategy with its parameters and a label.</param>
/// <param name="Centralized">Whether to train centrally on the union of the silos' train splits.</param>
/// <param name="Local">Whether to train each silo alone on its own train split.</param>
/// <param name="TargetAccuracy">The accuracy whose first reaching round the table reports; null for none.</param>
public sealed record ExperimentSpec(
    string ExperimentId,
    ExperimentDataset Dataset,
    RunSpec Run,
    IReadOnlyList<ExperimentArm> Strategies,
    bool Centralized,
    bool Local,
    double? TargetAccuracy);

/// <summary>A federated arm: a label and the strategy it trains with.</summary>
public sealed record ExperimentArm(string Label, StrategySpec Strategy);

/// <summary>The simulated split an experiment makes (the same for every arm).</summary>
/// <param name="Source"><c>digits</c> (the UCI handwritten digits python3-sklearn ships, 8×8 pixels scaled to [0, 1]) or <c>synthetic</c> (Gaussian mixtures).</param>
/// <param name="Silos">Number of silos.</param>
/// <param name="Seed">Seed of the split (and of synthetic data).</param>
/// <param name="LabelSkew">digits: the probability that an image goes to the silo of its label (label mod silos), else to any silo; 0 is IID.</param>
/// <param name="TestFraction">digits: the fraction of each silo's images kept for its test split.</param>
/// <param name="Alpha">synthetic: Dirichlet α of the label skew; null is IID.</param>
/// <param name="TrainPerSilo">synthetic: train examples per silo.</param>
/// <param name="TestPerSilo">synthetic: test examples per silo.</param>
/// <param name="Classes">synthetic: classes.</param>
/// <param name="Features">synthetic: features.</param>
public sealed record ExperimentDataset(
    string Source,
    int Silos,
    long Seed,
    double LabelSkew = 0.8,
    double TestFraction = 0.2,
    double? Alpha = null,
    int TrainPerSilo = 500,
    int TestPerSilo = 200,
    int Classes = 4,
    int Features = 8);

/// <summary>Known dataset sources.</summary>
public static class ExperimentSources
{
    /// <summary>The UCI handwritten digits (1,797 images of 8×8 pixels, 10 classes), from python3-sklearn.</summary>
    public const string Digits = "digits";

    /// <summary>Seeded Gaussian mixtures (<see cref="SyntheticData"/>).</summary>
    public const string Synthetic = "synthetic";

    /// <summary>All known sources.</summary>
    public static readonly IReadOnlyList<string> All = [Digits, Synthetic];
}
