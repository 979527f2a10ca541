using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml.Experiments;

namespace FederatedFunctions.Ml.Tests.Experiments;

public sealed class ExperimentResultsTests
{
    private static readonly ArmResult Arm = new("fedavg", ArmKinds.Federated, [new(1, 0.5, 1.2), new(2, 0.8, 0.6), new(3, 0.75, 0.7)], 12.34, "exp-fedavg-1");

    [Fact]
    public void ArmResult_FinalBestAndRoundsToTarget()
    {
        Assert.Equal(0.75, Arm.FinalAccuracy);
        Assert.Equal(0.8, Arm.BestAccuracy);
        Assert.Equal(0.7, Arm.FinalLoss);
        Assert.Equal(2, Arm.RoundsTo(0.8));
        Assert.Equal(1, Arm.RoundsTo(0.5));
        Assert.Null(Arm.RoundsTo(0.81));
    }

    [Fact]
    public void Table_OneLinePerArmInOrder_WithEveryColumn()
    {
        var other = new ArmResult("centralized", ArmKinds.Centralized, [new(1, 0.9, 0.3)], 1.5);

        var lines = ExperimentTable.Format([other, Arm], 0.8).Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(3, lines.Length);
        Assert.Equal(["arm", "kind", "final", "acc", "best", "acc", "final", "loss", "to", "80", "%", "wall", "s"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["centralized", "centralized", "90.0", "%", "90.0", "%", "0.3000", "1", "1.5"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["fedavg", "federated", "75.0", "%", "80.0", "%", "0.7000", "2", "12.3"], lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void StandardizationOf_HandComputedMeanAndPopulationStddev_ConstantColumnGetsOne()
    {
        var table = new TabularData([1f, 5f, 3f, 5f, 5f, 5f], [0, 1, 0], 3, 2, ["a", "b"]);

        var s = Baselines.StandardizationOf(table);

        // a: 1, 3, 5 → mean 3, variance (4 + 0 + 4) / 3; b: constant 5.
        Assert.Equal([3.0, 5.0], s.Mean);
        Assert.Equal(Math.Sqrt(8.0 / 3), s.Stddev[0], 12);
        Assert.Equal(1.0, s.Stddev[1]);
    }

    [Fact]
    public void Baselines_OnSyntheticSilos_CentralBeatsChanceAndEveryArmHasOneScorePerRound()
    {
        var silos = SyntheticData.Generate(new SyntheticOptions(3, 4, 8, 300, 100, 0.3, 5));
        var run = new RunSpec
        {
            Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 8, Hidden = [16] },
            Data = new DataSpec { Classes = 4, Standardize = true },
            Training = new TrainingSpec { Rounds = 3, BatchSize = 32, LearningRate = 0.1, Seed = 4 },
        };
        var seen = new List<ArmRound>();

        var central = Baselines.Centralized(run, silos, seen.Add);
        var alone = Baselines.Alone(run, silos[0], silos);

        Assert.Equal([1, 2, 3], central.Rounds.Select(r => r.Round));
        Assert.Equal(central.Rounds, seen);
        Assert.True(central.FinalAccuracy > 0.5, $"central {central.FinalAccuracy}");
        Assert.Equal((ArmKinds.Centralized, "centralized"), (central.Kind, central.Name));
        Assert.Equal((ArmKinds.Local, silos[0].SiloId + " alone"), (alone.Kind, alone.Name));
        Assert.Equal(3, alone.Rounds.Count);

        // Deterministic: the same spec and split give the same curve.
        Assert.Equal(central.Rounds, Baselines.Centralized(run, silos).Rounds);
    }

    [Fact]
    public void Union_ConcatenatesRowsInOrder()
    {
        var a = new TabularData([1f, 2f], [0], 1, 2, ["x", "y"]);
        var b = new TabularData([3f, 4f, 5f, 6f], [1, 0], 2, 2, ["x", "y"]);

        var u = Baselines.Union([a, b]);

        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], u.Features);
        Assert.Equal([0L, 1, 0], u.Labels);
        Assert.Equal(3, u.Rows);
    }
}
