using System.Runtime.InteropServices;
using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Core.Tests.Specs;

namespace FederatedFunctions.Core.Tests.Strategies;

/// <summary>
/// Every strategy against its published update rule, on tiny float32 models whose expected values are computed by hand
/// (the comment above each literal shows the arithmetic); and the catalog's validation of parameters and combinations.
/// </summary>
public sealed class StrategyRulesTests
{
    private const string W = "layers.0.weight";
    private const string B = "layers.0.bias";
    private const string Counter = "layers.1.num_batches_tracked";

    // ---------------------------------------------------------------- FedAvg (McMahan et al. 2017)

    [Fact]
    public void FedAvg_TwoUpdates_MeanWeightedByExampleCount()
    {
        IFederatedStrategy fedavg = new FedAvg();
        var weights = fedavg.AggregationWeights(Fits(1, 3));

        // n = [1, 3], Σn = 4: weights 1/4 and 3/4.
        Assert.Equal([0.25, 0.75], weights);

        var mean = StrategyTensors.WeightedMean([Model(F32(W, 4, 0), F32(B, -2)), Model(F32(W, 0, 8), F32(B, 2))], weights);

        // W: 0.25·[4, 0] + 0.75·[0, 8] = [1, 6]; B: 0.25·(−2) + 0.75·2 = 1.
        Assert.Equal([1f, 6f], Floats(mean, W));
        Assert.Equal([1f], Floats(mean, B));
    }

    [Fact]
    public void FedAvg_Shape_StreamingWithoutServerState()
    {
        IFederatedStrategy fedavg = new FedAvg();

        Assert.Equal(AggregationMode.Streaming, fedavg.Mode);
        Assert.Null(fedavg.ServerOptimizer);
        Assert.True(fedavg.CombinesWithSecureAggregation);
        Assert.True(fedavg.CombinesWithDifferentialPrivacy);
        Assert.Equal(0, fedavg.ConfigureSiloFit(1, "silo-1").ProximalMu);
        Assert.Throws<NotSupportedException>(() => fedavg.Combine([Model(F32(W, 1))], Fits(1)));
    }

    // ---------------------------------------------------------------- FedAvgM (Hsu et al. 2019)

    [Fact]
    public void FedAvgM_ThreeRoundsStateFedBack_MomentumAccumulates()
    {
        // m_t = β·m_{t−1} + (w_t − a_t), w_{t+1} = w_t − η·m_t; β = 0.5, η = 0.5.
        IServerOptimizer optimizer = new FedAvgM(new StrategySpec { Name = StrategyNames.FedAvgM, ServerLearningRate = 0.5, ServerMomentum = 0.5 });
        IReadOnlyList<NamedTensor>? state = null;

        // Round 1: w1 = W [1, 2], B [0, −1]; a1 = W [0, 3], B [1, −1].
        // g1 = w1 − a1 = W [1, −1], B [−1, 0]; m1 = 0.5·0 + g1 = g1.
        // w2 = w1 − 0.5·m1 = W [0.5, 2.5], B [0.5, −1].
        var w1 = Model(F32(W, 1, 2), F32(B, 0, -1));
        var w2 = Step(optimizer, w1, Model(F32(W, 0, 3), F32(B, 1, -1)), ref state);
        Assert.Equal([0.5f, 2.5f], Floats(w2, W));
        Assert.Equal([0.5f, -1f], Floats(w2, B));

        // Round 2: a2 = W [−0.5, 3.5], B [0.5, −3].
        // g2 = w2 − a2 = W [1, −1], B [0, 2]; m2 = 0.5·m1 + g2 = W [0.5 + 1, −0.5 − 1] = [1.5, −1.5], B [−0.5 + 0, 0 + 2] = [−0.5, 2].
        // w3 = w2 − 0.5·m2 = W [0.5 − 0.75, 2.5 + 0.75] = [−0.25, 3.25], B [0.5 + 0.25, −1 − 1] = [0.75, −2].
        var w3 = Step(optimizer, w2, Model(F32(W, -0.5f, 3.5f), F32(B, 0.5f, -3)), ref state);
        Assert.Equal([-0.25f, 3.25f], Floats(w3, W));
        Assert.Equal([0.75f, -2f], Floats(w3, B));

        // Round 3: the silos send w3 back unchanged, so g3 = 0 and only momentum moves the model.
        // m3 = 0.5·m2 = W [0.75, −0.75], B [−0.25, 1].
        // w4 = w3 − 0.5·m3 = W [−0.25 − 0.375, 3.25 + 0.375] = [−0.625, 3.625], B [0.75 + 0.125, −2 − 0.5] = [0.875, −2.5].
        var w4 = Step(optimizer, w3, w3, ref state);
        Assert.Equal([-0.625f, 3.625f], Floats(w4, W));
        Assert.Equal([0.875f, -2.5f], Floats(w4, B));
    }

    [Fact]
    public void FedAvgM_Defaults_LearningRateOneMomentumPointNine()
    {
        var fedavgm = new FedAvgM(new StrategySpec { Name = StrategyNames.FedAvgM });
        IReadOnlyList<NamedTensor>? state = null;

        Assert.Equal((1.0, 0.9), (fedavgm.LearningRate, fedavgm.Momentum));

        // Round 1: w1 = [1], a1 = [0]: m1 = g1 = 1, w2 = 1 − 1·1 = 0 (the aggregate, as FedAvg).
        var w2 = Step(fedavgm, Model(F32(W, 1)), Model(F32(W, 0)), ref state);
        Assert.Equal([0f], Floats(w2, W));

        // Round 2: a2 = w2 = [0]: m2 = 0.9·1 + 0 = 0.9, w3 = 0 − 1·0.9 = −0.9.
        var w3 = Step(fedavgm, w2, w2, ref state);
        Assert.Equal([-0.9f], Floats(w3, W));
    }

