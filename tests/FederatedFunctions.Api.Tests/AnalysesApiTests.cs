using System.Globalization;
using System.Text;
using System.Text.Json;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

/// <summary><c>POST /api/analyses</c> and <c>GET /api/analyses/{id}</c> through the shared handler, on the real orchestrator and in-memory silos.</summary>
public sealed class AnalysesApiTests
{
    // x0 over the union of the silos' rows, from the same CSV text the silos read.
    private static double[] CentralX0(ApiHarness h) =>
        ApiHarness.Data.SelectMany(d =>
        {
            var lines = Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{d.SiloId}/data/train.csv"]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var column = Array.IndexOf(lines[0].Split(','), "x0");
            Assert.True(column >= 0, "no x0 column in the provisioned CSV");
            return lines.Skip(1).Select(l => double.Parse(l.Split(',')[column], CultureInfo.InvariantCulture));
        }).ToArray();

    private static JsonElement Body(ApiResponse response) =>
        JsonSerializer.SerializeToElement(response.Body, response.Body!.GetType(), ApiJson.Options);

    [Fact]
    public async Task StartAsync_ValidSpec_Returns202AndGetReturnsTheResultWithTheCentralCountAndMean()
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-ok"));

        Assert.Equal(202, response.Status);
        Assert.Equal("/api/analyses/an-ok", response.Location);
        var accepted = Assert.IsType<AnalysisAccepted>(response.Body);
        Assert.Equal(("an-ok", "Pending", "/api/analyses/an-ok"), (accepted.AnalysisId, accepted.RuntimeStatus, accepted.StatusUri));
        Assert.Equal("http://test/status/an-ok", accepted.Management.StatusQueryGetUri);
        Assert.Equal("http://test/terminate/an-ok", accepted.Management.TerminatePostUri);
        var meta = await h.WaitAsync("an-ok");
        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);

        var get = await h.Analyses.GetAsync(h.Client, "an-ok", default);
        Assert.Equal(200, get.Status);
        Assert.Equal("application/json", get.ContentType);
        var result = Body(get);
        var x0 = CentralX0(h);
        var x0Result = result.GetProperty("results").GetProperty("x0");
        Assert.Equal("an-ok", result.GetProperty("analysisId").GetString());
        Assert.Equal(ApiHarness.Data.Select(d => d.SiloId), result.GetProperty("silos").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(x0.Length, x0Result.GetProperty("count").GetInt64());
        Assert.Equal(0, x0Result.GetProperty("missing").GetInt64());
        var mean = x0Result.GetProperty("mean").GetDouble();
        Assert.True(Math.Abs(x0.Average() - mean) <= 1e-9 * Math.Max(1, Math.Abs(x0.Average())), $"central mean {x0.Average():R}, API {mean:R}");
        Assert.Equal(x0.Length, result.GetProperty("results").GetProperty("label").GetProperty("valueCounts").EnumerateObject().Sum(c => c.Value.GetInt64()));

        // The very document fl analyze --json prints for the stored result.
        var stored = await AnalysisService.ReadResultAsync(h.Store, AnalysisState.DefaultContainer, "an-ok", default);
        Assert.Equal(JsonSerializer.Serialize(stored, Core.Analysis.AnalysisJson.Options), JsonSerializer.Serialize(get.Body, get.Body!.GetType(), ApiJson.Options));
    }

    [Fact]
    public async Task StartAsync_NoAnalysisId_GeneratesOne()
    {
        await using var h = await ApiHarness.StartAsync();
        var accepted = Assert.IsType<AnalysisAccepted>((await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson(null))).Body);
        Assert.Matches("^analysis-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$", accepted.AnalysisId);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync(accepted.AnalysisId)).RuntimeStatus);
    }

    [Fact]
    public async Task StartAsync_UnknownStatisticOrUnregisteredSilo_Returns400NamingThePathAndRule()
    {
        await using var h = await ApiHarness.StartAsync();
        var unknown = await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-bad").Replace("\"missing\"", "\"median\"", StringComparison.Ordinal));

        Assert.Equal(400, unknown.Status);
        Assert.Equal("application/problem+json", unknown.ContentType);
        var problem = Assert.IsType<ProblemDocument>(unknown.Body);
        Assert.Equal("urn:federatedfunctions:problem:invalid-spec", problem.Type);
        Assert.Equal("The analysis spec is invalid.", problem.Title);
        var error = Assert.Single(problem.Errors!);
        Assert.Equal(("$.features[0].statistics[1]", "enum"), (error.Path, error.Rule));

        var typo = await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-typo", silos: [ApiHarness.Data[0].SiloId, "silo-typo"]));
        Assert.Equal(400, typo.Status);
        var notRegistered = Assert.Single(Assert.IsType<ProblemDocument>(typo.Body).Errors!);
        Assert.Equal(("$.silos[1]", "not-registered"), (notRegistered.Path, notRegistered.Rule));

        Assert.Null(await h.Client.GetInstanceAsync("an-bad"));
        Assert.Null(await h.Client.GetInstanceAsync("an-typo"));
    }

    [Fact]
    public async Task StartFromHttpAsync_NotJsonOrTooLargeOrMalformed_Returns415Or413Or400()
    {
        await using var h = await ApiHarness.StartAsync();
        var notJson = await h.Analyses.StartFromHttpAsync(h.Client, "text/plain", Encoding.UTF8.GetBytes(ApiHarness.AnalysisSpecJson("an-csrf")), ApiHarness.Urls, default);
        Assert.Equal(415, notJson.Status);
        Assert.Equal("urn:federatedfunctions:problem:unsupported-media-type", Assert.IsType<ProblemDocument>(notJson.Body).Type);
        Assert.Equal(413, (await h.Analyses.StartFromHttpAsync(h.Client, "application/json", null, ApiHarness.Urls, default)).Status);
        var malformed = await h.StartAnalysisAsync("{ not json");
        Assert.Equal(400, malformed.Status);
        Assert.Equal("json", Assert.Single(Assert.IsType<ProblemDocument>(malformed.Body).Errors!).Rule);
        Assert.Null(await h.Client.GetInstanceAsync("an-csrf"));
    }

    [Fact]
    public async Task GetAsync_UnknownInvalidOrTrainingRunId_Returns404ProblemDocument()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("a-training-run", rounds: 1))).Status);
        await h.WaitAsync("a-training-run");

        foreach (var id in new[] { "no-such-analysis", "../etc", "a-training-run" })
        {
            var response = await h.Analyses.GetAsync(h.Client, id, default);
            Assert.Equal(404, response.Status);
            Assert.Equal("application/problem+json", response.ContentType);
            Assert.Equal("urn:federatedfunctions:problem:analysis-not-found", Assert.IsType<ProblemDocument>(response.Body).Type);
        }
    }

    [Fact]
    public async Task StartAsync_IdRunningOrWithAResult_Returns409()
    {
        await using var h = await ApiHarness.StartAsync();

        // One silo's analyze job stays queued on a remote compute: the analysis keeps running.
        var silo = ApiHarness.Data[0].SiloId;
        h.UseRemote(silo).Scripts[(silo, SiloStepKinds.Analyze, 1)] = new JobScript(End: "never");
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-stuck"))).Status);
        var running = await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-stuck"));
        Assert.Equal(409, running.Status);
        var problem = Assert.IsType<ProblemDocument>(running.Body);
        Assert.Equal("urn:federatedfunctions:problem:analysis-exists", problem.Type);
        Assert.Contains("already running", problem.Title, StringComparison.Ordinal);
        var status = Assert.IsType<AnalysisStatusView>((await h.Analyses.GetAsync(h.Client, "an-stuck", default)).Body);
        Assert.Contains(status.RuntimeStatus, new[] { "Pending", "Running" });
        await h.Client.TerminateInstanceAsync("an-stuck");

        h.Backend.RemoteSilos.Clear();
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-dup"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("an-dup")).RuntimeStatus);
        var again = await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-dup"));
        Assert.Equal(409, again.Status);
        Assert.Equal("An analysis with this id already has a result.", Assert.IsType<ProblemDocument>(again.Body).Title);
    }

    [Fact]
    public async Task StartAsync_IdOfATrainingRun_Returns409AndLeavesTheRunAlone()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("shared-id", rounds: 1))).Status);
        await h.WaitAsync("shared-id");

        var response = await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("shared-id"));

        Assert.Equal(409, response.Status);
        Assert.Equal("urn:federatedfunctions:problem:id-in-use", Assert.IsType<ProblemDocument>(response.Body).Type);
        Assert.Equal(nameof(TrainingOrchestrator), (await h.Client.GetInstanceAsync("shared-id"))!.Name);
    }

    [Fact]
    public async Task GetAsync_FailedAnalysis_ReturnsItsStatusAndFailureAndTheIdMayBeStartedAgain()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-fails", path: "data/nothing-here.csv"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await h.WaitAsync("an-fails")).RuntimeStatus);

        var get = await h.Analyses.GetAsync(h.Client, "an-fails", default);

        Assert.Equal(200, get.Status);
        var status = Assert.IsType<AnalysisStatusView>(get.Body);
        Assert.Equal("Failed", status.RuntimeStatus);
        Assert.Contains("minSilos", status.Failure, StringComparison.Ordinal);
        Assert.False(Body(get).TryGetProperty("results", out _));

        // No result was written: the id may run again, and this time it completes.
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-fails"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("an-fails")).RuntimeStatus);
        Assert.Equal(200, (await h.Analyses.GetAsync(h.Client, "an-fails", default)).Status);
        Assert.True(Body(await h.Analyses.GetAsync(h.Client, "an-fails", default)).TryGetProperty("results", out _));
    }

    [Fact]
    public async Task AuditReader_AnAnalysisFailedInPassTwoThenRunAgain_ReadsAndVerifiesTheWholeChain()
    {
        await using var h = await ApiHarness.StartAsync();
        h.Backend.AnalysisFailures[(ApiHarness.Data[0].SiloId, 2)] = true;
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-audit"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await h.WaitAsync("an-audit")).RuntimeStatus);
        h.Backend.AnalysisFailures.Clear();
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("an-audit"))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("an-audit")).RuntimeStatus);

        var report = await AuditReader.ReadAsync(h.Store, "checkpoints", "an-audit", default);

        // Pass 1 of the failed execution, then every pass of the one that completed, in one verified chain.
        Assert.True(report.Verification.IsValid, report.Verification.Detail);
        Assert.Equal(report.AnchoredHead, report.Entries[^1].Hash);
        Assert.True(report.Entries.Count > 2 * ApiHarness.Data.Count, $"{report.Entries.Count} entries");
        Assert.Equal(1, report.Entries[0].Round);
        Assert.True(report.Entries[^1].Round > 2, $"the last blob is {report.Entries[^1].Round}");
    }
}
