using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Ml.Tests;

public sealed class FederatedSanityTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void FedAvg_ThreeSkewedSilosFiveRounds_BeatsBestSiloTrainedAlone()
    {
        const int Classes = 10, Features = 16, Rounds = 5;
        var silos = SyntheticData.Generate(new SyntheticOptions(3, Classes, Features, 1200, 400, DirichletAlpha: 0.3, Seed: 21));
        var model = new ModelSpec { Architecture = "mlp", Hidden = [32] };
        var training = new TrainingSpec { LocalEpochs = 2, BatchSize = 32, LearningRate = 0.05, Optimizer = "sgd", Seed = 21 };
        var initial = ModelFactory.InitialState(model, Features, Classes, training.Seed);
        var union = Union(silos.Select(s => s.Test).ToArray());

        var global = initial;
        for (var round = 1; round <= Rounds; round++)
        {
            using var aggregator = new StreamingAggregator(global);
            foreach (var silo in silos)
            {
                var update = LocalTrainer.Train(model, training, Classes, global, silo.Train, round, silo.SiloId);
                aggregator.Add(update.State, update.Examples);
            }

            global = aggregator.Result();
        }

        var federated = Accuracy(model, Classes, global, union);
        var alone = silos.Select(silo =>
        {
            var solo = training with { LocalEpochs = training.LocalEpochs * Rounds };
            var state = LocalTrainer.Train(model, solo, Classes, initial, silo.Train, 1, silo.SiloId).State;
            return (silo.SiloId, Accuracy: Accuracy(model, Classes, state, union));
        }).ToArray();
        var best = alone.MaxBy(a => a.Accuracy);
        var summary = $"federated {federated:P1} on the union of test splits; alone: {string.Join(", ", alone.Select(a => $"{a.SiloId} {a.Accuracy:P1}"))}";
        output.WriteLine(summary);

        Assert.True(federated > best.Accuracy, summary);
    }

    private static double Accuracy(ModelSpec model, int classes, IReadOnlyList<NamedTensor> state, TabularData test)
    {
        var result = LocalTrainer.Evaluate(model, classes, state, test);
        return (double)result.Correct / result.Examples;
    }

    private static TabularData Union(IReadOnlyList<TabularData> parts) => new(
        parts.SelectMany(p => p.Features).ToArray(),
        parts.SelectMany(p => p.Labels).ToArray(),
        parts.Sum(p => p.Rows),
        parts[0].Columns,
        parts[0].FeatureNames);
}