    [Fact]
    public void FedAvgM_MomentumZeroRateOne_IsTheAggregate()
    {
        IServerOptimizer optimizer = new FedAvgM(new StrategySpec { Name = StrategyNames.FedAvgM, ServerLearningRate = 1, ServerMomentum = 0 });
        IReadOnlyList<NamedTensor>? state = null;

        // β = 0, η = 1: w − (w − a) = a, every round.
        var w2 = Step(optimizer, Model(F32(W, 1, 2)), Model(F32(W, 5, -3)), ref state);
        var w3 = Step(optimizer, w2, Model(F32(W, 0.25f, 8)), ref state);

        Assert.Equal([5f, -3f], Floats(w2, W));
        Assert.Equal([0.25f, 8f], Floats(w3, W));
    }

    // ---------------------------------------------------------------- FedProx (Li et al. 2020)

    [Fact]
    public void FedProx_NoMu_EverySiloToldDefaultPointZeroOne()
    {
        IFederatedStrategy fedprox = new FedProx(new StrategySpec { Name = StrategyNames.FedProx });

        Assert.Equal(0.01, fedprox.ConfigureSiloFit(1, "silo-1").ProximalMu);
        Assert.Equal(0.01, fedprox.ConfigureSiloFit(7, "silo-3").ProximalMu);
    }

    [Fact]
    public void FedProx_MuSet_EverySiloToldItEveryRound()
    {
        IFederatedStrategy fedprox = new FedProx(new StrategySpec { Name = StrategyNames.FedProx, ProximalMu = 0.5 });

        Assert.All(new[] { (1, "silo-1"), (2, "silo-2"), (9, "silo-4") }, f => Assert.Equal(0.5, fedprox.ConfigureSiloFit(f.Item1, f.Item2).ProximalMu));
    }

    [Fact]
    public void FedProx_ServerStep_IsFedAvgs()
    {
        IFederatedStrategy fedprox = new FedProx(new StrategySpec { Name = StrategyNames.FedProx, ProximalMu = 0.1 });

        // The proximal term is the silo's; the server averages by example count: n = [1, 3] → [1/4, 3/4].
        Assert.Equal([0.25, 0.75], fedprox.AggregationWeights(Fits(1, 3)));
        Assert.Null(fedprox.ServerOptimizer);
        Assert.Equal(AggregationMode.Streaming, fedprox.Mode);
    }

    // ---------------------------------------------------------------- FedAdam / FedYogi / FedAdagrad (Reddi et al. 2021, Algorithm 2)

    [Fact]
    public void FedAdam_TwoRounds_PaperRuleWithoutBiasCorrection()
    {
        // Δ = a − w; m = β₁m + (1 − β₁)Δ; v = β₂v + (1 − β₂)Δ²; w += η·m / (√v + τ); m₋₁ = 0, v₋₁ = τ².
        // η = 3, β₁ = 0.5, β₂ = 0.5, τ = 0.5 (v₋₁ = 0.25).
        IServerOptimizer optimizer = new FedAdam(new StrategySpec { Name = StrategyNames.FedAdam, ServerLearningRate = 3, Beta1 = 0.5, Beta2 = 0.5, Tau = 0.5 });
        IReadOnlyList<NamedTensor>? state = null;

        // Round 1: w1 = [1, 1], a1 = [1.5, −2.5]: Δ1 = [0.5, −3.5].
        // m1 = 0.5·Δ1 = [0.25, −1.75]; v1 = 0.5·0.25 + 0.5·Δ1² = [0.125 + 0.125, 0.125 + 6.125] = [0.25, 6.25]; √v1 = [0.5, 2.5].
        // w2 = w1 + 3·m1 / (√v1 + 0.5) = [1 + 0.75/1, 1 − 5.25/3] = [1.75, −0.75].
        // (Flower's bias correction would scale η by √(1 − 0.5)/(1 − 0.5) ≈ 1.414 and give [2.06, −1.47].)
        var w2 = Step(optimizer, Model(F32(W, 1, 1)), Model(F32(W, 1.5f, -2.5f)), ref state);
        Assert.Equal([1.75f, -0.75f], Floats(w2, W));

        // Round 2: a2 = [1.25, 1.75]: Δ2 = [−0.5, 2.5].
        // m2 = 0.5·m1 + 0.5·Δ2 = [0.125 − 0.25, −0.875 + 1.25] = [−0.125, 0.375].
        // v2 = 0.5·v1 + 0.5·Δ2² = [0.125 + 0.125, 3.125 + 3.125] = [0.25, 6.25]; √v2 = [0.5, 2.5].
        // w3 = w2 + 3·m2 / (√v2 + 0.5) = [1.75 − 0.375/1, −0.75 + 1.125/3] = [1.375, −0.375].
        var w3 = Step(optimizer, w2, Model(F32(W, 1.25f, 1.75f)), ref state);
        Assert.Equal([1.375f, -0.375f], Floats(w3, W));
    }

    [Fact]
    public void FedYogi_TwoRounds_SignBranchBothWays()
    {
        // v = v − (1 − β₂)·Δ²·sign(v − Δ²): it grows when Δ² > v and shrinks when Δ² < v.
        // η = 1, β₁ = 0.5, β₂ = 0.5, τ = 0.75 (v₋₁ = 0.5625).
        IServerOptimizer optimizer = new FedYogi(new StrategySpec { Name = StrategyNames.FedYogi, ServerLearningRate = 1, Beta1 = 0.5, Beta2 = 0.5, Tau = 0.75 });
        IReadOnlyList<NamedTensor>? state = null;

        // Round 1: w1 = [0, 1], a1 = [3, −2]: Δ1 = [3, −3], Δ1² = 9 > 0.5625 (grows).
        // m1 = 0.5·Δ1 = [1.5, −1.5]; v1 = 0.5625 + 0.5·9 = 5.0625 (both); √v1 = 2.25.
        // w2 = w1 + m1 / (2.25 + 0.75) = [0 + 0.5, 1 − 0.5] = [0.5, 0.5].
        var w2 = Step(optimizer, Model(F32(W, 0, 1)), Model(F32(W, 3, -2)), ref state);
        Assert.Equal([0.5f, 0.5f], Floats(w2, W));

        // Round 2: a2 = [2.5, 9.5]: Δ2 = [2, 9].
        // m2 = 0.5·m1 + 0.5·Δ2 = [0.75 + 1, −0.75 + 4.5] = [1.75, 3.75].
        // Coordinate 0: Δ² = 4 < 5.0625 (shrinks): v2 = 5.0625 − 0.5·4 = 3.0625, √ = 1.75.
        //   (Adam's rule would give 0.5·5.0625 + 0.5·4 = 4.53125 and another model.)
        // Coordinate 1: Δ² = 81 > 5.0625 (grows): v2 = 5.0625 + 0.5·81 = 45.5625, √ = 6.75.
        // w3 = w2 + m2 / (√v2 + 0.75) = [0.5 + 1.75/2.5, 0.5 + 3.75/7.5] = [1.2, 1.0].
        var w3 = Step(optimizer, w2, Model(F32(W, 2.5f, 9.5f)), ref state);
        AssertClose([1.2f, 1.0f], Floats(w3, W), 1e-6);
    }

