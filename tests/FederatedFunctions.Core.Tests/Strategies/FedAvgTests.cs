using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.Tests.Strategies;

public sealed class FedAvgTests
{
    private readonly IFederatedStrategy strategy = new FedAvg();

    [Fact]
    public void Name_IsFedAvg()
    {
        Assert.Equal("fedavg", strategy.Name);
    }

    [Fact]
    public void ConfigureFit_AnyRound_ReturnsEverySiloInOrder()
    {
        string[] silos = ["silo-2", "silo-1", "silo-3"];

        Assert.Equal(silos, strategy.ConfigureFit(3, silos));
        Assert.Equal(silos, strategy.ConfigureEvaluate(3, silos));
    }

    [Fact]
    public void AggregationWeights_Counts120And80_Are0Point6And0Point4()
    {
        var weights = strategy.AggregationWeights([new FitOutcome("a", 120, 0.5), new FitOutcome("b", 80, 0.9)]);

        Assert.Equal([0.6, 0.4], weights);
    }

    [Fact]
    public void AggregationWeights_ZeroExamples_Throws()
    {
        Assert.Throws<ArgumentException>(() => strategy.AggregationWeights([new FitOutcome("a", 0, 0.5), new FitOutcome("b", 80, 0.9)]));
    }

    [Fact]
    public void AggregationWeights_NegativeExamples_Throws()
    {
        Assert.Throws<ArgumentException>(() => strategy.AggregationWeights([new FitOutcome("a", -3, 0.5)]));
    }

    [Fact]
    public void AggregateFit_TwoSilos_SumsExamplesAndWeightsLoss()
    {
        // 0.6 * 0.5 + 0.4 * 1.0 = 0.7
        var summary = strategy.AggregateFit([new FitOutcome("a", 120, 0.5), new FitOutcome("b", 80, 1.0)]);

        Assert.Equal(200, summary.Examples);
        Assert.Equal(0.7, summary.Loss, 1e-12);
    }

    [Fact]
    public void AggregateEvaluate_TwoSilos_AccuracyIsTotalCorrectOverTotalExamples()
    {
        // Accuracy (90 + 150) / (100 + 300) = 0.6, not the mean of 0.9 and 0.5.
        // Loss 0.25 * 0.2 + 0.75 * 1.0 = 0.8.
        var summary = strategy.AggregateEvaluate([new EvaluateOutcome("a", 100, 0.2, 90), new EvaluateOutcome("b", 300, 1.0, 150)]);

        Assert.Equal(400, summary.Examples);
        Assert.Equal(0.6, summary.Accuracy, 1e-12);
        Assert.Equal(0.8, summary.Loss, 1e-12);
    }

    [Fact]
    public void AggregateEvaluate_NoExamples_Throws()
    {
        Assert.Throws<ArgumentException>(() => strategy.AggregateEvaluate([]));
    }

    [Fact]
    public void StrategyCatalog_FedAvgName_CreatesFedAvg()
    {
        Assert.IsType<FedAvg>(StrategyCatalog.Create(new StrategySpec { Name = StrategyNames.FedAvg }));
    }

    [Fact]
    public void StrategyCatalog_UnknownName_Throws()
    {
        Assert.Throws<ArgumentException>(() => StrategyCatalog.Create(new StrategySpec { Name = "fedsgd" }));
    }

    [Fact]
    public void StrategyCatalog_EveryKnownName_IsCreatable()
    {
        Assert.All(StrategyNames.All, name => Assert.Equal(name, StrategyCatalog.Create(new StrategySpec { Name = name }).Name));
    }

    [Fact]
    public void SquaredDistance_LeavesIntegerCountersOut()
    {
        static Core.Tensors.NamedTensor F(params float[] v) => new("w", Core.Tensors.TensorDType.F32, [v.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
        static Core.Tensors.NamedTensor I(long v) => new("n", Core.Tensors.TensorDType.I64, [1], BitConverter.GetBytes(v));

        // (1 − 4)² + (2 − 6)² = 25; the counters 10 and 1000 do not count.
        Assert.Equal(25, StrategyTensors.SquaredDistance([F(1, 2), I(10)], [F(4, 6), I(1000)]));
    }
}
