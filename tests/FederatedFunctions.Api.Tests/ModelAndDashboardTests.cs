using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using FederatedFunctions.Api.Dashboard;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

/// <summary><c>GET /api/runs/{id}/checkpoints/{round}/model</c>, <c>GET /api/analyses</c> and the dashboard page, on the shared handlers.</summary>
public sealed partial class ModelAndDashboardTests
{
    [Fact]
    public async Task ModelAsync_ARoundOrLatest_IsTheManifestsModel_ATamperedBlobIsRefused()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("api-model", rounds: 2))).Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("api-model")).RuntimeStatus);
        var manifests = await h.Store.ListAsync("checkpoints", "api-model", default);

        foreach (var (round, expected) in new[] { ("1", manifests.Single(m => m.Round == 1)), ("latest", manifests.Single(m => m.Round == 2)) })
        {
            var response = await h.Api.ModelAsync(h.Client, "api-model", round, default);
            Assert.Equal(200, response.Status);
            Assert.Equal("application/octet-stream", response.ContentType);
            var file = Assert.IsType<FileBody>(response.Body);
            Assert.Equal(expected.Model.Sha256, Hashing.Sha256Hex(file.Bytes.Span));
            Assert.Equal($"api-model-round-{expected.Round:D5}.safetensors", file.FileName);
            Assert.Contains(response.Encode().Headers, kv => kv.Key == "Content-Disposition" && kv.Value == $"attachment; filename=\"api-model-round-{expected.Round:D5}.safetensors\"");
        }

        Assert.Equal(404, (await h.Api.ModelAsync(h.Client, "api-model", "7", default)).Status);
        Assert.Equal(404, (await h.Api.ModelAsync(h.Client, "ghost", "1", default)).Status);
        foreach (var bad in new[] { "-1", "1.5", "first", "" })
        {
            var refused = await h.Api.ModelAsync(h.Client, "api-model", bad, default);
            Assert.Equal(400, refused.Status);
            Assert.Equal("route.round", Assert.IsType<ProblemDocument>(refused.Body).Errors![0].Path);
        }

        // One byte of the stored round-1 model changed: refused, and the problem says why.
        var uri = manifests.Single(m => m.Round == 1).Model.Uri;
        var bytes = h.Blobs.Items[uri].ToArray();
        bytes[^1] ^= 0x20;
        h.Blobs.Items[uri] = bytes;
        var tampered = await h.Api.ModelAsync(h.Client, "api-model", "1", default);
        Assert.Equal(409, tampered.Status);
        Assert.Equal("urn:federatedfunctions:problem:checkpoint-integrity", Assert.IsType<ProblemDocument>(tampered.Body).Type);
        Assert.Equal(200, (await h.Api.ModelAsync(h.Client, "api-model", "2", default)).Status);
    }

    [Fact]
    public async Task AnalysesListAsync_ListsAnalysesOnly_AndRefusesBadQueriesAsTheRunsListDoes()
    {
        await using var h = await ApiHarness.StartAsync();
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("api-list-run", rounds: 1))).Status);
        Assert.Equal(202, (await h.StartAnalysisAsync(ApiHarness.AnalysisSpecJson("api-list-analysis"))).Status);
        await h.WaitAsync("api-list-run");
        await h.WaitAsync("api-list-analysis");

        var page = Assert.IsType<AnalysisPage>((await h.Analyses.ListAsync(h.Client, null, null, null, default)).Body);
        Assert.Equal(["api-list-analysis"], page.Analyses.Select(a => a.AnalysisId));
        Assert.Equal("Completed", page.Analyses[0].RuntimeStatus);
        var runs = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, null, null, null, default)).Body);
        Assert.Equal(["api-list-run"], runs.Runs.Select(r => r.RunId));
        Assert.Empty(Assert.IsType<AnalysisPage>((await h.Analyses.ListAsync(h.Client, "Running", null, null, default)).Body).Analyses);

        foreach (var (status, size, token, path) in new (string?, string?, string?, string)[] { ("Done", null, null, "query.status"), (null, "0", null, "query.pageSize"), (null, null, "garbage", "query.continuationToken") })
        {
            var refused = await h.Analyses.ListAsync(h.Client, status, size, token, default);
            Assert.Equal(400, refused.Status);
            Assert.Equal(path, Assert.IsType<ProblemDocument>(refused.Body).Errors![0].Path);
        }
    }

    [Fact]
    public void DashboardPage_InlinesItsScriptAndStyle_AndItsPolicyAllowsExactlyThose()
    {
        var response = DashboardPage.Response();
        var body = response.Encode();
        Assert.Equal("text/html; charset=utf-8", body.ContentType);
        var html = Encoding.UTF8.GetString(body.Bytes.Span);
        var csp = body.Headers.Single(h => h.Key == "Content-Security-Policy").Value;

        var script = ScriptElement().Match(html);
        var style = StyleElement().Match(html);
        Assert.True(script.Success && style.Success);
        Assert.Contains($"script-src 'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(script.Groups[1].Value)))}'", csp, StringComparison.Ordinal);
        Assert.Contains($"style-src 'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(style.Groups[1].Value)))}'", csp, StringComparison.Ordinal);
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("/*SCRIPT*/", html, StringComparison.Ordinal);

        // Nothing is fetched from anywhere but the page's own origin: no CDN, no absolute URL in the markup or the script
        // (the SVG namespace is a name, not a fetch).
        Assert.DoesNotMatch(AbsoluteUrl(), html.Replace("\"http://www.w3.org/2000/svg\"", string.Empty, StringComparison.Ordinal));
    }

    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex ScriptElement();

    [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
    private static partial Regex StyleElement();

    [GeneratedRegex("(src|href)=\"(https?:)?//|https?://[a-z]", RegexOptions.IgnoreCase)]
    private static partial Regex AbsoluteUrl();
}