    [Fact]
    public void FedAdagrad_TwoRounds_SecondMomentSumsSquares()
    {
        // v = v + Δ²; β₁ defaults to 0, so m = Δ. η = 1, τ = 0.75 (v₋₁ = 0.5625).
        IServerOptimizer optimizer = new FedAdagrad(new StrategySpec { Name = StrategyNames.FedAdagrad, ServerLearningRate = 1, Tau = 0.75 });
        IReadOnlyList<NamedTensor>? state = null;

        // Round 1: w1 = [1, −1], a1 = [2, −1]: Δ1 = [1, 0]; m1 = [1, 0].
        // v1 = [0.5625 + 1, 0.5625 + 0] = [1.5625, 0.5625]; √v1 = [1.25, 0.75].
        // w2 = w1 + m1 / (√v1 + 0.75) = [1 + 1/2, −1 + 0/1.5] = [1.5, −1].
        var w2 = Step(optimizer, Model(F32(W, 1, -1)), Model(F32(W, 2, -1)), ref state);
        Assert.Equal([1.5f, -1f], Floats(w2, W));

        // Round 2: a2 = [4.5, 0]: Δ2 = [3, 1]; m2 = [3, 1].
        // v2 = v1 + Δ2² = [1.5625 + 9, 0.5625 + 1] = [10.5625, 1.5625]; √v2 = [3.25, 1.25].
        // w3 = w2 + m2 / (√v2 + 0.75) = [1.5 + 3/4, −1 + 1/2] = [2.25, −0.5].
        var w3 = Step(optimizer, w2, Model(F32(W, 4.5f, 0)), ref state);
        Assert.Equal([2.25f, -0.5f], Floats(w3, W));
    }

    [Fact]
    public void FedOpt_Defaults_AreFlowers()
    {
        var adam = new FedAdam(new StrategySpec { Name = StrategyNames.FedAdam });
        var yogi = new FedYogi(new StrategySpec { Name = StrategyNames.FedYogi });
        var adagrad = new FedAdagrad(new StrategySpec { Name = StrategyNames.FedAdagrad });

        Assert.Equal((0.1, 0.9, 0.99, 1e-9), (adam.LearningRate, adam.Beta1, adam.Beta2, adam.Tau));
        Assert.Equal((0.01, 0.9, 0.99, 1e-3), (yogi.LearningRate, yogi.Beta1, yogi.Beta2, yogi.Tau));
        Assert.Equal((0.1, 0.0, 1e-9), (adagrad.LearningRate, adagrad.Beta1, adagrad.Tau));
    }

    [Theory]
    [InlineData(StrategyNames.FedAvgM)]
    [InlineData(StrategyNames.FedAdam)]
    [InlineData(StrategyNames.FedYogi)]
    [InlineData(StrategyNames.FedAdagrad)]
    public void ServerOptimizer_Int64Tensor_TakenFromTheAggregateAndKeptOutOfState(string name)
    {
        var optimizer = StrategyCatalog.Create(new StrategySpec { Name = name }).ServerOptimizer;
        Assert.NotNull(optimizer);
        IReadOnlyList<NamedTensor>? state = null;

        // The float weights do not move (a = w, so Δ = 0 and m = 0); the counter is the aggregate's, 5 → 9 → 12.
        var w1 = Model(F32(W, 1, 2), I64(Counter, 5));
        var w2 = Step(optimizer, w1, Model(F32(W, 1, 2), I64(Counter, 9)), ref state);
        Assert.All(state!, t => Assert.Equal(TensorDType.F32, t.DType));
        var w3 = Step(optimizer, w2, Model(F32(W, 1, 2), I64(Counter, 12)), ref state);

        Assert.Equal([1f, 2f], Floats(w3, W));
        var counter = w3.Single(t => t.Name == Counter);
        Assert.Equal(TensorDType.I64, counter.DType);
        Assert.Equal([12L], MemoryMarshal.Cast<byte, long>(counter.Data.Span).ToArray());
        Assert.Equal([9L], MemoryMarshal.Cast<byte, long>(w2.Single(t => t.Name == Counter).Data.Span).ToArray());
        Assert.All(state!, t => Assert.Equal(TensorDType.F32, t.DType));
    }

    // ---------------------------------------------------------------- training.freeze around the server step

    [Fact]
    public void FrozenLayers_FrozenOfNothing_ModelUnchanged()
    {
        var model = Model(F32(W, 3, 4), F32(B, 5));
        var global = Model(F32(W, 0, 0), F32(B, 0));

        Assert.Same(model, FrozenLayers.Restore(model, global, null));
        Assert.Same(model, FrozenLayers.Restore(model, global, []));
        Assert.False(FrozenLayers.IsFrozen(W, null));
        Assert.False(FrozenLayers.IsFrozen(W, []));
    }

