using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

public sealed class RunsApiTests
{
    [Fact]
    public async Task StartAsync_ValidSpec_Returns202AndTheRunCompletes()
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.StartAsync(ApiHarness.SpecJson("api-ok", rounds: 2));

        Assert.Equal(202, response.Status);
        Assert.Equal("application/json", response.ContentType);
        var accepted = Assert.IsType<RunAccepted>(response.Body);
        Assert.Equal("api-ok", accepted.RunId);
        Assert.Equal("/api/runs/api-ok", response.Location);
        Assert.Equal("http://test/terminate/api-ok", accepted.Management.TerminatePostUri);
        Assert.Equal("http://test/purge/api-ok", accepted.Management.PurgeHistoryDeleteUri);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("api-ok")).RuntimeStatus);

        var details = Assert.IsType<RunDetails>((await h.Api.GetAsync(h.Client, "api-ok", default)).Body);
        Assert.Equal("Completed", details.RuntimeStatus);
        Assert.Equal([1, 2], details.Rounds.Select(r => r.Round));
        Assert.All(details.Rounds, r => Assert.NotNull(r.Metrics.EvalAccuracy));
        Assert.Equal([0, 1, 2], details.Checkpoints.Select(c => c.Round));
        Assert.True(details.Checkpoints[^1].Latest);
        Assert.Equal(2, details.Outcome!.Rounds);
    }

    [Fact]
    public async Task StartAsync_NoRunId_GeneratesOne()
    {
        await using var h = await ApiHarness.StartAsync();
        var accepted = Assert.IsType<RunAccepted>((await h.StartAsync(ApiHarness.SpecJson(null, rounds: 1))).Body);
        Assert.Matches("^run-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$", accepted.RunId);
        await h.WaitAsync(accepted.RunId);
    }

    [Fact]
    public async Task StartAsync_InvalidSpec_Returns400ProblemWithEveryViolation()
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.StartAsync("""{ "runId": "Bad Id", "training": { "rounds": 0, "batchSize": -1 }, "silos": ["ok", "../up"] }""");

        Assert.Equal(400, response.Status);
        Assert.Equal("application/problem+json", response.ContentType);
        var problem = Assert.IsType<ProblemDocument>(response.Body);
        var paths = problem.Errors!.Select(e => e.Path).ToHashSet();
        foreach (var expected in new[] { "$.runId", "$.training.rounds", "$.training.batchSize", "$.silos[1]", "$.model.inputs" })
        {
            Assert.Contains(expected, paths);
        }

        Assert.Equal(400, problem.Status);
        var json = JsonSerializer.Serialize(problem, ApiJson.Options);
        Assert.Contains("\"path\":\"$.training.rounds\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_MalformedJsonOrOversizedBody_Returns400Or413()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(400, (await h.StartAsync("{ not json")).Status);
        Assert.Equal(413, (await h.Api.StartAsync(h.Client, null, ApiHarness.Urls, default)).Status);
    }

    [Fact]
    public async Task StartAsync_RunIdAlreadyRunningOrUsed_Returns409()
    {
        await using var h = await ApiHarness.StartAsync();
        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(300);
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("dup", rounds: 30))).Status);

        var second = await h.StartAsync(ApiHarness.SpecJson("dup", rounds: 1));
        Assert.Equal(409, second.Status);
        Assert.Contains("already running", Assert.IsType<ProblemDocument>(second.Body).Title, StringComparison.Ordinal);

        Assert.Equal(202, (await h.Api.CancelAsync(h.Client, "dup", default)).Status);
        await h.WaitAsync("dup");
        Assert.Equal(409, (await h.StartAsync(ApiHarness.SpecJson("dup", rounds: 1))).Status);
    }

    [Fact]
    public async Task Handlers_UnknownOrInvalidRunId_Return404()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(404, (await h.Api.GetAsync(h.Client, "no-such-run", default)).Status);
        Assert.Equal(404, (await h.Api.CheckpointsAsync(h.Client, "no-such-run", default)).Status);
        Assert.Equal(404, (await h.Api.CancelAsync(h.Client, "no-such-run", default)).Status);
        Assert.Equal(404, (await h.Api.GetAsync(h.Client, "../etc", default)).Status);
    }

    [Fact]
    public async Task CancelAsync_RunningRun_TerminatesItAndKeepsItsCheckpoints()
    {
        await using var h = await ApiHarness.StartAsync();
        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(200);
        await h.StartAsync(ApiHarness.SpecJson("cancel-me", rounds: 50));
        await h.WaitForRoundAsync("cancel-me", 1);

        var response = await h.Api.CancelAsync(h.Client, "cancel-me", default);

        Assert.Equal(202, response.Status);
        Assert.True(Assert.IsType<RunCancelled>(response.Body).CheckpointsKept >= 2);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await h.WaitAsync("cancel-me")).RuntimeStatus);
        var list = Assert.IsType<CheckpointList>((await h.Api.CheckpointsAsync(h.Client, "cancel-me", default)).Body);
        Assert.True(list.Checkpoints.Count >= 2);
        Assert.True(list.Latest < 50);
        Assert.Equal(409, (await h.Api.CancelAsync(h.Client, "cancel-me", default)).Status);
    }

    [Fact]
    public async Task CancelAsync_JobOrchestrationThatMovedOnToItsNextAttempt_CancelsThatAttemptOnTheCompute()
    {
        await using var h = await ApiHarness.StartAsync();
        var silo = ApiHarness.Data[0].SiloId;
        var compute = h.UseRemote(silo);
        compute.Scripts[(silo, SiloStepKinds.Train, 1)] = new JobScript(QueuedPolls: 0, RunningPolls: 0, End: "failed");
        compute.Scripts[(silo, SiloStepKinds.Train, 2)] = new JobScript(End: "never");
        var spec = ApiHarness.SpecJson("cancel-retry", rounds: 2).TrimEnd().TrimEnd('}') + """, "retry": { "maxAttempts": 3, "firstIntervalSeconds": 0.1, "maxIntervalSeconds": 0.2 } }""";
        Assert.Equal(202, (await h.StartAsync(spec)).Status);
        var second = $"fl-cancel-retry-train-r00001-{silo}-j2";
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!compute.Submitted.Contains(second))
        {
            Assert.True(DateTime.UtcNow < deadline, "the job's second attempt was never submitted");
            await Task.Delay(50);
        }

        // The job orchestration's input still names attempt 1 (it has not continued as new): the sweep must cancel attempt 2.
        var response = await h.Api.CancelAsync(h.Client, "cancel-retry", default);
        Assert.Equal(1, Assert.IsType<RunCancelled>(response.Body).SiloJobsCancelled);
        while (!compute.Cancelled.Contains(second))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{second} was not cancelled on its compute");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task ListAsync_PagesOfTwo_ReturnEveryRunOnceAndFilterByStatus()
    {
        await using var h = await ApiHarness.StartAsync();
        foreach (var id in new[] { "page-a", "page-b", "page-c" })
        {
            await h.StartAsync(ApiHarness.SpecJson(id, rounds: 1));
            await h.WaitAsync(id);
        }

        var first = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, null, "2", null, default)).Body);
        Assert.Equal(2, first.Runs.Count);
        Assert.NotNull(first.ContinuationToken);
        var second = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, null, "2", first.ContinuationToken, default)).Body);
        Assert.Equal(
            ["page-a", "page-b", "page-c"],
            first.Runs.Concat(second.Runs).Select(r => r.RunId).Order());

        var completed = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, "Completed", "10", null, default)).Body);
        Assert.Equal(3, completed.Runs.Count);
        Assert.All(completed.Runs, r => Assert.Equal("Completed", r.RuntimeStatus));
        var running = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, "Running", "10", null, default)).Body);
        Assert.Empty(running.Runs);

        Assert.Equal(400, (await h.Api.ListAsync(h.Client, "Bogus", null, null, default)).Status);
        Assert.Equal(400, (await h.Api.ListAsync(h.Client, null, "0", null, default)).Status);
        Assert.Equal(400, (await h.Api.ListAsync(h.Client, null, "1000", null, default)).Status);
    }
}

