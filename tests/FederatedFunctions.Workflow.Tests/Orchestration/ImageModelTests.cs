using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// A convolutional network trained federatedly, through the durable orchestrator, on real images that a Debian package
/// ships: the UCI handwritten digits (8×8, from python3-sklearn), split over four silos with label skew, against the same
/// network trained centrally on the union of the silos' train splits.
/// </summary>
public sealed class ImageModelTests(ITestOutputHelper output)
{
    // The documented example: docs/examples/digits-cnn.json.
    internal static RunSpec DigitsSpec()
    {
        var parsed = RunSpecParser.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "examples", "digits-cnn.json")));
        Assert.True(parsed.IsValid, string.Join("; ", parsed.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        return parsed.Spec!;
    }

    // Label skew: each image goes to the silo of its label (label mod 4) with probability 0.8, else to any silo; each
    // silo keeps a fifth of its images for test. Pixels are scaled to [0, 1].
    internal static SiloDataset[] LabelSkewedDigits(int silos, int seed) =>
        DigitsDataset.LabelSkewed(RealDatasets.Digits(), Enumerable.Range(1, silos).Select(i => $"digits-{i}").ToArray(), seed);

    [Fact]
    public async Task Cnn_OnLabelSkewedDigits_LearnsFederatedlyAsWellAsNearlyTheCentralModel()
    {
        var silos = LabelSkewedDigits(4, seed: 7);
        var spec = DigitsSpec();
        var (model, training) = (spec.Model, spec.Training);
        Assert.Equal(spec.Silos, silos.Select(s => s.SiloId));

        await using var h = await new Harness(silos).StartAsync();
        var watch = Stopwatch.StartNew();
        var meta = await h.RunAsync(spec);
        var federatedTime = watch.Elapsed;
        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        var manifests = await h.Store.ListAsync("checkpoints", spec.RunId!, default);
        var federated = manifests[^1].Metrics.EvalAccuracy!.Value;

        // The same network and epochs, centrally, on the union of the train splits, scored on the union of the test splits.
        var union = Union(silos.Select(s => s.Train).ToArray());
        var test = Union(silos.Select(s => s.Test).ToArray());
        watch.Restart();
        var state = ModelFactory.InitialState(model, 64, 10, training.Seed);
        for (var epoch = 0; epoch < training.Rounds; epoch++)
        {
            state = LocalTrainer.Train(model, training, 10, state, union, epoch + 1, "central").State;
        }

        var central = LocalTrainer.Evaluate(model, 10, state, test);
        var centralAccuracy = (double)central.Correct / central.Examples;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"digits, 4 label-skewed silos, {test.Rows} test images: federated cnn {federated:P1} in {federatedTime.TotalSeconds:0.0} s ({training.Rounds} rounds x {training.LocalEpochs} epochs); central {centralAccuracy:P1} in {watch.Elapsed.TotalSeconds:0.0} s ({2 * training.Rounds} epochs)"));
        output.WriteLine("accuracy per round: " + string.Join(", ", manifests.Skip(1).Select(m => m.Metrics.EvalAccuracy!.Value.ToString("P1", CultureInfo.InvariantCulture))));

        Assert.True(centralAccuracy >= 0.95, $"the central cnn reached {centralAccuracy:P1}");
        Assert.True(federated >= 0.9, $"the federated cnn reached {federated:P1} (central {centralAccuracy:P1})");
        Assert.True(manifests[1].Metrics.EvalAccuracy < federated, "the accuracy did not improve over the rounds");
    }

    private static TabularData Union(TabularData[] parts) => new(
        parts.SelectMany(p => p.Features).ToArray(), parts.SelectMany(p => p.Labels).ToArray(), parts.Sum(p => p.Rows), parts[0].Columns, parts[0].FeatureNames);
}
