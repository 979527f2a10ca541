using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Ml.Tests;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>
/// A recurrent network (<c>gru</c>) trained federatedly, through the durable orchestrator, on generated sequences: which
/// of three frequencies a noisy two-sensor window turns at (<see cref="SineWindows"/>), split over three silos with
/// label skew, against the same network trained centrally on the union of the silos' train splits.
/// </summary>
public sealed class SequenceModelTests(ITestOutputHelper output)
{
    // The documented example: docs/examples/sines-gru.json.
    internal static RunSpec SinesSpec()
    {
        var parsed = RunSpecParser.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "docs", "examples", "sines-gru.json")));
        Assert.True(parsed.IsValid, string.Join("; ", parsed.Errors.Select(e => $"{e.Path} {e.Rule} {e.Message}")));
        return parsed.Spec!;
    }

    // Label skew: silo s draws its own frequency (class s) with probability 0.7, else any; 300 train and 100 test windows each.
    internal static SiloDataset[] LabelSkewedSines(int silos) => Enumerable.Range(0, silos).Select(s =>
    {
        long Label(Random random) => random.NextDouble() < 0.7 ? s : random.Next(SineWindows.Frequencies.Length);
        return new SiloDataset($"sines-{s + 1}", SineWindows.Generate(300, seed: 100 + s, Label), SineWindows.Generate(100, seed: 200 + s, Label));
    }).ToArray();

    [Fact]
    public async Task Gru_OnLabelSkewedSineWindows_LearnsFederatedlyAsWellAsTheCentralModel()
    {
        var silos = LabelSkewedSines(3);
        var spec = SinesSpec();
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
        var state = ModelFactory.InitialState(model, union.Columns, 3, training.Seed);
        for (var round = 1; round <= training.Rounds; round++)
        {
            state = LocalTrainer.Train(model, training, 3, state, union, round, "central").State;
        }

        var central = LocalTrainer.Evaluate(model, 3, state, test);
        var centralAccuracy = (double)central.Correct / central.Examples;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sine windows, 3 label-skewed silos, {test.Rows} test windows: federated gru {federated:P1} in {federatedTime.TotalSeconds:0.0} s ({training.Rounds} rounds x {training.LocalEpochs} epochs); central {centralAccuracy:P1} in {watch.Elapsed.TotalSeconds:0.0} s; chance 33.3%"));
        output.WriteLine("accuracy per round: " + string.Join(", ", manifests.Skip(1).Select(m => m.Metrics.EvalAccuracy!.Value.ToString("P1", CultureInfo.InvariantCulture))));

        // The global model is saved, averaged and loaded by the names the module has (PyTorch's nn.GRU names).
        var saved = Safetensors.Parse(await h.Store.ReadModelAsync(manifests[^1].Model, default)).Tensors.Select(t => t.Name);
        Assert.Equal(ModelFactory.InitialState(model, union.Columns, 3, seed: 0).Select(t => t.Name), saved.Order(StringComparer.Ordinal));
        Assert.Contains("layers.1.weight_hh_l0", saved);
        Assert.True(centralAccuracy >= 0.9, $"the central gru reached {centralAccuracy:P1}");
        Assert.True(federated >= 0.85, $"the federated gru reached {federated:P1} (central {centralAccuracy:P1})");
        Assert.True(manifests[1].Metrics.EvalAccuracy < federated, "the accuracy did not improve over the rounds");
    }

    private static TabularData Union(TabularData[] parts) => new(
        parts.SelectMany(p => p.Features).ToArray(), parts.SelectMany(p => p.Labels).ToArray(), parts.Sum(p => p.Rows), parts[0].Columns, parts[0].FeatureNames);
}