    [Fact]
    public void FrozenLayers_AfterServerMomentum_FrozenLayerKeepsGlobal()
    {
        IServerOptimizer optimizer = new FedAvgM(new StrategySpec { Name = StrategyNames.FedAvgM, ServerLearningRate = 1, ServerMomentum = 0.5 });
        var global = Model(F32(W, 1, 1), F32("layers.2.weight", 2));
        var aggregate = Model(F32(W, 1, 1), F32("layers.2.weight", 0));

        // layers.2: g = 2 − 0 = 2, m = 2, w − m = 0; restored it is the global 2. layers.0 did not move.
        var state = optimizer.NextState(global, aggregate, null);
        var next = FrozenLayers.Restore(optimizer.Apply(global, aggregate, state), global, ["layers.2"]);

        Assert.Equal([2f], Floats(next, "layers.2.weight"));
        Assert.Equal([1f, 1f], Floats(next, W));
    }

    // ---------------------------------------------------------------- FedMedian (Yin et al. 2018)

    [Fact]
    public void FedMedian_OddCount_CoordinateWiseMiddleUnweighted()
    {
        IFederatedStrategy median = new FedMedian();

        var result = median.Combine(
            [
                Model(F32(W, 1, 5), F32(B, 0)),
                Model(F32(W, 3, -2), F32(B, -1)),
                Model(F32(W, 2, 100), F32(B, 7)),
            ],
            Fits(1, 1, 1000));

        // W[0]: sorted [1, 2, 3] → 2; W[1]: sorted [−2, 5, 100] → 5; B: sorted [−1, 0, 7] → 0.
        // The third silo's 1000 examples do not pull the median towards it.
        Assert.Equal([2f, 5f], Floats(result.Model, W));
        Assert.Equal([0f], Floats(result.Model, B));
        Assert.Null(result.Weights);
        Assert.Equal(AggregationMode.Buffered, median.Mode);
    }

    [Fact]
    public void FedMedian_EvenCount_MeanOfTheTwoMiddleValues()
    {
        IFederatedStrategy median = new FedMedian();

        var result = median.Combine(
            [Model(F32(W, 1, 10)), Model(F32(W, 4, -2)), Model(F32(W, 2, 0)), Model(F32(W, 100, 3))],
            Fits(1, 2, 3, 4));

        // W[0]: sorted [1, 2, 4, 100] → (2 + 4)/2 = 3; W[1]: sorted [−2, 0, 3, 10] → (0 + 3)/2 = 1.5.
        Assert.Equal([3f, 1.5f], Floats(result.Model, W));
    }

    // ---------------------------------------------------------------- FedTrimmedAvg (Yin et al. 2018)

    [Fact]
    public void FedTrimmedAvg_DefaultFractionFiveUpdates_CutsOnePerEnd()
    {
        var trimmed = new FedTrimmedAvg(new StrategySpec { Name = StrategyNames.FedTrimmedAvg });
        Assert.Equal(0.2, trimmed.TrimFraction);

        var result = ((IFederatedStrategy)trimmed).Combine(
            [
                Model(F32(W, 3, 0), F32(B, 1)),
                Model(F32(W, 100, -50), F32(B, 1)),
                Model(F32(W, 1, 1), F32(B, 1)),
                Model(F32(W, 4, 2), F32(B, 1)),
                Model(F32(W, 2, 3), F32(B, 5)),
            ],
            Fits(1, 1000, 1, 1, 1));

        // k = ⌊0.2·5⌋ = 1 per end.
        // W[0]: sorted [1, 2, 3, 4, 100] → mean(2, 3, 4) = 3; W[1]: sorted [−50, 0, 1, 2, 3] → mean(0, 1, 2) = 1.
        // B: sorted [1, 1, 1, 1, 5] → mean(1, 1, 1) = 1. Unweighted (silo 2's 1000 examples count once).
        Assert.Equal([3f, 1f], Floats(result.Model, W));
        Assert.Equal([1f], Floats(result.Model, B));
        Assert.Null(result.Weights);
    }

    [Fact]
    public void FedTrimmedAvg_FractionTimesCountBelowOne_CutsNothing()
    {
        IFederatedStrategy trimmed = new FedTrimmedAvg(new StrategySpec { Name = StrategyNames.FedTrimmedAvg, TrimFraction = 0.2 });

        var result = trimmed.Combine([Model(F32(W, 1, 0)), Model(F32(W, 2, 0)), Model(F32(W, 3, 0)), Model(F32(W, 10, 4))], Fits(10, 20, 30, 40));

        // k = ⌊0.2·4⌋ = ⌊0.8⌋ = 0: the plain unweighted mean, W = [(1 + 2 + 3 + 10)/4, 4/4] = [4, 1].
        Assert.Equal([4f, 1f], Floats(result.Model, W));
    }

    [Fact]
    public void FedTrimmedAvg_QuarterOfEight_CutsTwoPerEnd()
    {
        IFederatedStrategy trimmed = new FedTrimmedAvg(new StrategySpec { Name = StrategyNames.FedTrimmedAvg, TrimFraction = 0.25 });
        float[] values = [5, -100, 2, 100, 4, 1, 6, 3];

        var result = trimmed.Combine(values.Select(v => Model(F32(W, v))).ToArray(), Fits(1, 1, 1, 1, 1, 1, 1, 1));

        // k = ⌊0.25·8⌋ = 2: sorted [−100, 1, 2, 3, 4, 5, 6, 100] → mean(2, 3, 4, 5) = 3.5.
        Assert.Equal([3.5f], Floats(result.Model, W));
    }

    [Fact]
    public void FedTrimmedAvg_Fraction0Point29Of100Updates_Cuts29PerEnd()
    {
        IFederatedStrategy trimmed = new FedTrimmedAvg(new StrategySpec { Name = StrategyNames.FedTrimmedAvg, TrimFraction = 0.29 });
        var values = Enumerable.Repeat(1000f, 29).Concat(Enumerable.Repeat(0f, 42)).Concat(Enumerable.Repeat(-1f, 29)).ToArray();

        var result = trimmed.Combine(values.Select(v => Model(F32(W, v))).ToArray(), values.Select(_ => new FitOutcome("s", 1, 0)).ToArray());

        // k = ⌊0.29·100⌋ = 29 per end: the 29 × −1 and the 29 × 1000 go, the mean of 42 zeros is 0.
        // (Cutting 28 would keep one −1 and one 1000: 999/44 ≈ 22.7.)
        Assert.Equal([0f], Floats(result.Model, W));
    }

