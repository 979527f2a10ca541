using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>Cross-site evaluation: the global model and each silo's local model of the last round, scored on every silo's test split.</summary>
public sealed class CrossSiteEvaluationTests
{
    [Fact]
    public async Task RunAsync_CrossSite_ScoresEveryModelOnEverySilo_AndEachCellIsThatModelOnThatSplit()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var spec = TrainingOrchestratorTests.Spec("cross-site", rounds: 2) with { Evaluation = new EvaluationSpec { EveryRounds = 1, CrossSite = true } };

        var meta = await h.RunAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var outcome = meta.ReadOutputAs<TrainingOutcome>()!;
        Assert.EndsWith(BlobLayout.CrossSite("cross-site"), outcome.CrossSite!.Uri, StringComparison.Ordinal);
        var matrix = System.Text.Json.JsonSerializer.Deserialize<CrossSiteMatrix>(h.Blobs.Items[outcome.CrossSite.Uri], Core.JsonDefaults.Documents)!;
        var silos = TrainingOrchestratorTests.Data.Select(d => d.SiloId).ToArray();
        Assert.Equal(2, matrix.Round);
        Assert.Equal([CrossSiteMatrix.Global, .. silos], matrix.Models);
        Assert.Equal(silos, matrix.Silos);
        Assert.Equal(5 * 4, matrix.Cells.Count);
        Assert.Empty(matrix.Failures);

        // The global row is the run's federated evaluation, cell by cell.
        var global = matrix.Models.Take(1).SelectMany(m => silos.Select(s => matrix.Cell(m, s)!)).ToArray();
        var correct = global.Sum(c => c.Accuracy * c.Examples);
        Assert.Equal(outcome.FinalAccuracy!.Value, correct / global.Sum(c => c.Examples), 12);

        // Each local row scores the silo's own accepted update of the last round: recomputed here from the published
        // copy, which is byte for byte the update the manifest recorded, on another silo's test split.
        var manifest = await h.Store.GetManifestAsync("checkpoints", "cross-site", 2, default);
        foreach (var owner in silos)
        {
            var published = h.Blobs.Items.Single(b => b.Key.EndsWith(BlobLayout.CrossSiteModel("cross-site", owner), StringComparison.Ordinal)).Value;
            Assert.Equal(manifest!.Participants.Single(p => p.SiloId == owner).UpdateSha256, Core.Hashing.Sha256Hex(published));
            var scorer = TrainingOrchestratorTests.Data[(Array.IndexOf(silos, owner) + 1) % silos.Length];
            var expected = LocalTrainer.Evaluate(spec.Model, spec.Data.Classes, Safetensors.Parse(published).Tensors, scorer.Test);
            var cell = matrix.Cell(owner, scorer.SiloId)!;
            Assert.Equal(expected.Examples, cell.Examples);
            Assert.Equal((double)expected.Correct / expected.Examples, cell.Accuracy, 12);
            Assert.Equal(expected.Loss, cell.Loss, 9);
        }

        // One evaluate step per model and silo, named apart: the global model's, then one per local model.
        Assert.Equal(2 * 4 + (5 * 4), h.Backend.EvaluateCalls.Count);
    }

    [Fact]
    public async Task RunAsync_WithoutCrossSite_PublishesNoLocalModel()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var meta = await h.RunAsync(TrainingOrchestratorTests.Spec("no-cross-site", rounds: 1));

        Assert.Null(meta.ReadOutputAs<TrainingOutcome>()!.CrossSite);
        Assert.DoesNotContain(h.Blobs.Items.Keys, k => k.Contains("/cross-site/", StringComparison.Ordinal));
    }
}
