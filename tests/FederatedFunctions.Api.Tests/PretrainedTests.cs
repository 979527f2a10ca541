using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

/// <summary>Starting a run from pretrained weights: a safetensors file in the checkpoint container, named by its SHA-256.</summary>
public sealed class PretrainedTests
{
    private static string FromPretrained(string runId, string path, string sha256, string hidden = "[16]") =>
        ApiHarness.SpecJson(runId, rounds: 2).Replace(
            "\"model\": { \"architecture\": \"mlp\", \"inputs\": 8, \"hidden\": [16] }",
            $"\"model\": {{ \"architecture\": \"mlp\", \"inputs\": 8, \"hidden\": {hidden}, \"pretrained\": {{ \"path\": \"{path}\", \"sha256\": \"{sha256}\" }} }}",
            StringComparison.Ordinal);

    [Fact]
    public async Task Start_FromPretrainedWeights_RoundZeroIsThoseWeights_KeptAsTheRunsOwnCopy()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("source", rounds: 3))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("source")).RuntimeStatus);
        var weights = (await h.Store.ReadModelAsync((await h.Store.GetLatestAsync("checkpoints", "source", default))!.Model, default)).ToArray();
        var file = await h.Store.PutDocumentAsync("checkpoints", "pretrained/source.safetensors", weights, default);

        var response = await h.StartAsync(FromPretrained("fine-tune", "pretrained/source.safetensors", file.Sha256));

        Assert.Equal(202, response.Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("fine-tune")).RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "fine-tune", default);
        Assert.Equal([0, 1, 2], manifests.Select(m => m.Round));
        Assert.Equal("pretrained:pretrained/source.safetensors", manifests[0].ResumedFrom!.RunId);
        Assert.Equal(Hashing.Sha256Hex(weights), manifests[0].ResumedFrom!.Model.Sha256);
        TensorAssert.Identical(Safetensors.Parse(weights).Tensors, Safetensors.Parse(await h.Store.ReadModelAsync(manifests[0].Model, default)).Tensors);
        Assert.NotNull(await h.Store.GetDocumentAsync("checkpoints", BlobLayout.Pretrained("fine-tune"), default));

        // The original may change or go: the run started from the copy with the declared hash.
        await h.Store.PutDocumentAsync("checkpoints", "pretrained/source.safetensors", "changed"u8.ToArray(), default);
        Assert.Equal(Hashing.Sha256Hex(weights), Hashing.Sha256Hex((await h.Store.GetDocumentAsync("checkpoints", BlobLayout.Pretrained("fine-tune"), default))!));
    }

    [Theory]
    [InlineData("")]
    [InlineData(", \"privacy\": { \"secureAggregation\": { \"clipNorm\": 10, \"maxExamples\": 1000 } }")]
    public async Task Start_FromPretrainedWeightsWithAFrozenLayer_EveryRoundKeepsThatLayerBitForBit(string privacy)
    {
        await using var h = await ApiHarness.StartAsync();
        var weights = ModelTemplate(8, 16, 4);
        var file = await h.Store.PutDocumentAsync("checkpoints", "pretrained/mlp.safetensors", weights, default);
        var json = FromPretrained("frozen", "pretrained/mlp.safetensors", file.Sha256)
            .Replace("\"training\": {", "\"training\": { \"freeze\": [\"layers.0\"],", StringComparison.Ordinal)
            .TrimEnd()[..^1] + privacy + " }";

        Assert.Equal(202, (await h.StartAsync(json)).Status);

        var done = await h.WaitAsync("frozen");
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, done.FailureDetails?.ErrorMessage);
        var start = Safetensors.Parse(weights).Tensors.ToDictionary(t => t.Name);
        foreach (var manifest in await h.Store.ListAsync("checkpoints", "frozen", default))
        {
            var model = Safetensors.Parse(await h.Store.ReadModelAsync(manifest.Model, default)).Tensors.ToDictionary(t => t.Name);
            Assert.Equal(start["layers.0.weight"].Data.ToArray(), model["layers.0.weight"].Data.ToArray());
            Assert.Equal(start["layers.0.bias"].Data.ToArray(), model["layers.0.bias"].Data.ToArray());
            if (manifest.Round > 0)
            {
                Assert.NotEqual(start["layers.2.weight"].Data.ToArray(), model["layers.2.weight"].Data.ToArray());
            }
        }
    }

    [Fact]
    public async Task Start_FromPretrainedWeightsWithStandardize_ComputesItsOwnStandardization()
    {
        await using var h = await ApiHarness.StartAsync();
        var file = await h.Store.PutDocumentAsync("checkpoints", "pretrained/mlp.safetensors", ModelTemplate(8, 16, 4), default);
        var json = FromPretrained("fine-tune-std", "pretrained/mlp.safetensors", file.Sha256).Replace(
            "\"data\": { \"classes\": 4 }", "\"data\": { \"classes\": 4, \"standardize\": true, \"features\": [\"x0\", \"x1\", \"x2\", \"x3\", \"x4\", \"x5\", \"x6\", \"x7\"] }", StringComparison.Ordinal);

        Assert.Equal(202, (await h.StartAsync(json)).Status);

        var done = await h.WaitAsync("fine-tune-std");
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, done.FailureDetails?.ErrorMessage);
        var round0 = (await h.Store.ListAsync("checkpoints", "fine-tune-std", default))[0];
        Assert.NotNull(round0.Standardization);
        Assert.Equal("pretrained:pretrained/mlp.safetensors", round0.ResumedFrom!.RunId);
    }

    [Fact]
    public async Task Start_FromAMissingAlteredOrForeignFile_IsRefusedNamingTheField_OrFailsWhenTheShapesDiffer()
    {
        await using var h = await ApiHarness.StartAsync();
        var notSafetensors = await h.Store.PutDocumentAsync("checkpoints", "pretrained/notes.txt", "not weights"u8.ToArray(), default);
        var weights = ModelTemplate(8, 16, 4);
        var file = await h.Store.PutDocumentAsync("checkpoints", "pretrained/mlp.safetensors", weights, default);

        async Task Refused(string json, string path, string rule)
        {
            var response = await h.StartAsync(json);
            Assert.Equal(400, response.Status);
            var problem = Assert.IsType<ProblemDocument>(response.Body);
            Assert.Contains(problem.Errors!, e => e.Path == path && e.Rule == rule);
        }

        await Refused(FromPretrained("p-missing", "pretrained/none.safetensors", file.Sha256), "$.model.pretrained.path", "not-found");
        await Refused(FromPretrained("p-altered", "pretrained/mlp.safetensors", new string('a', 64)), "$.model.pretrained.sha256", "mismatch");
        await Refused(FromPretrained("p-format", "pretrained/notes.txt", notSafetensors.Sha256), "$.model.pretrained.path", "format");
        await Refused(FromPretrained("p-pattern", "pretrained/mlp.safetensors", "ABC"), "$.model.pretrained.sha256", "pattern");
        Assert.Null(await h.Client.GetInstanceAsync("p-missing"));

        // Weights of another shape: the run starts, and fails before any training, saying they do not fit.
        Assert.Equal(202, (await h.StartAsync(FromPretrained("p-shape", "pretrained/mlp.safetensors", file.Sha256, hidden: "[32]"))).Status);
        var failed = await h.WaitAsync("p-shape");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);
        Assert.Contains("does not fit this run's model", failed.FailureDetails!.ErrorMessage, StringComparison.Ordinal);
        Assert.Empty(h.Backend.TrainCalls);
    }

    private static byte[] ModelTemplate(int inputs, int hidden, int classes) => Safetensors.Serialize(
        Ml.ModelFactory.InitialState(new Core.Specs.ModelSpec { Architecture = "mlp", Hidden = [hidden] }, inputs, classes, seed: 1), new Dictionary<string, string>());
}