    // ---------------------------------------------------------------- Krum and Multi-Krum (Blanchard et al. 2017)

    // Five updates as points (W, B): (0, 0), (2, 0), (0, 2), (1, 1) and the outlier (10, 10).
    // Squared distances (over both tensors):
    //   d01 = 4, d02 = 4, d03 = 2, d04 = 200, d12 = 8, d13 = 2, d14 = 64 + 100 = 164,
    //   d23 = 2, d24 = 100 + 64 = 164, d34 = 81 + 81 = 162.
    // With f = 1, n − f − 2 = 2 nearest others:
    //   s0 = 2 + 4 = 6, s1 = 2 + 4 = 6, s2 = 2 + 4 = 6, s3 = 2 + 2 = 4, s4 = 162 + 164 = 326.
    private static IReadOnlyList<NamedTensor>[] FivePoints() =>
    [
        Model(F32(W, 0), F32(B, 0)),
        Model(F32(W, 2), F32(B, 0)),
        Model(F32(W, 0), F32(B, 2)),
        Model(F32(W, 1), F32(B, 1)),
        Model(F32(W, 10), F32(B, 10)),
    ];

    [Fact]
    public void Krum_OneOutlier_PicksTheUpdateClosestToItsNeighbours()
    {
        IFederatedStrategy krum = new Krum(new StrategySpec { Name = StrategyNames.Krum, Byzantine = 1 });

        Assert.Equal([6.0, 6.0, 6.0, 4.0, 326.0], Krum.Scores(FivePoints(), 1));
        var result = krum.Combine(FivePoints(), Fits(1, 1, 1, 1, 1));

        // Lowest score s3 = 4: the model is update 3, (1, 1), which alone has a share.
        Assert.Equal([1f], Floats(result.Model, W));
        Assert.Equal([1f], Floats(result.Model, B));
        Assert.Equal([0.0, 0.0, 0.0, 1.0, 0.0], result.Weights);
    }

    [Fact]
    public void Krum_ByzantineCount_SetsHowManyNeighboursAreScored()
    {
        // Points 0, 1, 2, 4, 5 (second coordinate 7 everywhere). Squared distances:
        //   d01 = 1, d02 = 4, d03 = 16, d04 = 25, d12 = 1, d13 = 9, d14 = 16, d23 = 4, d24 = 9, d34 = 1.
        // f = 1 → 2 neighbours: s = [1+4, 1+1, 1+4, 1+4, 1+9] = [5, 2, 5, 5, 10]: update 1 (value 1).
        // f = 0 → 3 neighbours: s = [1+4+16, 1+1+9, 1+4+4, 1+4+9, 1+9+16] = [21, 11, 9, 14, 26]: update 2 (value 2).
        IReadOnlyList<NamedTensor>[] updates = [.. new float[] { 0, 1, 2, 4, 5 }.Select(v => Model(F32(W, v, 7)))];

        Assert.Equal([5.0, 2.0, 5.0, 5.0, 10.0], Krum.Scores(updates, 1));
        Assert.Equal([21.0, 11.0, 9.0, 14.0, 26.0], Krum.Scores(updates, 0));
        IFederatedStrategy f1 = new Krum(new StrategySpec { Name = StrategyNames.Krum, Byzantine = 1 });
        IFederatedStrategy f0 = new Krum(new StrategySpec { Name = StrategyNames.Krum, Byzantine = 0 });
        Assert.Equal([1f, 7f], Floats(f1.Combine(updates, Fits(1, 1, 1, 1, 1)).Model, W));
        Assert.Equal([2f, 7f], Floats(f0.Combine(updates, Fits(1, 1, 1, 1, 1)).Model, W));
    }

    [Fact]
    public void Krum_Tie_FirstInOrderWins()
    {
        IFederatedStrategy krum = new Krum(new StrategySpec { Name = StrategyNames.Krum });

        // n = 3, f = 0 → 1 neighbour. [10], [0], [1]: d01 = 100, d02 = 81, d12 = 1 → s = [81, 1, 1]: updates 1 and 2 tie.
        var forward = krum.Combine([Model(F32(W, 10)), Model(F32(W, 0)), Model(F32(W, 1))], Fits(1, 1, 1));
        var backward = krum.Combine([Model(F32(W, 10)), Model(F32(W, 1)), Model(F32(W, 0))], Fits(1, 1, 1));

        // Whichever of the tied two comes first (index 1) is chosen.
        Assert.Equal([0f], Floats(forward.Model, W));
        Assert.Equal([1f], Floats(backward.Model, W));
        Assert.Equal([0.0, 1.0, 0.0], forward.Weights);
        Assert.Equal([0.0, 1.0, 0.0], backward.Weights);
    }

    [Fact]
    public void MultiKrum_DefaultKeep_UnweightedMeanOfTheNMinusFBest()
    {
        IFederatedStrategy multikrum = new MultiKrum(new StrategySpec { Name = StrategyNames.MultiKrum, Byzantine = 1 });

        var result = multikrum.Combine(FivePoints(), Fits(1, 100, 10, 1000, 5));

        // m = n − f = 4: scores [6, 6, 6, 4, 326] keep updates 0, 1, 2, 3 and drop the outlier.
        // Unweighted (examples ignored): W = (0 + 2 + 0 + 1)/4 = 0.75, B = (0 + 0 + 2 + 1)/4 = 0.75.
        Assert.Equal([0.75f], Floats(result.Model, W));
        Assert.Equal([0.75f], Floats(result.Model, B));
        Assert.Equal([0.25, 0.25, 0.25, 0.25, 0.0], result.Weights);
    }

    [Fact]
    public void MultiKrum_KeepTwo_BestThenFirstOfTheTied()
    {
        IFederatedStrategy multikrum = new MultiKrum(new StrategySpec { Name = StrategyNames.MultiKrum, Byzantine = 1, Keep = 2 });

        var result = multikrum.Combine(FivePoints(), Fits(1, 1, 1, 1, 1));

        // Best s3 = 4, then the tie at 6 goes to update 0: mean of (1, 1) and (0, 0) = (0.5, 0.5).
        Assert.Equal([0.5f], Floats(result.Model, W));
        Assert.Equal([0.5f], Floats(result.Model, B));
        Assert.Equal([0.5, 0.0, 0.0, 0.5, 0.0], result.Weights);
    }

