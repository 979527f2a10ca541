using System.Text;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

/// <summary>The requests an outside battery found the API accepting or failing on: each is refused with a problem document that names what is wrong.</summary>
public sealed class RefusedRequestsTests
{
    [Fact]
    public async Task StartAsync_SiloNotInTheRegistry_Returns400NamingItsIndexAndSchedulesNothing()
    {
        await using var h = await ApiHarness.StartAsync();
        var known = ApiHarness.Data.Select(d => d.SiloId).ToArray();
        var json = ApiHarness.SpecJson("typo-run", rounds: 1).Replace($"\"{known[1]}\"", "\"silo-typo\"", StringComparison.Ordinal);

        var response = await h.StartAsync(json);

        Assert.Equal(400, response.Status);
        var problem = Assert.IsType<ProblemDocument>(response.Body);
        var error = Assert.Single(problem.Errors!);
        Assert.Equal("$.silos[1]", error.Path);
        Assert.Equal("not-registered", error.Rule);
        Assert.Contains("silo-typo", error.Message, StringComparison.Ordinal);
        Assert.Null(await h.Client.GetInstanceAsync("typo-run"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("not a media type")]
    public async Task StartFromHttpAsync_BodyNotDeclaredJson_Returns415AndSchedulesNothing(string? contentType)
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.Api.StartFromHttpAsync(h.Client, contentType, Encoding.UTF8.GetBytes(ApiHarness.SpecJson("csrf-run", rounds: 1)), ApiHarness.Urls, default);

        Assert.Equal(415, response.Status);
        Assert.Equal("urn:federatedfunctions:problem:unsupported-media-type", Assert.IsType<ProblemDocument>(response.Body).Type);
        Assert.Null(await h.Client.GetInstanceAsync("csrf-run"));
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("Application/JSON")]
    [InlineData("application/merge-patch+json")]
    public async Task StartFromHttpAsync_JsonContentType_Starts(string contentType)
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.Api.StartFromHttpAsync(h.Client, contentType, Encoding.UTF8.GetBytes(ApiHarness.SpecJson("json-run", rounds: 1)), ApiHarness.Urls, default);
        Assert.Equal(202, response.Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("json-run")).RuntimeStatus);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("v1.")]
    [InlineData("v1.!!!")]
    [InlineData("v2.abc")]
    public async Task ListAsync_ContinuationTokenNotIssuedByTheApi_Returns400NamingIt(string token)
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.Api.ListAsync(h.Client, null, null, token, default);

        Assert.Equal(400, response.Status);
        Assert.Equal("query.continuationToken", Assert.Single(Assert.IsType<ProblemDocument>(response.Body).Errors!).Path);
    }

    [Fact]
    public async Task ListAsync_ContinuationTokenOfThePreviousPage_ReturnsTheNextPage()
    {
        await using var h = await ApiHarness.StartAsync();
        foreach (var id in new[] { "page-a", "page-b", "page-c" })
        {
            Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson(id, rounds: 1))).Status);
            await h.WaitAsync(id);
        }

        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = Assert.IsType<RunPage>((await h.Api.ListAsync(h.Client, null, "2", token, default)).Body);
            seen.AddRange(page.Runs.Select(r => r.RunId));
            token = page.ContinuationToken;
            Assert.True(token is null || token.StartsWith("v1.", StringComparison.Ordinal));
        }
        while (token is not null);

        Assert.Equal(["page-a", "page-b", "page-c"], seen.Order());
    }

    [Theory]
    [InlineData("0", null, "query.pageSize")]
    [InlineData("abc", null, "query.pageSize")]
    [InlineData(null, "Runnning", "query.status")]
    [InlineData(null, "1", "query.status")]
    public async Task ListAsync_BadQueryParameter_Returns400NamingIt(string? pageSize, string? status, string expected)
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.Api.ListAsync(h.Client, status, pageSize, null, default);
        Assert.Equal(400, response.Status);
        Assert.Equal(expected, Assert.Single(Assert.IsType<ProblemDocument>(response.Body).Errors!).Path);
    }

    [Fact]
    public async Task ResumeAsync_BadContainer_Returns400NamingIt()
    {
        await using var h = await ApiHarness.StartAsync();
        var response = await h.Api.ResumeAsync(h.Client, "some-run", "Bad_Container", ApiHarness.Urls, default);
        Assert.Equal(400, response.Status);
        Assert.Equal("query.container", Assert.Single(Assert.IsType<ProblemDocument>(response.Body).Errors!).Path);
    }

    [Fact]
    public async Task ResumeAsync_SiloNoLongerRegistered_Returns409NamingItAndSchedulesNothing()
    {
        await using var h = await ApiHarness.StartAsync();
        h.Backend.TrainDelay = TimeSpan.FromMilliseconds(200);
        Assert.Equal(202, (await h.StartAsync(ApiHarness.SpecJson("gone-silo", rounds: 30))).Status);
        await h.WaitForRoundAsync("gone-silo", 1);
        Assert.Equal(202, (await h.Api.CancelAsync(h.Client, "gone-silo", default)).Status);
        await h.WaitAsync("gone-silo");

        var removed = ApiHarness.Data[0].SiloId;
        var api = new RunsApi(h.Store, new Catalog(ApiHarness.Data.Skip(1).Select(d => d.SiloId)), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<RunsApi>.Instance);
        var response = await api.ResumeAsync(h.Client, "gone-silo", null, ApiHarness.Urls, default);

        Assert.Equal(409, response.Status);
        var error = Assert.Single(Assert.IsType<ProblemDocument>(response.Body).Errors!);
        Assert.Equal("$.silos[0]", error.Path);
        Assert.Contains(removed, error.Message, StringComparison.Ordinal);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await h.Client.GetInstanceAsync("gone-silo"))!.RuntimeStatus);
    }

    private sealed class Catalog(IEnumerable<string> ids) : FederatedFunctions.Workflow.Abstractions.ISiloCatalog
    {
        private readonly HashSet<string> known = [.. ids];

        public bool Contains(string siloId) => known.Contains(siloId);

        public FederatedFunctions.Core.Silos.TrainerIdentity Trainer(string siloId) => FederatedFunctions.Ml.LocalTrainerIdentity.Value;

        public FederatedFunctions.Workflow.Contracts.SiloPlacement Placement(string siloId) => new(siloId, "local", true, 1);

        public FederatedFunctions.Workflow.Abstractions.ISiloCompute Compute(string siloId) => throw new NotSupportedException();
    }
}
