using System.Text;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

public sealed class ResumeTests
{
    private static Task<IReadOnlyList<NamedTensor>> FinalAsync(ApiHarness h, string runId) => TensorAssert.FinalModelAsync(h.Store, runId);

    private static string WithResumeFrom(string json, string resumeFrom) =>
        json.TrimEnd()[..^1] + $", \"resumeFrom\": {resumeFrom} }}";

    [Fact]
    public async Task ResumeAsync_OrchestrationLostAfterRoundTwo_ContinuesFromTheLatestCheckpointToTheSameModel()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("uninterrupted", rounds: 4))).Status);
        await h.WaitAsync("uninterrupted");

        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(150);
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("lost", rounds: 4))).Status);
        await h.WaitForRoundAsync("lost", 2);
        await h.Client.TerminateInstanceAsync("lost");
        await h.WaitAsync("lost");
        await h.Client.PurgeInstanceAsync("lost");
        Assert.Null(await h.Client.GetInstanceAsync("lost"));
        var before = (await h.Store.GetLatestAsync("checkpoints", "lost", default))!.Round;
        Assert.InRange(before, 2, 3);

        h.Backend.TrainDelay = TimeSpan.Zero;
        var response = await h.Api.ResumeAsync(h.Client, "lost", null, ApiHarness.Urls, default);

        Assert.Equal(202, response.Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("lost")).RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "lost", default);
        Assert.Equal([0, 1, 2, 3, 4], manifests.Select(m => m.Round));
        for (var i = 1; i < manifests.Count; i++)
        {
            Assert.Equal(manifests[i - 1].Model.Sha256, manifests[i].ParentModelSha256);
        }

        TensorAssert.Identical(await FinalAsync(h, "uninterrupted"), await FinalAsync(h, "lost"));
    }

    [Fact]
    public async Task ResumeAsync_ATorchScriptModelWithFedAdam_ReadsTheScriptAndTheMomentsFromTheManifest_AndEndsWithTheUninterruptedModel()
    {
        var script = TorchScriptWriter.Mlp([8, 16, 4], seed: 6);
        await using var h = await ApiHarness.StartAsync(new TrustOptions { ApprovedScripts = [Core.Hashing.Sha256Hex(script)] });
        var file = await h.Store.PutDocumentAsync("checkpoints", "scripts/net.pt", script, default);
        string Spec(string runId) => ApiHarness.SpecJson(runId, rounds: 4).Replace(
            "\"model\": { \"architecture\": \"mlp\", \"inputs\": 8, \"hidden\": [16] }",
            $"\"model\": {{ \"architecture\": \"torchscript\", \"inputs\": 8, \"script\": {{ \"path\": \"scripts/net.pt\", \"sha256\": \"{file.Sha256}\" }} }}, \"strategy\": {{ \"name\": \"fedadam\", \"serverLearningRate\": 0.03 }}",
            StringComparison.Ordinal);
        Assert.Equal(202, (await h.StartAsync(Spec("adam-script-whole"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("adam-script-whole")).RuntimeStatus);

        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(150);
        Assert.Equal(202, (await h.StartAsync(Spec("adam-script-lost"))).Status);
        await h.WaitForRoundAsync("adam-script-lost", 2);
        await h.Client.TerminateInstanceAsync("adam-script-lost");
        await h.WaitAsync("adam-script-lost");
        await h.Client.PurgeInstanceAsync("adam-script-lost");
        h.Backend.TrainDelay = TimeSpan.Zero;

        Assert.Equal(202, (await h.Api.ResumeAsync(h.Client, "adam-script-lost", null, ApiHarness.Urls, default)).Status);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("adam-script-lost")).RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "adam-script-lost", default);
        Assert.All(manifests.Skip(1), m => Assert.NotNull(m.StrategyState));
        Assert.All(manifests, m => Assert.Equal(Core.Hashing.Sha256Hex(script), m.Script!.Sha256));
        TensorAssert.Identical(await FinalAsync(h, "adam-script-whole"), await FinalAsync(h, "adam-script-lost"));
    }

    // Also the regression test of SidecarStorageFix's activity hold: the terminated execution's silo steps are still in flight
    // when the resumed one schedules steps with the same task ids, and without the hold the resumed run waited forever.
    [Fact]
    public async Task ResumeAsync_StandardizedRun_TakesRoundZerosStandardization_AndEndsWithTheUninterruptedModel()
    {
        static string Standardized(string id) => ApiHarness.SpecJson(id, rounds: 3).Replace(
            "\"data\": { \"classes\": 4 }", "\"data\": { \"classes\": 4, \"standardize\": true, \"features\": [\"x0\", \"x1\", \"x2\", \"x3\", \"x4\", \"x5\", \"x6\", \"x7\"] }", StringComparison.Ordinal);
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(Standardized("std-whole"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("std-whole")).RuntimeStatus);

        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(150);
        Assert.Equal(202, (await h.StartAsync(Standardized("std-lost"))).Status);
        await h.WaitForRoundAsync("std-lost", 1);
        await h.Client.TerminateInstanceAsync("std-lost");
        await h.WaitAsync("std-lost");
        await h.Client.PurgeInstanceAsync("std-lost");
        h.Backend.TrainDelay = TimeSpan.Zero;

        // The run's stored spec (written with round 0) holds the values; without them the orchestrator refuses to go on.
        Assert.Equal(202, (await h.Api.ResumeAsync(h.Client, "std-lost", null, ApiHarness.Urls, default)).Status);

        var resumed = await h.WaitAsync("std-lost");
        Assert.True(resumed.RuntimeStatus == OrchestrationRuntimeStatus.Completed, resumed.FailureDetails?.ErrorMessage);
        Assert.NotNull((await h.Store.GetManifestAsync("checkpoints", "std-lost", 0, default))!.Standardization);
        TensorAssert.Identical(await FinalAsync(h, "std-whole"), await FinalAsync(h, "std-lost"));
    }

    [Fact]
    public async Task ResumeAsync_RunningCompletedUnknownOrNeverCheckpointed_IsRefusedWithItsReason()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(404, (await h.Api.ResumeAsync(h.Client, "no-such-run", null, ApiHarness.Urls, default)).Status);
        Assert.Equal(404, (await h.Api.ResumeAsync(h.Client, "../etc", null, ApiHarness.Urls, default)).Status);
        Assert.Equal(400, (await h.Api.ResumeAsync(h.Client, "some-run", "Bad_Container", ApiHarness.Urls, default)).Status);

        await h.StartAsync(ApiHarness.SpecJson("done", rounds: 1));
        await h.WaitAsync("done");
        var completed = Assert.IsType<ProblemDocument>((await h.Api.ResumeAsync(h.Client, "done", null, ApiHarness.Urls, default)).Body);
        Assert.Equal((409, true), (completed.Status, completed.Type.EndsWith("run-completed", StringComparison.Ordinal)));

        // Purged after completing: the checkpoints still say the last round was committed.
        await h.Client.PurgeInstanceAsync("done");
        Assert.Equal(409, (await h.Api.ResumeAsync(h.Client, "done", null, ApiHarness.Urls, default)).Status);

        h.Backend.TrainDelay = TimeSpan.FromSeconds(1);
        await h.StartAsync(ApiHarness.SpecJson("busy", rounds: 3));
        var running = Assert.IsType<ProblemDocument>((await h.Api.ResumeAsync(h.Client, "busy", null, ApiHarness.Urls, default)).Body);
        Assert.Equal((409, true), (running.Status, running.Type.EndsWith("run-running", StringComparison.Ordinal)));
        await h.Client.TerminateInstanceAsync("busy");
    }

    [Fact]
    public async Task StartAsync_ResumeFromAnotherRunsRound_ContinuesNumberingAndReproducesTheOriginal()
    {
        await using var h = await ApiHarness.StartAsync();
        await h.StartAsync(ApiHarness.SpecJson("original", rounds: 4));
        await h.WaitAsync("original");

        var response = await h.StartAsync(WithResumeFrom(ApiHarness.SpecJson("continued", rounds: 4), """{ "runId": "original", "round": 2 }"""));

        Assert.Equal(202, response.Status);
        Assert.Equal(new ModelOrigin("original", 2, (await h.Store.GetManifestAsync("checkpoints", "original", 2, default))!.Model), Assert.IsType<RunAccepted>(response.Body).ResumedFrom);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("continued")).RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "continued", default);
        Assert.Equal([2, 3, 4], manifests.Select(m => m.Round));
        Assert.Equal("original", manifests[0].ResumedFrom!.RunId);
        Assert.Empty(manifests[0].Participants);
        Assert.Equal(3, manifests[1].Participants.Count);

        // Same spec, same seeds per round: rounds 3 and 4 recompute exactly what the original computed.
        TensorAssert.Identical(await FinalAsync(h, "original"), await FinalAsync(h, "continued"));
    }

    [Fact]
    public async Task StartAsync_StandardizedWarmStart_TakesTheOriginsStandardization_AndFromAnUnstandardizedOriginIsRefused()
    {
        static string Standardized(string json) => json.Replace(
            "\"data\": { \"classes\": 4 }", "\"data\": { \"classes\": 4, \"standardize\": true, \"features\": [\"x0\", \"x1\", \"x2\", \"x3\", \"x4\", \"x5\", \"x6\", \"x7\"] }", StringComparison.Ordinal);
        await using var h = await ApiHarness.StartAsync();
        await h.StartAsync(Standardized(ApiHarness.SpecJson("std-origin", rounds: 2)));
        await h.StartAsync(ApiHarness.SpecJson("plain-origin", rounds: 2));
        await h.WaitAsync("std-origin");
        await h.WaitAsync("plain-origin");

        var warm = await h.StartAsync(Standardized(WithResumeFrom(ApiHarness.SpecJson("std-warm", rounds: 3), """{ "runId": "std-origin", "round": 2 }""")));
        var refused = await h.StartAsync(Standardized(WithResumeFrom(ApiHarness.SpecJson("std-cold", rounds: 3), """{ "runId": "plain-origin", "round": 2 }""")));

        Assert.Equal(202, warm.Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("std-warm")).RuntimeStatus);
        var origin = (await h.Store.GetManifestAsync("checkpoints", "std-origin", 0, default))!.Standardization!;
        var carried = (await h.Store.GetManifestAsync("checkpoints", "std-warm", 2, default))!;
        Assert.Equal(origin.Mean, carried.Standardization!.Mean);
        Assert.Equal(origin.Stddev, carried.Standardization.Stddev);
        Assert.Equal(400, refused.Status);
        Assert.Contains("$.data.standardize", System.Text.Json.JsonSerializer.Serialize(refused.Body), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "runId": "never-ran" }""", "$.resumeFrom.runId")]
    [InlineData("""{ "runId": "source", "round": 3 }""", "$.resumeFrom.round")]
    public async Task StartAsync_ResumeFromWhatDoesNotExist_Returns400NamingTheField(string resumeFrom, string path)
    {
        await using var h = await ApiHarness.StartAsync();
        await h.StartAsync(ApiHarness.SpecJson("source", rounds: 2));
        await h.WaitAsync("source");

        var response = await h.StartAsync(WithResumeFrom(ApiHarness.SpecJson("target", rounds: 5), resumeFrom));

        Assert.Equal(400, response.Status);
        Assert.Equal(path, Assert.Single(Assert.IsType<ProblemDocument>(response.Body).Errors!).Path);
        Assert.Null(await h.Client.GetInstanceAsync("target"));
    }

    [Fact]
    public async Task StartAsync_ResumeFromTheLatestWithTooFewRounds_Returns400OnTrainingRounds()
    {
        await using var h = await ApiHarness.StartAsync();
        await h.StartAsync(ApiHarness.SpecJson("short", rounds: 2));
        await h.WaitAsync("short");

        var response = await h.StartAsync(WithResumeFrom(ApiHarness.SpecJson("target", rounds: 2), """{ "runId": "short" }"""));

        Assert.Equal("$.training.rounds", Assert.Single(Assert.IsType<ProblemDocument>(response.Body).Errors!).Path);
    }
}