    [Fact]
    public void MultiKrum_KeepOne_IsKrum()
    {
        IFederatedStrategy multikrum = new MultiKrum(new StrategySpec { Name = StrategyNames.MultiKrum, Byzantine = 1, Keep = 1 });

        var result = multikrum.Combine(FivePoints(), Fits(1, 1, 1, 1, 1));

        // Update 3 alone (score 4): (1, 1).
        Assert.Equal([1f], Floats(result.Model, W));
        Assert.Equal([1f], Floats(result.Model, B));
        Assert.Equal([0.0, 0.0, 0.0, 1.0, 0.0], result.Weights);
    }

    // ---------------------------------------------------------------- StrategyCatalog.Validate

    [Theory]
    [InlineData(StrategyNames.FedAvg, "serverMomentum")]
    [InlineData(StrategyNames.FedAvg, "proximalMu")]
    [InlineData(StrategyNames.FedAvgM, "beta1")]
    [InlineData(StrategyNames.FedProx, "tau")]
    [InlineData(StrategyNames.FedAdam, "serverMomentum")]
    [InlineData(StrategyNames.FedYogi, "trimFraction")]
    [InlineData(StrategyNames.FedAdagrad, "beta2")]
    [InlineData(StrategyNames.FedMedian, "trimFraction")]
    [InlineData(StrategyNames.FedTrimmedAvg, "byzantine")]
    [InlineData(StrategyNames.Krum, "keep")]
    [InlineData(StrategyNames.MultiKrum, "serverLearningRate")]
    public void Validate_ParameterTheStrategyDoesNotUse_ReportsUnused(string name, string field)
    {
        // A value in range for whoever does use it: 1 silo kept or tolerated, 0.1 otherwise.
        var errors = Validate(With(name, field, field is "byzantine" or "keep" ? 1 : 0.1), sampled: 5);

        Assert.Equal([($"$.strategy.{field}", "unused")], errors);
    }

    [Theory]
    [InlineData(StrategyNames.FedAvgM, "serverLearningRate", 0.0)]
    [InlineData(StrategyNames.FedAvgM, "serverLearningRate", 10.5)]
    [InlineData(StrategyNames.FedAvgM, "serverLearningRate", double.NaN)]
    [InlineData(StrategyNames.FedAvgM, "serverMomentum", -0.1)]
    [InlineData(StrategyNames.FedAvgM, "serverMomentum", 1.0)]
    [InlineData(StrategyNames.FedProx, "proximalMu", -0.01)]
    [InlineData(StrategyNames.FedProx, "proximalMu", 1000.5)]
    [InlineData(StrategyNames.FedProx, "proximalMu", double.PositiveInfinity)]
    [InlineData(StrategyNames.FedAdam, "serverLearningRate", 0.0)]
    [InlineData(StrategyNames.FedAdam, "serverLearningRate", 11.0)]
    [InlineData(StrategyNames.FedAdam, "beta1", -0.1)]
    [InlineData(StrategyNames.FedAdam, "beta1", 1.0)]
    [InlineData(StrategyNames.FedAdam, "beta2", 1.0)]
    [InlineData(StrategyNames.FedAdam, "beta2", -0.5)]
    [InlineData(StrategyNames.FedAdam, "tau", 0.0)]
    [InlineData(StrategyNames.FedAdam, "tau", 1.5)]
    [InlineData(StrategyNames.FedYogi, "serverLearningRate", -1.0)]
    [InlineData(StrategyNames.FedYogi, "beta1", 1.5)]
    [InlineData(StrategyNames.FedYogi, "beta2", 1.0)]
    [InlineData(StrategyNames.FedYogi, "tau", -1e-3)]
    [InlineData(StrategyNames.FedAdagrad, "serverLearningRate", 0.0)]
    [InlineData(StrategyNames.FedAdagrad, "beta1", 1.0)]
    [InlineData(StrategyNames.FedAdagrad, "tau", 2.0)]
    [InlineData(StrategyNames.FedTrimmedAvg, "trimFraction", 0.5)]
    [InlineData(StrategyNames.FedTrimmedAvg, "trimFraction", -0.1)]
    [InlineData(StrategyNames.Krum, "byzantine", -1.0)]
    [InlineData(StrategyNames.MultiKrum, "byzantine", -1.0)]
    [InlineData(StrategyNames.MultiKrum, "keep", 0.0)]
    [InlineData(StrategyNames.MultiKrum, "keep", 5.0)]
    public void Validate_ParameterOutOfRange_ReportsRange(string name, string field, double value)
    {
        var errors = Validate(With(name, field, value), sampled: 4);

        Assert.Equal([($"$.strategy.{field}", "range")], errors);
    }

    [Theory]
    [InlineData(StrategyNames.FedAvgM, "serverLearningRate", 10.0)]
    [InlineData(StrategyNames.FedAvgM, "serverMomentum", 0.0)]
    [InlineData(StrategyNames.FedAvgM, "serverMomentum", 0.99)]
    [InlineData(StrategyNames.FedProx, "proximalMu", 0.0)]
    [InlineData(StrategyNames.FedProx, "proximalMu", 1000.0)]
    [InlineData(StrategyNames.FedAdam, "beta1", 0.0)]
    [InlineData(StrategyNames.FedAdam, "tau", 1.0)]
    [InlineData(StrategyNames.FedYogi, "beta2", 0.999)]
    [InlineData(StrategyNames.FedAdagrad, "beta1", 0.9)]
    [InlineData(StrategyNames.FedTrimmedAvg, "trimFraction", 0.0)]
    [InlineData(StrategyNames.FedTrimmedAvg, "trimFraction", 0.49)]
    [InlineData(StrategyNames.Krum, "byzantine", 0.0)]
    [InlineData(StrategyNames.MultiKrum, "keep", 1.0)]
    [InlineData(StrategyNames.MultiKrum, "keep", 4.0)]
    public void Validate_ParameterAtItsBound_Accepted(string name, string field, double value)
    {
        Assert.Empty(Validate(With(name, field, value), sampled: 4));
    }

