using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Ml.Tests;

public sealed class LocalTrainerTests
{
    private static readonly ModelSpec Mlp = new() { Architecture = "mlp", Hidden = [32] };
    private static readonly TrainingSpec Sgd = new() { LocalEpochs = 3, BatchSize = 32, LearningRate = 0.05, Optimizer = "sgd", Seed = 5 };
    private static readonly Lazy<SiloDataset> Data = new(() =>
        SyntheticData.Generate(new SyntheticOptions(1, 4, 8, 600, 300, null, 3))[0]);

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void Train_SyntheticData_LossDecreasesAndAccuracyBeatsChance(string optimizer)
    {
        var training = Sgd with { Optimizer = optimizer, LearningRate = optimizer == "adam" ? 0.01 : 0.05 };
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);
        var before = LocalTrainer.Evaluate(Mlp, 4, initial, Data.Value.Train);

        var result = LocalTrainer.Train(Mlp, training, 4, initial, Data.Value.Train, round: 1, siloId: "silo-1");

        Assert.Equal(600, result.Examples);
        Assert.True(result.Loss < result.Metrics["first_epoch_loss"], $"last epoch {result.Loss} vs first {result.Metrics["first_epoch_loss"]}");
        Assert.True(result.Loss < before.Loss * 0.8, $"train loss {result.Loss} vs initial {before.Loss}");
        Assert.InRange(result.Metrics["train_accuracy"], 0.5, 1.0);
        Assert.Equal(19, result.Metrics["batches"]);
        Assert.Equal(initial.Select(t => t.Name), result.State.Select(t => t.Name));
    }

    [Fact]
    public void Train_SameInputsTwice_ByteIdenticalState()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);
        var adam = Sgd with { Optimizer = "adam", LearningRate = 0.01 };

        var a = LocalTrainer.Train(Mlp, adam, 4, initial, Data.Value.Train, round: 2, siloId: "silo-1");
        var b = LocalTrainer.Train(Mlp, adam, 4, initial, Data.Value.Train, round: 2, siloId: "silo-1");

        Assert.Equal(Tensors.Concat(a.State), Tensors.Concat(b.State));
        Assert.Equal(a.Loss, b.Loss);
    }

    [Fact]
    public void Train_ConcurrentCalls_SameBytesAsSequential()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);
        var silos = new[] { "silo-1", "silo-2", "silo-3", "silo-4" };
        var sequential = silos.Select(s => Tensors.Concat(LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, 3, s).State)).ToArray();

        var concurrent = new byte[silos.Length][];
        Parallel.For(0, silos.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            concurrent[i] = Tensors.Concat(LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, 3, silos[i]).State));

        for (var i = 0; i < silos.Length; i++)
        {
            Assert.Equal(sequential[i], concurrent[i]);
        }
    }

    [Fact]
    public void Train_ProximalMu_PullsTheLocalModelTowardsTheGlobalOneTheMoreTheLargerMu()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);
        double Moved(double mu) =>
            Core.Tensors.TensorMath.L2Distance(LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, round: 1, siloId: "silo-1", proximalMu: mu).State, initial);

        var free = Moved(0);
        var some = Moved(0.5);
        var strong = Moved(5);

        // The proximal gradient μ(w − w_global) grows with the distance, so the local model settles nearer the global one.
        Assert.True(some < free * 0.9, $"μ=0.5 moved {some}, μ=0 moved {free}");
        Assert.True(strong < some * 0.6, $"μ=5 moved {strong}, μ=0.5 moved {some}");
    }

    [Fact]
    public void Train_ProximalMuZero_SameBytesAsPlainTraining()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);

        var plain = LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, round: 1, siloId: "silo-1");
        var prox = LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, round: 1, siloId: "silo-1", proximalMu: 0);

        Assert.Equal(Tensors.Concat(plain.State), Tensors.Concat(prox.State));
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Train_BadProximalMu_Throws(double mu)
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);

        Assert.Throws<ArgumentOutOfRangeException>(() => LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, 1, "silo-1", proximalMu: mu));
    }

    [Fact]
    public void Train_DifferentRound_DifferentShuffleSoDifferentState()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);

        var a = LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, round: 1, siloId: "silo-1");
        var b = LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, round: 2, siloId: "silo-1");

        Assert.NotEqual(Tensors.Concat(a.State), Tensors.Concat(b.State));
    }

    [Fact]
    public void Train_DoesNotModifyGlobalState()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);
        var before = Tensors.Concat(initial);

        LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, round: 1, siloId: "silo-1");

        Assert.Equal(before, Tensors.Concat(initial));
    }

    [Fact]
    public void Train_Cancelled_Throws()
    {
        var initial = ModelFactory.InitialState(Mlp, 8, 4, 1);

        Assert.ThrowsAny<OperationCanceledException>(() =>
            LocalTrainer.Train(Mlp, Sgd, 4, initial, Data.Value.Train, 1, "silo-1", new CancellationToken(canceled: true)));
    }

    [Fact]
    public void Evaluate_HandBuiltLogReg_CountsCorrectAndMeanLoss()
    {
        // logits = x·Wᵀ + b with W = I (2×2), b = 0: the prediction is the larger feature.
        var model = new ModelSpec { Architecture = "logreg" };
        IReadOnlyList<Core.Tensors.NamedTensor> state =
        [
            Tensors.F32("layers.0.weight", [1f, 0f, 0f, 1f], 2, 2),
            Tensors.F32("layers.0.bias", [0f, 0f], 2),
        ];
        var test = new TabularData([2f, 0f, 0f, 2f, 2f, 0f, 0f, 0f], [0, 1, 1, 0], 4, 2, ["a", "b"]);

        var result = LocalTrainer.Evaluate(model, 2, state, test);

        // Rows 1 and 2 are right; row 3 is wrong (logits [2,0], label 1); row 4 ties (argmax 0 = label 0).
        Assert.Equal(4, result.Examples);
        Assert.Equal(3, result.Correct);
        var right = Math.Log(1 + Math.Exp(-2));
        var wrong = Math.Log(1 + Math.Exp(2));
        var tie = Math.Log(2);
        Assert.Equal((right + right + wrong + tie) / 4, result.Loss, 5);
    }

    [Fact]
    public void Evaluate_NoRows_ZeroExamples()
    {
        var model = new ModelSpec { Architecture = "logreg" };
        var state = ModelFactory.InitialState(model, 2, 2, 1);

        var result = LocalTrainer.Evaluate(model, 2, state, new TabularData([], [], 0, 2, ["a", "b"]));

        Assert.Equal(new EvaluationResult(0, 0, 0), result);
    }

    [Fact]
    public void Train_LabelOutOfRange_ThrowsArgumentException()
    {
        var model = new ModelSpec { Architecture = "logreg" };
        var state = ModelFactory.InitialState(model, 2, 2, 1);

        Assert.Throws<ArgumentException>(() =>
            LocalTrainer.Train(model, Sgd, 2, state, new TabularData([1f, 2f], [2], 1, 2, ["a", "b"]), 0, "silo-1"));
    }
}