public sealed class RecurringTrainingTests
{
    [Fact]
    public async Task TickAsync_WhileThePreviousRunIsGoing_StartsNothing_ThenResumesFromItsLatestCheckpoint()
    {
        await using var h = await ApiHarness.StartAsync();
        h.RecurringStore.Template = Encoding.UTF8.GetBytes(ApiHarness.SpecJson(null, rounds: 3));
        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(150);

        var first = await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default);
        Assert.Equal("started", first.Outcome);
        Assert.Null(first.ResumedFrom);
        Assert.StartsWith("recurring-", first.RunId, StringComparison.Ordinal);

        var second = await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default);
        Assert.Equal("skipped", second.Outcome);
        Assert.Equal(first.RunId, second.RunId);
        Assert.Contains("still", second.Reason, StringComparison.Ordinal);
        var all = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, null, "50", null, default)).Body);
        Assert.Single(all.Runs);

        await h.WaitAsync(first.RunId!);
        var firstLatest = await h.Store.GetLatestAsync("checkpoints", first.RunId!, default);
        h.Backend.TrainDelay = TimeSpan.Zero;
        await Task.Delay(1100); // run ids carry the start second

        var third = await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default);
        Assert.Equal("started", third.Outcome);
        Assert.NotEqual(first.RunId, third.RunId);
        Assert.Equal(new FederatedFunctions.Core.Runs.ModelOrigin(first.RunId!, 3, firstLatest!.Model), third.ResumedFrom);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync(third.RunId!)).RuntimeStatus);

        // Round 0 of the new run holds the previous run's final weights, and says where they came from.
        var round0 = (await h.Store.ListAsync("checkpoints", third.RunId!, default))[0];
        Assert.Equal(third.ResumedFrom, round0.ResumedFrom);
        var before = FederatedFunctions.Core.Tensors.Safetensors.Parse(await h.Store.ReadModelAsync(firstLatest.Model, default)).Tensors;
        var after = FederatedFunctions.Core.Tensors.Safetensors.Parse(await h.Store.ReadModelAsync(round0.Model, default)).Tensors;
        Assert.Equal(before.Select(t => t.Data.ToArray()), after.Select(t => t.Data.ToArray()));
    }

    [Fact]
    public async Task TickAsync_DisabledOrWithoutTemplate_StartsNothing()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal("failed", (await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default)).Outcome);

        h.RecurringStore.Template = Encoding.UTF8.GetBytes("""{ "silos": [] }""");
        var invalid = await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default);
        Assert.Equal("failed", invalid.Outcome);
        Assert.Contains("$.silos", invalid.Reason, StringComparison.Ordinal);

        h.RecurringStore.Template = Encoding.UTF8.GetBytes(ApiHarness.SpecJson(null, rounds: 1));
        h.RecurringOptions.Enabled = false;
        Assert.Equal("disabled", (await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default)).Outcome);
        Assert.Null(h.RecurringStore.LastRunId);
    }
}

public sealed class RecurringSingletonTests
{
    [Fact]
    public async Task TickAsync_StateWriteLostWhileARunIsGoing_StillStartsNothing()
    {
        await using var h = await ApiHarness.StartAsync();
        h.RecurringStore.Template = Encoding.UTF8.GetBytes(ApiHarness.SpecJson(null, rounds: 3));
        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(200);
        var first = await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default);
        Assert.Equal("started", first.Outcome);

        // As if the host died between starting the run and recording it.
        h.RecurringStore.LastRunId = null;
        var second = await h.Recurring.TickAsync(h.Client, ApiHarness.Urls, default);

        Assert.Equal("skipped", second.Outcome);
        Assert.Equal(first.RunId, second.RunId);
        await h.WaitAsync(first.RunId!);
    }
}
