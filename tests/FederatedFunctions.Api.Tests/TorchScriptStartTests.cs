using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

/// <summary>Starting a run of a TorchScript model: the file in the checkpoint container, by SHA-256, and approved for eyes-off.</summary>
public sealed class TorchScriptStartTests
{
    private static string Scripted(string runId, string path, string sha256, string privacy = "") =>
        ApiHarness.SpecJson(runId, rounds: 2).Replace(
            "\"model\": { \"architecture\": \"mlp\", \"inputs\": 8, \"hidden\": [16] }",
            $"\"model\": {{ \"architecture\": \"torchscript\", \"inputs\": 8, \"script\": {{ \"path\": \"{path}\", \"sha256\": \"{sha256}\" }} }}{privacy}",
            StringComparison.Ordinal);

    [Fact]
    public async Task Start_ATorchScriptModel_TrainsFromTheRunsOwnCopyOfTheFile()
    {
        var bytes = TorchScriptWriter.Mlp([8, 16, 4], seed: 2);
        await using var h = await ApiHarness.StartAsync(new TrustOptions { ApprovedScripts = [Hashing.Sha256Hex(bytes)] });
        var file = await h.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", bytes, default);

        var response = await h.StartAsync(Scripted("byo", "scripts/net.pt", file.Sha256));

        Assert.Equal(202, response.Status);
        var done = await h.WaitAsync("byo");
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, done.FailureDetails?.ErrorMessage);
        var manifests = await h.Store.ListAsync("checkpoints", "byo", default);
        Assert.All(manifests, m => Assert.EndsWith(BlobLayout.Script("byo"), m.Script!.Uri, StringComparison.Ordinal));
        Assert.Equal(Hashing.Sha256Hex(bytes), manifests[^1].Script!.Sha256);

        // The original may change: the run keeps its copy.
        await h.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", "changed"u8.ToArray(), default);
        Assert.Equal(bytes, await h.Store.GetDocumentAsync("checkpoints", BlobLayout.Script("byo"), default));
    }

    [Fact]
    public async Task Start_AMissingAlteredOrForeignFile_IsRefusedWithItsPathAndNothingStarts()
    {
        var bytes = TorchScriptWriter.Mlp([8, 16, 4], seed: 2);
        await using var h = await ApiHarness.StartAsync(new TrustOptions { ApprovedScripts = [Hashing.Sha256Hex(bytes), new string('0', 64), Hashing.Sha256Hex("not a zip"u8)] });
        var file = await h.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", bytes, default);
        var notScript = await h.Store.PutDocumentAsync("checkpoints", "scripts/weights.pt", "not a zip"u8.ToArray(), default);

        await AssertRefused(h, Scripted("byo-missing", "scripts/none.pt", file.Sha256), "$.model.script.path", "not-found");
        await AssertRefused(h, Scripted("byo-altered", "scripts/net.pt", new string('0', 64)), "$.model.script.sha256", "mismatch");
        await AssertRefused(h, Scripted("byo-format", "scripts/weights.pt", notScript.Sha256), "$.model.script.path", "format");
        Assert.Empty(h.Backend.TrainCalls);
    }

    [Fact]
    public async Task Start_EyesOn_IsRefusedUnlessTheScriptsHashIsApproved()
    {
        var bytes = TorchScriptWriter.Mlp([8, 16, 4], seed: 2);
        await using var h = await ApiHarness.StartAsync(new TrustOptions { ApprovedScripts = [new string('0', 64)] });
        var file = await h.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", bytes, default);

        var response = await h.StartAsync(Scripted("byo-unapproved", "scripts/net.pt", file.Sha256));

        Assert.Equal(403, response.Status);
        Assert.Contains(file.Sha256, Assert.IsType<ProblemDocument>(response.Body).Detail, StringComparison.Ordinal);
        Assert.Null(await h.Client.GetInstanceAsync("byo-unapproved"));
        Assert.Null(await h.Store.GetDocumentAsync("checkpoints", BlobLayout.Script("byo-unapproved"), default));
    }

    [Fact]
    public async Task Start_EyesOff_NeedsTheScriptsHashApproved_BesidesTheTrainer()
    {
        var trainer = LocalTrainerIdentity.Value;
        var bytes = TorchScriptWriter.Mlp([8, 16, 4], seed: 2);
        var sha = Hashing.Sha256Hex(bytes);
        var eyesOff = ", \"privacy\": { \"mode\": \"eyes-off\" }";
        var approvedTrainer = new ApprovedTrainer { Id = trainer.Id, Sha256 = trainer.Sha256 };

        await using (var refusing = await ApiHarness.StartAsync(new TrustOptions { ApprovedTrainers = [approvedTrainer] }))
        {
            await refusing.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", bytes, default);
            var response = await refusing.StartAsync(Scripted("byo-eyes-off", "scripts/net.pt", sha).TrimEnd()[..^1] + eyesOff + " }");

            Assert.Equal(403, response.Status);
            var problem = Assert.IsType<ProblemDocument>(response.Body);
            Assert.EndsWith("trainer-not-approved", problem.Type, StringComparison.Ordinal);
            Assert.Contains(sha, problem.Detail, StringComparison.Ordinal);
            Assert.Contains("ApprovedScripts", problem.Detail, StringComparison.Ordinal);
            Assert.Null(await refusing.Client.GetInstanceAsync("byo-eyes-off"));
        }

        await using var approving = await ApiHarness.StartAsync(new TrustOptions { ApprovedTrainers = [approvedTrainer], ApprovedScripts = [sha.ToUpperInvariant()] });
        await approving.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", bytes, default);
        var ok = await approving.StartAsync(Scripted("byo-eyes-off", "scripts/net.pt", sha).TrimEnd()[..^1] + eyesOff + " }");
        Assert.Equal(202, ok.Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await approving.WaitAsync("byo-eyes-off")).RuntimeStatus);
    }

    private static async Task AssertRefused(ApiHarness h, string json, string path, string rule)
    {
        var response = await h.StartAsync(json);
        Assert.Equal(400, response.Status);
        var problem = Assert.IsType<ProblemDocument>(response.Body);
        Assert.Contains(problem.Errors!, e => e.Path == path && e.Rule == rule);
    }
}
