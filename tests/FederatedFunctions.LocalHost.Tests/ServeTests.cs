using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary><c>fl serve</c> as a real process, over real HTTP, on the shared Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ServeTests(AzuriteFixture azurite)
{
    private ProcessStartInfo Fl(string home, params string[] args) => FlProcess.Create(home, azurite.ConnectionString, args);

    // Two synthetic silos of 200 training rows each, then fl serve on a free port: the test talks to it, then it is stopped.
    private async Task ServeAsync(Func<HttpClient, Task> test)
    {
        using var home = new TempDirectory();
        using (var synth = Process.Start(Fl(home.Path, "data", "synth", "--silos", "2", "--train-per-silo", "200", "--test-per-silo", "60", "--seed", "3"))!)
        {
            await synth.WaitForExitAsync();
            Assert.True(synth.ExitCode == 0, await synth.StandardError.ReadToEndAsync());
        }

        var port = Azurite.FreePort();
        using var serve = Process.Start(Fl(home.Path, "serve", "--urls", $"http://127.0.0.1:{port}"))!;
        serve.OutputDataReceived += (_, _) => { };
        serve.ErrorDataReceived += (_, _) => { };
        serve.BeginOutputReadLine();
        serve.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await WaitUntilAsync(async () => (await TryGetAsync(http, "/api/runs"))?.StatusCode == HttpStatusCode.OK, "fl serve did not answer");
            await test(http);
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }

    [Fact]
    public Task Serve_PostARun_CompletesAndListsItsCheckpoints() => ServeAsync(async http =>
    {
        var spec = """
            { "runId": "served-1", "model": { "architecture": "mlp", "inputs": 16, "hidden": [16] },
              "data": { "classes": 10 }, "training": { "rounds": 2 }, "silos": ["silo-1", "silo-2"] }
            """;
        using var start = await http.PostAsync("/api/runs", new StringContent(spec, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        Assert.Equal("/api/runs/served-1", start.Headers.Location?.OriginalString);
        using var accepted = JsonDocument.Parse(await start.Content.ReadAsStringAsync());
        var statusQuery = accepted.RootElement.GetProperty("management").GetProperty("statusQueryGetUri").GetString()!;

        string? status = null;
        await WaitUntilAsync(async () =>
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync("/api/runs/served-1"));
            status = doc.RootElement.GetProperty("runtimeStatus").GetString();
            return status is "Completed" or "Failed" or "Terminated";
        }, "the run did not finish");
        Assert.Equal("Completed", status);

        using var checkpoints = JsonDocument.Parse(await http.GetStringAsync("/api/runs/served-1/checkpoints"));
        Assert.Equal(2, checkpoints.RootElement.GetProperty("latest").GetInt32());
        Assert.Equal([0, 1, 2], checkpoints.RootElement.GetProperty("checkpoints").EnumerateArray().Select(c => c.GetProperty("round").GetInt32()));

        // The audit log over HTTP: 2 rounds × 2 silos' updates, chain verified against the latest manifest.
        using var audit = JsonDocument.Parse(await http.GetStringAsync("/api/runs/served-1/audit"));
        Assert.Equal(4, audit.RootElement.GetProperty("entries").GetArrayLength());
        Assert.True(audit.RootElement.GetProperty("verification").GetProperty("isValid").GetBoolean());

        // A completed run has nothing to resume.
        using var resume = await http.PostAsync("/api/runs/served-1/resume", null);
        Assert.Equal(HttpStatusCode.Conflict, resume.StatusCode);
        Assert.Contains("run-completed", await resume.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The management URL of the 202 works on this host too.
        using var management = JsonDocument.Parse(await http.GetStringAsync(statusQuery));
        Assert.Equal("Completed", management.RootElement.GetProperty("runtimeStatus").GetString());

        using var duplicate = await http.PostAsync("/api/runs", new StringContent(spec, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Equal("application/problem+json", duplicate.Content.Headers.ContentType?.MediaType);
        using var tooBigContent = new ByteArrayContent(new byte[200_000]);
        tooBigContent.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var tooBig = await http.PostAsync("/api/runs", tooBigContent);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooBig.StatusCode);

        // Every refusal is a problem document naming what was wrong, including the ones routing makes.
        await AssertProblemAsync(await http.GetAsync("/api/runs/nothing-here"), HttpStatusCode.NotFound, "run-not-found");
        await AssertProblemAsync(await http.PostAsync("/api/runs", new StringContent(spec.Replace("served-1", "served-csrf", StringComparison.Ordinal), Encoding.UTF8, "text/plain")), HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        await AssertProblemAsync(await http.PostAsync("/api/runs", new StringContent(spec.Replace("served-1", "served-typo", StringComparison.Ordinal).Replace("\"silo-2\"", "\"silo-9\"", StringComparison.Ordinal), Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "invalid-spec", "$.silos[1]");
        await AssertProblemAsync(await http.GetAsync("/api/runs?continuationToken=garbage"), HttpStatusCode.BadRequest, "invalid-query", "query.continuationToken");
        await AssertProblemAsync(await http.GetAsync("/api/runs?pageSize=0"), HttpStatusCode.BadRequest, "invalid-query", "query.pageSize");
        await AssertProblemAsync(await http.GetAsync("/api/nothing"), HttpStatusCode.NotFound, "route-not-found");
        await AssertProblemAsync(await http.DeleteAsync("/api/runs"), HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        await AssertProblemAsync(await http.GetAsync("/runtime/webhooks/durabletask/instances/nothing-here"), HttpStatusCode.NotFound, "instance-not-found");

        // Only this origin: a request for another host name (a DNS-rebinding page) and a changing request from another
        // origin's page are refused before any handler; the page's own same-origin requests pass.
        using var rebound = new HttpRequestMessage(HttpMethod.Get, "/api/runs/served-1/checkpoints/latest/model");
        rebound.Headers.Host = "attacker.example";
        await AssertProblemAsync(await http.SendAsync(rebound), HttpStatusCode.Forbidden, "host-not-allowed");
        using var crossSite = new HttpRequestMessage(HttpMethod.Post, "/api/runs/served-1/resume");
        crossSite.Headers.Add("Origin", "http://attacker.example");
        await AssertProblemAsync(await http.SendAsync(crossSite), HttpStatusCode.Forbidden, "cross-origin");
        using var sameSite = new HttpRequestMessage(HttpMethod.Post, "/api/runs/served-1/resume");
        sameSite.Headers.Add("Origin", http.BaseAddress!.GetLeftPart(UriPartial.Authority));
        await AssertProblemAsync(await http.SendAsync(sameSite), HttpStatusCode.Conflict, "run-completed");
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/runs/served-csrf")).StatusCode);
    });

    [Fact]
    public Task Serve_ARunWhoseSilosAllFail_ItsManagementStatusIsJsonWithTheRedactedFailure() => ServeAsync(async http =>
    {
        // The data file does not exist in any silo: every silo fails, and so does the run.
        var spec = """
            { "runId": "served-fail", "model": { "architecture": "mlp", "inputs": 16, "hidden": [16] },
              "data": { "classes": 10, "train": "data/missing.csv" }, "training": { "rounds": 2 }, "retry": { "maxAttempts": 1 },
              "silos": ["silo-1", "silo-2"] }
            """;
        using var start = await http.PostAsync("/api/runs", new StringContent(spec, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        using var accepted = JsonDocument.Parse(await start.Content.ReadAsStringAsync());
        var statusQuery = accepted.RootElement.GetProperty("management").GetProperty("statusQueryGetUri").GetString()!;
        await WaitUntilAsync(async () =>
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync("/api/runs/served-fail"));
            return doc.RootElement.GetProperty("runtimeStatus").GetString() == "Failed";
        }, "the run did not fail");

        using var status = await http.GetAsync(statusQuery);
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        using var body = JsonDocument.Parse(await status.Content.ReadAsStringAsync());
        Assert.Equal("Failed", body.RootElement.GetProperty("runtimeStatus").GetString());
        using var run = JsonDocument.Parse(await http.GetStringAsync("/api/runs/served-fail"));
        Assert.Equal(run.RootElement.GetProperty("failure").GetString(), body.RootElement.GetProperty("output").GetString());
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("output").GetString()));
    });

    [Fact]
    public Task Serve_PostAnAnalysis_GetReturnsItsResultAndRefusalsAreProblemDocuments() => ServeAsync(async http =>
    {
        var spec = """
            { "analysisId": "served-eda", "silos": ["silo-1", "silo-2"],
              "features": [ { "column": "x0", "statistics": ["count", "missing", "mean"] }, { "column": "label", "statistics": ["valueCounts"] } ],
              "privacy": { "minCount": 1 } }
            """;
        using var start = await http.PostAsync("/api/analyses", new StringContent(spec, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        Assert.Equal("/api/analyses/served-eda", start.Headers.Location?.OriginalString);
        using var accepted = JsonDocument.Parse(await start.Content.ReadAsStringAsync());
        Assert.Equal("served-eda", accepted.RootElement.GetProperty("analysisId").GetString());
        var statusQuery = accepted.RootElement.GetProperty("management").GetProperty("statusQueryGetUri").GetString()!;

        JsonElement result = default;
        await WaitUntilAsync(async () =>
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync("/api/analyses/served-eda"));
            result = doc.RootElement.Clone();
            return result.TryGetProperty("results", out _) || result.GetProperty("runtimeStatus").GetString() is "Failed" or "Terminated";
        }, "the analysis did not finish");

        // 2 silos of 200 rows: every row counted once, none missing, every label counted.
        var x0 = result.GetProperty("results").GetProperty("x0");
        Assert.Equal(400, x0.GetProperty("count").GetInt64());
        Assert.Equal(0, x0.GetProperty("missing").GetInt64());
        Assert.Equal(400, result.GetProperty("results").GetProperty("label").GetProperty("valueCounts").EnumerateObject().Sum(v => v.Value.GetInt64()));
        Assert.Equal(["silo-1", "silo-2"], result.GetProperty("silos").EnumerateArray().Select(s => s.GetString()));
        using (var management = JsonDocument.Parse(await http.GetStringAsync(statusQuery)))
        {
            Assert.Equal("AnalysisOrchestrator", management.RootElement.GetProperty("name").GetString());
        }

        await AssertProblemAsync(await http.PostAsync("/api/analyses", new StringContent(spec, Encoding.UTF8, "application/json")), HttpStatusCode.Conflict, "analysis-exists");
        await AssertProblemAsync(await http.PostAsync("/api/analyses", new StringContent(spec.Replace("served-eda", "served-bad", StringComparison.Ordinal).Replace("\"mean\"", "\"median\"", StringComparison.Ordinal), Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "invalid-spec", "$.features[0].statistics[2]");
        await AssertProblemAsync(await http.PostAsync("/api/analyses", new StringContent(spec, Encoding.UTF8, "text/plain")), HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        await AssertProblemAsync(await http.GetAsync("/api/analyses/nothing-here"), HttpStatusCode.NotFound, "analysis-not-found");
        await AssertProblemAsync(await http.DeleteAsync("/api/analyses/served-eda"), HttpStatusCode.MethodNotAllowed, "method-not-allowed");
    });

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string type, string? errorPath = null)
    {
        using (response)
        {
            Assert.Equal(status, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("urn:federatedfunctions:problem:" + type, doc.RootElement.GetProperty("type").GetString());
            Assert.Equal((int)status, doc.RootElement.GetProperty("status").GetInt32());
            if (errorPath is not null)
            {
                Assert.Contains(errorPath, doc.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()));
            }
        }
    }

    private static async Task<HttpResponseMessage?> TryGetAsync(HttpClient http, string path)
    {
        try
        {
            return await http.GetAsync(path);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string message)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, message);
            await Task.Delay(200);
        }
    }
}
