namespace FederatedFunctions.Ml.Tests;

public sealed class SyntheticDataTests
{
    private static readonly SyntheticOptions Iid = new(Silos: 5, Classes: 10, Features: 16, TrainPerSilo: 1000, TestPerSilo: 200, DirichletAlpha: null, Seed: 11);

    [Fact]
    public void Generate_SameOptions_IdenticalData()
    {
        var a = SyntheticData.Generate(Iid with { DirichletAlpha = 0.5 });
        var b = SyntheticData.Generate(Iid with { DirichletAlpha = 0.5 });

        Assert.Equal(a.Count, b.Count);
        for (var i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].SiloId, b[i].SiloId);
            Assert.True(a[i].Train.ContentEquals(b[i].Train), $"train of {a[i].SiloId} differs");
            Assert.True(a[i].Test.ContentEquals(b[i].Test), $"test of {a[i].SiloId} differs");
        }
    }

    [Fact]
    public void Generate_DifferentSeed_DifferentData()
    {
        var a = SyntheticData.Generate(Iid);
        var b = SyntheticData.Generate(Iid with { Seed = 12 });

        Assert.False(a[0].Train.ContentEquals(b[0].Train));
    }

    [Fact]
    public void Generate_Counts_SiloIdsRowsColumnsAndNamesAsRequested()
    {
        var silos = SyntheticData.Generate(Iid);

        Assert.Equal(["silo-1", "silo-2", "silo-3", "silo-4", "silo-5"], silos.Select(s => s.SiloId));
        Assert.All(silos, s =>
        {
            s.Train.EnsureConsistent();
            s.Test.EnsureConsistent();
            Assert.Equal(1000, s.Train.Rows);
            Assert.Equal(200, s.Test.Rows);
            Assert.Equal(16, s.Train.Columns);
            Assert.Equal("x0", s.Train.FeatureNames[0]);
            Assert.Equal("x15", s.Train.FeatureNames[15]);
            Assert.All(s.Train.Labels, l => Assert.InRange(l, 0, 9));
            Assert.All(s.Train.Features, v => Assert.True(float.IsFinite(v)));
        });
    }

    [Fact]
    public void Generate_Iid_EveryClassNearUniform()
    {
        var silos = SyntheticData.Generate(Iid);

        Assert.All(silos, s => Assert.All(s.Train.ClassCounts(10), c => Assert.Equal(100, c)));
    }

    [Fact]
    public void Generate_Alpha01_MuchMoreSkewedThanIid()
    {
        static double MeanMaxShare(IReadOnlyList<SiloDataset> silos) =>
            silos.Average(s => (double)s.Train.ClassCounts(10).Max() / s.Train.Rows);

        var iid = MeanMaxShare(SyntheticData.Generate(Iid));
        var skewed = MeanMaxShare(SyntheticData.Generate(Iid with { DirichletAlpha = 0.1 }));

        Assert.Equal(0.1, iid, 1e-9);
        Assert.True(skewed > 0.5, $"mean largest class share with alpha 0.1 is {skewed:F3}; expected > 0.5 (IID {iid:F3})");
    }

    [Fact]
    public void Generate_Skewed_TestSplitFollowsSiloTrainDistribution()
    {
        var silos = SyntheticData.Generate(Iid with { DirichletAlpha = 0.3, TestPerSilo = 1000 });

        Assert.All(silos, s => Assert.Equal(s.Train.ClassCounts(10), s.Test.ClassCounts(10)));
    }

    [Fact]
    public void Generate_Pooled_MlpLearnsWellBelowPerfect()
    {
        var silos = SyntheticData.Generate(Iid with { Silos = 1, TrainPerSilo = 4000, TestPerSilo = 2000 });
        var model = new Core.Specs.ModelSpec { Architecture = "mlp", Hidden = [64] };
        var training = new Core.Specs.TrainingSpec { LocalEpochs = 15, BatchSize = 64, LearningRate = 0.003, Optimizer = "adam", Seed = 1 };

        var trained = LocalTrainer.Train(model, training, 10, ModelFactory.InitialState(model, 16, 10, 1), silos[0].Train, 0, "silo-1");
        var evaluation = LocalTrainer.Evaluate(model, 10, trained.State, silos[0].Test);

        var accuracy = (double)evaluation.Correct / evaluation.Examples;
        Assert.InRange(accuracy, 0.75, 0.97);
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(4.5)]
    public void SampleGamma_ManyDraws_MeanAndVarianceMatchShape(double shape)
    {
        var random = new Random(5);
        var draws = Enumerable.Range(0, 40_000).Select(_ => SyntheticData.SampleGamma(random, shape)).ToArray();

        var mean = draws.Average();
        var variance = draws.Select(d => (d - mean) * (d - mean)).Average();

        // Gamma(k, 1): mean k, variance k.
        Assert.InRange(mean, shape * 0.95, shape * 1.05);
        Assert.InRange(variance, shape * 0.85, shape * 1.15);
        Assert.All(draws, d => Assert.True(d >= 0 && double.IsFinite(d)));
    }

    [Fact]
    public void SampleDirichlet_SmallAlpha_SumsToOne()
    {
        var random = new Random(1);
        for (var i = 0; i < 200; i++)
        {
            var p = SyntheticData.SampleDirichlet(random, 0.01, 10);
            Assert.Equal(1.0, p.Sum(), 1e-9);
            Assert.All(p, v => Assert.InRange(v, 0, 1));
        }
    }

    [Fact]
    public void Apportion_Proportions_ExactTotalByLargestRemainder()
    {
        Assert.Equal([4, 3, 3], SyntheticData.Apportion([1 / 3.0, 1 / 3.0, 1 / 3.0], 10));
        Assert.Equal([0, 7, 3], SyntheticData.Apportion([0.01, 0.7, 0.29], 10));
    }
}