    [Theory]
    [InlineData(StrategyNames.Krum)]
    [InlineData(StrategyNames.MultiKrum)]
    public void Validate_ByzantineWithoutTwoFPlusThreeSilos_ReportsConflict(string name)
    {
        var spec = new StrategySpec { Name = name, Byzantine = 1 };

        // f = 1 needs 2·1 + 3 = 5 silos per round.
        Assert.Equal([("$.strategy.byzantine", "conflict")], Validate(spec, sampled: 4));
        Assert.Empty(Validate(spec, sampled: 5));
        // f = 2 needs 7.
        Assert.Equal([("$.strategy.byzantine", "conflict")], Validate(spec with { Byzantine = 2 }, sampled: 6));
        Assert.Empty(Validate(spec with { Byzantine = 2 }, sampled: 7));
    }

    [Fact]
    public void Validate_ByzantineAgainstSampledNotRegisteredSilos_ReportsConflict()
    {
        var six = TestSpecs.Valid() with
        {
            Silos = ["silo-1", "silo-2", "silo-3", "silo-4", "silo-5", "silo-6"],
            Strategy = new StrategySpec { Name = StrategyNames.Krum, Byzantine = 1 },
        };

        // Six silos, but four sampled per round: 4 < 2·1 + 3.
        Assert.Empty(RunSpecValidator.Validate(six));
        TestSpecs.AssertSingle(six with { Participation = new ParticipationSpec { SampleCount = 4 } }, "$.strategy.byzantine", "conflict");
        Assert.Empty(RunSpecValidator.Validate(six with { Participation = new ParticipationSpec { SampleCount = 5 } }));
    }

    [Theory]
    [InlineData(StrategyNames.FedMedian)]
    [InlineData(StrategyNames.FedTrimmedAvg)]
    [InlineData(StrategyNames.Krum)]
    [InlineData(StrategyNames.MultiKrum)]
    public void Validate_BufferedStrategyWithSecureAggregation_ReportsConflict(string name)
    {
        var spec = TestSpecs.Valid() with
        {
            Strategy = new StrategySpec { Name = name },
            Privacy = new PrivacySpec { SecureAggregation = new SecureAggregationSpec { ClipNorm = 1 } },
        };

        TestSpecs.AssertSingle(spec, "$.strategy.name", "conflict");
    }

    [Theory]
    [InlineData(StrategyNames.FedMedian)]
    [InlineData(StrategyNames.FedTrimmedAvg)]
    [InlineData(StrategyNames.Krum)]
    [InlineData(StrategyNames.MultiKrum)]
    public void Validate_BufferedStrategyWithDifferentialPrivacy_ReportsConflict(string name)
    {
        var spec = TestSpecs.Valid() with
        {
            Strategy = new StrategySpec { Name = name },
            Privacy = new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec() },
        };

