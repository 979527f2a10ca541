using System.Net;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.Workflow;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>
/// Every function of the app invoked as the worker invokes it, against Azurite: training runs whose orchestrator and activities
/// are the app's trigger methods, each HTTP function with a request double, and the timer.
/// </summary>
[Collection(FunctionsAppCollection.Name)]
public sealed class FunctionsAppTests(FunctionsAppFixture app)
{
    private const string BaseUrl = "https://contoso-fl.azurewebsites.net/api/runs";

    private Task<FakeResponse> CallAsync(Func<RunsHttpFunctions, FunctionContext, Task<Microsoft.Azure.Functions.Worker.Http.HttpResponseData>> call) =>
        CallAsync<RunsHttpFunctions>(call);

    private async Task<FakeResponse> CallAsync<TFunctions>(Func<TFunctions, FunctionContext, Task<Microsoft.Azure.Functions.Worker.Http.HttpResponseData>> call)
        where TFunctions : class
    {
        var (functions, context, scope) = app.Worker.Activate<TFunctions>();
        using (scope)
        {
            return (FakeResponse)await call(functions, context);
        }
    }

    private static JsonElement Json(FakeResponse response) => JsonDocument.Parse(response.Text).RootElement;

    [Fact]
    public async Task EveryOrchestratorAndActivityFunction_RunsTrainingsOnAzurite_PlainAndSecureEyesOff()
    {
        var runs = new[]
        {
            // With cross-site evaluation after the last round: the publish and matrix activities, and evaluate steps of local models.
            ("fa-plain", FunctionsAppFixture.SpecJson("fa-plain", rounds: 2, """ "evaluation": { "everyRounds": 1, "crossSite": true }, """)),
            // Eyes-off without secure aggregation: the silos' evaluation reports, which the summary activity reads.
            ("fa-off", FunctionsAppFixture.SpecJson("fa-off", rounds: 1, """ "privacy": { "mode": "eyes-off", "minAggregateSilos": 2 }, """)),
            // Eyes-off with secure aggregation (of the updates and of the evaluations), and features standardized by a
            // federated analysis before round 1.
            ("fa-secure", FunctionsAppFixture.SpecJson("fa-secure", rounds: 2, """ "privacy": { "mode": "eyes-off", "minAggregateSilos": 2, "secureAggregation": { "clipNorm": 10, "maxExamples": 1000 } }, """)
                .Replace("\"data\": { \"classes\": 4 }", "\"data\": { \"classes\": 4, \"standardize\": true, \"features\": [\"x0\", \"x1\", \"x2\", \"x3\", \"x4\", \"x5\", \"x6\", \"x7\"] }", StringComparison.Ordinal)),
        };
        foreach (var (runId, spec) in runs)
        {
            var response = await CallAsync((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", BaseUrl, spec), app.Client));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        foreach (var (runId, _) in runs)
        {
            await app.AssertCompletesAsync(runId);
            var last = runId == "fa-off" ? 1 : 2;
            var manifest = await app.Azurite.Blobs.GetBlobContainerClient("checkpoints").GetBlobClient(BlobLayout.Manifest(runId, last)).DownloadContentAsync();
            Assert.True(JsonDocument.Parse(manifest.Value.Content.ToString()).RootElement.GetProperty("metrics").TryGetProperty("evalAccuracy", out var accuracy) && accuracy.ValueKind == JsonValueKind.Number, $"{runId}: round {last} has no evaluation");
        }

        var matrix = await app.Azurite.Blobs.GetBlobContainerClient("checkpoints").GetBlobClient(BlobLayout.CrossSite("fa-plain")).DownloadContentAsync();
        var cells = JsonDocument.Parse(matrix.Value.Content.ToString()).RootElement.GetProperty("cells").GetArrayLength();
        Assert.Equal((FunctionsAppFixture.Data.Count + 1) * FunctionsAppFixture.Data.Count, cells);

        var round0 = await app.Azurite.Blobs.GetBlobContainerClient("checkpoints").GetBlobClient(BlobLayout.Manifest("fa-secure", 0)).DownloadContentAsync();
        Assert.Equal(8, JsonDocument.Parse(round0.Value.Content.ToString()).RootElement.GetProperty("standardization").GetProperty("stddev").GetArrayLength());

        // A federated analysis through the same worker: its orchestrator and activities, and the silos' analyze steps
        // (one silo on the process compute).
        var analysis = new Core.Analysis.AnalysisSpec
        {
            AnalysisId = "fa-analysis",
            Silos = FunctionsAppFixture.Data.Select(d => d.SiloId).ToArray(),
            Features =
            [
                new Core.Analysis.FeatureAnalysis { Column = "x0", Statistics = ["count", "mean", "quantiles"], Quantiles = [0.5] },
                new Core.Analysis.FeatureAnalysis { Column = "label", Statistics = ["valueCounts"] },
            ],
            Privacy = new Core.Analysis.AnalysisPrivacySpec { MinCount = 1 },
        };
        Assert.Empty(Core.Analysis.AnalysisSpecValidator.Validate(analysis));
        await app.Client.ScheduleNewOrchestrationInstanceAsync(nameof(Workflow.Orchestration.AnalysisOrchestrator), new Workflow.Contracts.AnalysisState("fa-analysis", analysis, "checkpoints"), new StartOrchestrationOptions("fa-analysis"));
        await app.AssertCompletesAsync("fa-analysis");
        var result = app.Azurite.Blobs.GetBlobContainerClient("checkpoints").GetBlobClient(BlobLayout.AnalysisResult("fa-analysis"));
        Assert.Contains("\"valueCounts\"", (await result.DownloadContentAsync()).Value.Content.ToString(), StringComparison.Ordinal);

        // The cancellation functions run in the cancel test of this class; every other function has run here.
        var cancellation = new[] { nameof(Workflow.Orchestration.CancelSiloJobsOrchestrator), nameof(Workflow.Activities.CancelSiloJobActivity) };
        foreach (var task in WorkflowRegistration.Orchestrators.Concat(WorkflowRegistration.Activities).Select(WorkflowRegistration.TaskName).Except(cancellation))
        {
            Assert.True(WorkerHost.Invocations.GetValueOrDefault(task) > 0, $"function {task} never ran");
        }
    }

    [Fact]
    public async Task StartRun_Accepted_Returns202WithTheExtensionsManagementUrls()
    {
        var response = await CallAsync((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", BaseUrl, FunctionsAppFixture.SpecJson("fa-urls", rounds: 1)), app.Client));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("/api/runs/fa-urls", response.Headers.GetValues("Location").Single());
        var management = Json(response).GetProperty("management");
        // CreateHttpManagementPayload: the request's host, the webhook path, and the system key the Functions host binds.
        Assert.Equal($"https://contoso-fl.azurewebsites.net/runtime/webhooks/durabletask/instances/fa-urls?code={FunctionsAppFixture.SystemKey}", management.GetProperty("statusQueryGetUri").GetString());
        Assert.StartsWith("https://contoso-fl.azurewebsites.net/runtime/webhooks/durabletask/instances/fa-urls/terminate?reason=", management.GetProperty("terminatePostUri").GetString(), StringComparison.Ordinal);
        await app.AssertCompletesAsync("fa-urls");
    }

    [Fact]
    public async Task StartRun_RefusedRequests_AreProblemDocumentsNamingTheProblem()
    {
        var formPost = await CallAsync((f, c) => f.StartRunAsync(new FakeRequest(c, "POST", BaseUrl, Encoding.UTF8.GetBytes(FunctionsAppFixture.SpecJson("fa-csrf", 1)), "text/plain"), app.Client));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, formPost.StatusCode);
        Assert.Equal("urn:federatedfunctions:problem:unsupported-media-type", Json(formPost).GetProperty("type").GetString());

        var typo = await CallAsync((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", BaseUrl, FunctionsAppFixture.SpecJson("fa-typo", 1).Replace(FunctionsAppFixture.Data[2].SiloId, "silo-typo", StringComparison.Ordinal)), app.Client));
        Assert.Equal(HttpStatusCode.BadRequest, typo.StatusCode);
        Assert.Equal("$.silos[2]", Json(typo).GetProperty("errors")[0].GetProperty("path").GetString());

        var big = new byte[FederatedFunctions.Api.RunsApi.MaxBodyBytes + 1];
        Array.Fill(big, (byte)' ');
        var tooLarge = await CallAsync((f, c) => f.StartRunAsync(new FakeRequest(c, "POST", BaseUrl, big, "application/json"), app.Client));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Null(await app.Client.GetInstanceAsync("fa-csrf"));
        Assert.Null(await app.Client.GetInstanceAsync("fa-typo"));
    }

    [Fact]
    public async Task QueryFunctions_ListGetCheckpointsAudit_AnswerForACompletedRunAndAnUnknownOne()
    {
        Assert.Equal(HttpStatusCode.Accepted, (await CallAsync((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", BaseUrl, FunctionsAppFixture.SpecJson("fa-query", 1)), app.Client))).StatusCode);
        await app.AssertCompletesAsync("fa-query");

        var list = await CallAsync((f, c) => f.ListRunsAsync(new FakeRequest(c, "GET", BaseUrl + "?status=Completed&pageSize=100"), app.Client));
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Contains("fa-query", Json(list).GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("runId").GetString()));

        var badList = await CallAsync((f, c) => f.ListRunsAsync(new FakeRequest(c, "GET", BaseUrl + "?continuationToken=garbage"), app.Client));
        Assert.Equal(HttpStatusCode.BadRequest, badList.StatusCode);
        Assert.Equal("query.continuationToken", Json(badList).GetProperty("errors")[0].GetProperty("path").GetString());

        var get = await CallAsync((f, c) => f.GetRunAsync(new FakeRequest(c, "GET", BaseUrl + "/fa-query"), app.Client, "fa-query"));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("Completed", Json(get).GetProperty("runtimeStatus").GetString());

        var checkpoints = await CallAsync((f, c) => f.GetRunCheckpointsAsync(new FakeRequest(c, "GET", BaseUrl + "/fa-query/checkpoints"), app.Client, "fa-query"));
        Assert.Equal([0, 1], Json(checkpoints).GetProperty("checkpoints").EnumerateArray().Select(c => c.GetProperty("round").GetInt32()));

        var audit = await CallAsync((f, c) => f.GetRunAuditAsync(new FakeRequest(c, "GET", BaseUrl + "/fa-query/audit"), app.Client, "fa-query"));
        Assert.Equal(HttpStatusCode.OK, audit.StatusCode);
        Assert.True(Json(audit).GetProperty("verification").GetProperty("isValid").GetBoolean());

        // The round's model as a file, hashed as its manifest says; the dashboard page behind the same key.
        var model = await CallAsync((f, c) => f.GetRunModelAsync(new FakeRequest(c, "GET", BaseUrl + "/fa-query/checkpoints/latest/model"), app.Client, "fa-query", "latest"));
        Assert.Equal(HttpStatusCode.OK, model.StatusCode);
        Assert.Equal("application/octet-stream", model.Headers.GetValues("Content-Type").Single());
        Assert.Equal("attachment; filename=\"fa-query-round-00001.safetensors\"", model.Headers.GetValues("Content-Disposition").Single());
        var latest = Json(checkpoints).GetProperty("checkpoints").EnumerateArray().Single(c => c.GetProperty("round").GetInt32() == 1).GetProperty("model").GetProperty("sha256").GetString();
        Assert.Equal(latest, Core.Hashing.Sha256Hex(((MemoryStream)model.Body).ToArray()));

        var (dashboardContext, dashboardScope) = app.Worker.NewInvocation();
        using (dashboardScope)
        {
            var page = (FakeResponse)await DashboardFunction.RunAsync(new FakeRequest(dashboardContext, "GET", "https://contoso-fl.azurewebsites.net/api/dashboard"));
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html; charset=utf-8", page.Headers.GetValues("Content-Type").Single());
            Assert.StartsWith("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            Assert.Contains("<script>", page.Text, StringComparison.Ordinal);
        }

        var analyses = await CallAsync<AnalysesHttpFunctions>((f, c) => f.ListAnalysesAsync(new FakeRequest(c, "GET", "https://contoso-fl.azurewebsites.net/api/analyses?pageSize=100"), app.Client));
        Assert.Equal(HttpStatusCode.OK, analyses.StatusCode);
        Assert.DoesNotContain("fa-query", Json(analyses).GetProperty("analyses").EnumerateArray().Select(a => a.GetProperty("analysisId").GetString()));

        foreach (var missing in new[]
        {
            await CallAsync((f, c) => f.GetRunModelAsync(new FakeRequest(c, "GET", BaseUrl + "/ghost/checkpoints/1/model"), app.Client, "ghost", "1")),
            await CallAsync((f, c) => f.GetRunAsync(new FakeRequest(c, "GET", BaseUrl + "/ghost"), app.Client, "ghost")),
            await CallAsync((f, c) => f.GetRunCheckpointsAsync(new FakeRequest(c, "GET", BaseUrl + "/ghost/checkpoints"), app.Client, "ghost")),
            await CallAsync((f, c) => f.GetRunAuditAsync(new FakeRequest(c, "GET", BaseUrl + "/ghost/audit"), app.Client, "ghost")),
            await CallAsync((f, c) => f.CancelRunAsync(new FakeRequest(c, "POST", BaseUrl + "/ghost/cancel"), app.Client, "ghost")),
        })
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Equal("urn:federatedfunctions:problem:run-not-found", Json(missing).GetProperty("type").GetString());
        }
    }

    [Fact]
    public async Task CancelAndResume_WithASiloJobInFlight_CancelTheJobOnItsComputeThenGoOnFromTheLatestCheckpoint()
    {
        Assert.Equal(HttpStatusCode.Accepted, (await CallAsync((f, c) => f.StartRunAsync(FakeRequest.Json(c, "POST", BaseUrl, FunctionsAppFixture.SpecJson("fa-cancel", rounds: 40)), app.Client))).StatusCode);
        var container = app.Azurite.Blobs.GetBlobContainerClient("checkpoints");
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!(await container.GetBlobClient(BlobLayout.Manifest("fa-cancel", 1)).ExistsAsync()).Value)
        {
            Assert.True(DateTime.UtcNow < deadline, "fa-cancel did not commit round 1");
            await Task.Delay(100);
        }

        // Wait until the process silo has a job of this run in flight: its runner process started, not yet exited.
        var jobs = new DirectoryInfo(app.JobsDirectory);
        DirectoryInfo? inFlight = null;
        while (inFlight is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "no silo job of fa-cancel was in flight");
            inFlight = jobs.Exists ? jobs.GetDirectories("fl-fa-cancel-*").FirstOrDefault(d => File.Exists(Path.Combine(d.FullName, "process.json")) && !Exited(d)) : null;
            await Task.Delay(50);
        }

        var cancel = await CallAsync((f, c) => f.CancelRunAsync(new FakeRequest(c, "POST", BaseUrl + "/fa-cancel/cancel"), app.Client, "fa-cancel"));
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.True(Json(cancel).GetProperty("siloJobsCancelled").GetInt32() >= 1);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await app.WaitAsync("fa-cancel")).RuntimeStatus);

        // The job was cancelled on its compute: its runner was killed and the job marked cancelled.
        while (!File.Exists(Path.Combine(inFlight.FullName, "cancelled")))
        {
            Assert.True(DateTime.UtcNow < deadline.AddMinutes(1), $"job {inFlight.Name} was not cancelled on its compute");
            await Task.Delay(100);
        }

        Assert.True(WorkerHost.Invocations.GetValueOrDefault(nameof(Workflow.Orchestration.CancelSiloJobsOrchestrator)) > 0);
        Assert.True(WorkerHost.Invocations.GetValueOrDefault(nameof(Workflow.Activities.CancelSiloJobActivity)) > 0);

        var store = new Adapters.Checkpoints.BlobCheckpointStore(app.Azurite.Blobs);
        var latest = await store.GetLatestAsync("checkpoints", "fa-cancel", default);
        var resume = await CallAsync((f, c) => f.ResumeRunAsync(new FakeRequest(c, "POST", BaseUrl + "/fa-cancel/resume"), app.Client, "fa-cancel"));
        Assert.Equal(HttpStatusCode.Accepted, resume.StatusCode);
        Assert.Contains("/runtime/webhooks/durabletask/instances/fa-cancel", Json(resume).GetProperty("management").GetProperty("statusQueryGetUri").GetString(), StringComparison.Ordinal);

        // The resumed run trains its next round on new jobs, every silo included: the cancelled job is not taken as its result.
        var next = BlobLayout.Manifest("fa-cancel", latest!.Round + 1);
        while (!(await container.GetBlobClient(next).ExistsAsync()).Value)
        {
            Assert.True(DateTime.UtcNow < deadline.AddMinutes(2), $"the resumed fa-cancel did not commit round {latest.Round + 1}");
            await Task.Delay(100);
        }

        var manifest = (await store.ListAsync("checkpoints", "fa-cancel", default)).Single(m => m.Round == latest.Round + 1);
        Assert.Empty(manifest.Rejected);
        Assert.Contains(jobs.GetDirectories("fl-fa-cancel-*"), d => d.Name.Contains($"-train-r{latest.Round + 1:D5}-", StringComparison.Ordinal) && d.Name.Contains("-e", StringComparison.Ordinal));
        var cancelAgain = await CallAsync((f, c) => f.CancelRunAsync(new FakeRequest(c, "POST", BaseUrl + "/fa-cancel/cancel"), app.Client, "fa-cancel"));
        Assert.Equal(HttpStatusCode.Accepted, cancelAgain.StatusCode);
        await app.WaitAsync("fa-cancel");
    }

    [Fact]
    public async Task AnalysesFunctions_StartThenGet_ReturnTheStoredResultAndRefuseBadSpecsDuplicatesAndUnknownIds()
    {
        const string Url = "https://contoso-fl.azurewebsites.net/api/analyses";
        var silos = string.Join(", ", FunctionsAppFixture.Data.Select(d => $"\"{d.SiloId}\""));
        var spec = $$"""
            { "analysisId": "fa-http-analysis", "silos": [{{silos}}],
              "features": [ { "column": "x0", "statistics": ["count", "mean"] }, { "column": "label", "statistics": ["valueCounts"] } ],
              "privacy": { "minCount": 1 } }
            """;

        var start = await CallAsync<AnalysesHttpFunctions>((f, c) => f.StartAnalysisAsync(FakeRequest.Json(c, "POST", Url, spec), app.Client));

        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        Assert.Equal("/api/analyses/fa-http-analysis", start.Headers.GetValues("Location").Single());
        Assert.Equal("fa-http-analysis", Json(start).GetProperty("analysisId").GetString());
        Assert.Equal($"https://contoso-fl.azurewebsites.net/runtime/webhooks/durabletask/instances/fa-http-analysis?code={FunctionsAppFixture.SystemKey}", Json(start).GetProperty("management").GetProperty("statusQueryGetUri").GetString());
        await app.AssertCompletesAsync("fa-http-analysis");

        var get = await CallAsync<AnalysesHttpFunctions>((f, c) => f.GetAnalysisAsync(new FakeRequest(c, "GET", Url + "/fa-http-analysis"), app.Client, "fa-http-analysis"));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        var x0 = Json(get).GetProperty("results").GetProperty("x0");
        Assert.Equal(FunctionsAppFixture.Data.Sum(d => d.Train.Rows), x0.GetProperty("count").GetInt64());
        Assert.Equal(FunctionsAppFixture.Data.Sum(d => d.Train.Rows), Json(get).GetProperty("results").GetProperty("label").GetProperty("valueCounts").EnumerateObject().Sum(v => v.Value.GetInt64()));
        var stored = (await app.Azurite.Blobs.GetBlobContainerClient("checkpoints").GetBlobClient(BlobLayout.AnalysisResult("fa-http-analysis")).DownloadContentAsync()).Value.Content.ToString();
        Assert.Equal(stored, get.Text);

        var duplicate = await CallAsync<AnalysesHttpFunctions>((f, c) => f.StartAnalysisAsync(FakeRequest.Json(c, "POST", Url, spec), app.Client));
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Equal("urn:federatedfunctions:problem:analysis-exists", Json(duplicate).GetProperty("type").GetString());

        var bad = await CallAsync<AnalysesHttpFunctions>((f, c) => f.StartAnalysisAsync(FakeRequest.Json(c, "POST", Url, spec.Replace("fa-http-analysis", "fa-http-bad", StringComparison.Ordinal).Replace("\"mean\"", "\"median\"", StringComparison.Ordinal)), app.Client));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("$.features[0].statistics[1]", Json(bad).GetProperty("errors")[0].GetProperty("path").GetString());
        Assert.Null(await app.Client.GetInstanceAsync("fa-http-bad"));

        var missing = await CallAsync<AnalysesHttpFunctions>((f, c) => f.GetAnalysisAsync(new FakeRequest(c, "GET", Url + "/ghost"), app.Client, "ghost"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("urn:federatedfunctions:problem:analysis-not-found", Json(missing).GetProperty("type").GetString());
    }

    private static bool Exited(DirectoryInfo job)
    {
        var status = Path.Combine(job.FullName, "status.json");
        return File.Exists(status) && File.ReadAllText(status).Contains("exited", StringComparison.Ordinal);
    }

    [Fact]
    public async Task RecurringTraining_TimerTick_StartsARunFromTheStoredTemplate()
    {
        var config = app.Azurite.Blobs.GetBlobContainerClient("fl-config");
        await config.CreateIfNotExistsAsync();
        var template = FunctionsAppFixture.SpecJson("ignored-id", rounds: 1).Replace("\"runId\": \"ignored-id\",", string.Empty, StringComparison.Ordinal);
        await config.GetBlobClient("recurring/spec.json").UploadAsync(BinaryData.FromString(template), overwrite: true);

        var (functions, context, scope) = app.Worker.Activate<RecurringTrainingFunction>();
        using (scope)
        {
            await functions.RunAsync(new TimerInfo(), app.Client, context);
        }

        var state = (await config.GetBlobClient("recurring/state.json").DownloadContentAsync()).Value.Content.ToString();
        var runId = JsonDocument.Parse(state).RootElement.EnumerateObject().Select(p => p.Value).First(v => v.ValueKind == JsonValueKind.String && v.GetString()!.StartsWith("recurring-", StringComparison.Ordinal)).GetString()!;
        await app.AssertCompletesAsync(runId);
    }
}