        TestSpecs.AssertSingle(spec, "$.strategy.name", "conflict");
    }

    [Theory]
    [InlineData(StrategyNames.FedAvg)]
    [InlineData(StrategyNames.FedAvgM)]
    [InlineData(StrategyNames.FedProx)]
    [InlineData(StrategyNames.FedAdam)]
    [InlineData(StrategyNames.FedYogi)]
    [InlineData(StrategyNames.FedAdagrad)]
    public void Validate_StreamingStrategyWithSecureAggregationOrDifferentialPrivacy_Accepted(string name)
    {
        var strategy = new StrategySpec { Name = name };
        var secure = new PrivacySpec { SecureAggregation = new SecureAggregationSpec { ClipNorm = 1 } };
        var dp = new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec() };

        Assert.Empty(RunSpecValidator.Validate(TestSpecs.Valid() with { Strategy = strategy, Privacy = secure }));
        Assert.Empty(RunSpecValidator.Validate(TestSpecs.Valid() with { Strategy = strategy, Privacy = dp }));
    }

    // ---------------------------------------------------------------- wrappers

    [Fact]
    public void NormScreened_OneUpdateFarOut_RefusedWithDetail()
    {
        IFederatedStrategy screened = new NormScreened(new FedAvg(), 3);

        // Median of [0.9, 1, 1.2, 12] = (1 + 1.2)/2 = 1.1; limit 3·1.1 = 3.3; 12/1.1 = 10.909… → "10.91".
        var refusals = screened.Screen([1.0, 1.2, 0.9, 12.0]);

        Assert.True(screened.NeedsDistances);
        Assert.Null(refusals[0]);
        Assert.Null(refusals[1]);
        Assert.Null(refusals[2]);
        Assert.NotNull(refusals[3]);
        Assert.Contains("10.91", refusals[3], StringComparison.Ordinal);
        Assert.Contains("limit 3", refusals[3], StringComparison.Ordinal);
        // Otherwise the inner strategy's: weights n_k / Σn.
        Assert.Equal([0.25, 0.75], screened.AggregationWeights(Fits(1, 3)));
    }

    [Fact]
    public void DifferentiallyPrivate_Weights_UniformWhateverTheExamples()
    {
        IFederatedStrategy dp = new DifferentiallyPrivate(new FedAvg(), new DifferentialPrivacySpec { ClipNorm = 1, NoiseMultiplier = 1 });

        // 1/3 each, where FedAvg alone would give 10/100, 30/100, 60/100.
        Assert.Equal([1.0 / 3, 1.0 / 3, 1.0 / 3], dp.AggregationWeights(Fits(10, 30, 60)));
        Assert.True(dp.NeedsDistances);
    }

    [Fact]
    public void DifferentiallyPrivate_ClipScale_MinOfOneAndClipOverDistance()
    {
        IFederatedStrategy dp = new DifferentiallyPrivate(new NormScreened(new FedAvg(), 3), new DifferentialPrivacySpec { ClipNorm = 2 });

        // C = 2: min(1, 2/d).
        Assert.Equal(1.0, dp.ClipScale(0));
        Assert.Equal(1.0, dp.ClipScale(1));
        Assert.Equal(1.0, dp.ClipScale(2));
        Assert.Equal(0.25, dp.ClipScale(8));
        Assert.Equal(2e-6, dp.ClipScale(1e6), 1e-18);
        Assert.All(new[] { 0.0, 0.5, 1.9, 2.1, 3.0, 1e3 }, d => Assert.InRange(dp.ClipScale(d), 0.0, 1.0));
    }

    [Fact]
    public void DifferentiallyPrivate_TinyNoise_ReleaseIsTheMeanOverTheSampled()
    {
        // z = 1e-9, C = 1: noise σ = 1e-9 on the sum, far below the 1e-5 tolerance.
        IFederatedStrategy dp = new DifferentiallyPrivate(new FedAvg(), new DifferentialPrivacySpec { ClipNorm = 1, NoiseMultiplier = 1e-9 });
        var global = Model(F32(W, 1, 1), F32(B, 0));
        var mean = Model(F32(W, 3, -1), F32(B, 2));

        // All 3 sampled contributed: global + (3/3)·(mean − global) = mean.
        var all = dp.Release(mean, global, 3, 3);
        AssertClose([3f, -1f], Floats(all, W), 1e-5);
        AssertClose([2f], Floats(all, B), 1e-5);

        // 2 of 4 sampled contributed: global + (2/4)·(mean − global) = W [1 + 1, 1 − 1] = [2, 0], B [0 + 1] = [1].
        var half = dp.Release(mean, global, 2, 4);
        AssertClose([2f, 0f], Floats(half, W), 1e-5);
        AssertClose([1f], Floats(half, B), 1e-5);
    }

    [Fact]
    public void DifferentiallyPrivate_RealNoise_SameShapeAndFinite()
    {
        IFederatedStrategy dp = new DifferentiallyPrivate(new FedAvg(), new DifferentialPrivacySpec { ClipNorm = 1, NoiseMultiplier = 1 });
        var global = Model(F32(W, 1, 1), F32(B, 0));

        var released = dp.Release(Model(F32(W, 3, -1), F32(B, 2)), global, 3, 3);

        Assert.Equal([W, B], released.Select(t => t.Name));
        Assert.All(released, t => Assert.Equal(TensorDType.F32, t.DType));
        Assert.Equal([2L], released[0].Shape);
        Assert.Equal([1L], released[1].Shape);
        Assert.All(released.SelectMany(t => MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray()), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void DifferentiallyPrivate_NonFloatTensor_Throws()
    {
        IFederatedStrategy dp = new DifferentiallyPrivate(new FedAvg(), new DifferentialPrivacySpec());
        var model = Model(F32(W, 1), I64(Counter, 3));

        Assert.Throws<InvalidOperationException>(() => dp.Release(model, model, 1, 1));
    }

    [Fact]
    public void Create_PrivacyAndNormRatio_DpOutsideScreenOutsideStrategy()
    {
        var strategy = StrategyCatalog.Create(
            new StrategySpec { Name = StrategyNames.FedAvgM },
            new PrivacySpec { DifferentialPrivacy = new DifferentialPrivacySpec() },
            3);

        var dp = Assert.IsType<DifferentiallyPrivate>(strategy);
        var screened = Assert.IsType<NormScreened>(dp.Inner);
        Assert.IsType<FedAvgM>(screened.Inner);
        Assert.Equal(StrategyNames.FedAvgM, strategy.Name);
        Assert.NotNull(strategy.ServerOptimizer);
        Assert.IsType<FedAvg>(StrategyCatalog.Create(new StrategySpec(), null, null));
    }

    // ---------------------------------------------------------------- helpers

    private static NamedTensor F32(string name, params float[] values) =>
        new(name, TensorDType.F32, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static NamedTensor I64(string name, params long[] values) =>
        new(name, TensorDType.I64, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static IReadOnlyList<NamedTensor> Model(params NamedTensor[] tensors) => tensors;

    private static float[] Floats(IReadOnlyList<NamedTensor> model, string name)
    {
        var tensor = model.Single(t => t.Name == name);
        Assert.Equal(TensorDType.F32, tensor.DType);
        return MemoryMarshal.Cast<byte, float>(tensor.Data.Span).ToArray();
    }

    private static FitOutcome[] Fits(params long[] examples) =>
        examples.Select((n, i) => new FitOutcome($"silo-{i + 1}", n, 0.5)).ToArray();

    /// <summary>One round of the server step as the aggregation activity runs it: the next state, then the model from it.</summary>
    private static IReadOnlyList<NamedTensor> Step(IServerOptimizer optimizer, IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, ref IReadOnlyList<NamedTensor>? state)
    {
        state = optimizer.NextState(global, aggregate, state);
        return optimizer.Apply(global, aggregate, state);
    }

    private static void AssertClose(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], tolerance);
        }
    }

    private static List<(string Path, string Rule)> Validate(StrategySpec strategy, int sampled)
    {
        var errors = new List<(string Path, string Rule)>();
        StrategyCatalog.Validate(TestSpecs.Valid() with { Strategy = strategy }, sampled, (path, rule, _) => errors.Add((path, rule)));
        return errors;
    }

    private static StrategySpec With(string name, string field, double value) => field switch
    {
        "serverLearningRate" => new StrategySpec { Name = name, ServerLearningRate = value },
        "serverMomentum" => new StrategySpec { Name = name, ServerMomentum = value },
        "beta1" => new StrategySpec { Name = name, Beta1 = value },
        "beta2" => new StrategySpec { Name = name, Beta2 = value },
        "tau" => new StrategySpec { Name = name, Tau = value },
        "proximalMu" => new StrategySpec { Name = name, ProximalMu = value },
        "trimFraction" => new StrategySpec { Name = name, TrimFraction = value },
        "byzantine" => new StrategySpec { Name = name, Byzantine = (int)value },
        "keep" => new StrategySpec { Name = name, Keep = (int)value },
        _ => throw new ArgumentOutOfRangeException(nameof(field), field, "Not a strategy parameter."),
    };
}
