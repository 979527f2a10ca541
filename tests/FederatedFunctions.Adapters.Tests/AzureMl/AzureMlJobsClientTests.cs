using System.Text.Json.Nodes;
using Azure;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Compute.AzureMl;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.TestSupport.AzureMl;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Adapters.Tests.AzureMl;

/// <summary>The ARM client against the emulator: create, read and cancel; throttling, outages and token refresh; the job definition the compute sends.</summary>
public sealed class AzureMlJobsClientTests : IAsyncLifetime
{
    private static readonly AzureMlWorkspace Workspace = new("00000000-1111-2222-3333-444444444444", "rg-contoso-fl", "contoso-fl");
    private AzureMlEmulator emulator = null!;
    private AzureMlJobsClient client = null!;

    public async Task InitializeAsync()
    {
        emulator = await AzureMlEmulator.StartAsync();
        emulator.StatusDelay = TimeSpan.FromMilliseconds(20);
        var options = new AzureMlClientOptions { Transport = emulator.Transport };
        options.Retry.Delay = TimeSpan.FromMilliseconds(50);
        client = new AzureMlJobsClient(emulator.Endpoint, emulator.Credential, options);
    }

    public async Task DisposeAsync() => await emulator.DisposeAsync();

    private static SiloEndpoint Entry() => new()
    {
        BlobServiceUri = "https://silo1data.blob.core.windows.net",
        Container = "silo-1",
        OutboxContainer = "silo-1-outbox",
        OutboxReader = new BlobAccess { Credential = SiloCredentialKind.ManagedIdentity },
        Compute = new SiloComputeOptions
        {
            Kind = SiloComputeKinds.AzureMl,
            AzureMl = new AzureMlComputeOptions
            {
                SubscriptionId = Workspace.SubscriptionId,
                ResourceGroup = Workspace.ResourceGroup,
                Workspace = Workspace.Workspace,
                Compute = "silo-1-cluster",
                IdentityClientId = "6c2b6f0e-4a5b-4f7e-9d3c-1b2a3c4d5e6f",
                IdentityResourceId = "/subscriptions/aaaa/resourceGroups/rg-silo-1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/silo-1-jobs",
                Environment = "azureml:fl-silo-runner:3",
                ImageDigest = new string('a', 64),
                Timeout = "P7D",
            },
        },
    };

    private static SiloJob Job(string run = "aml-run") => SiloJob.First("checkpoints", new SiloStep(Train: new TrainRequest(
        run, 2, "silo-1", new BlobRef("https://contoso.blob.core.windows.net/checkpoints/aml-run/round-00001/model.safetensors", new string('b', 64), 1234),
        new ModelSpec(), new DataSpec(), new TrainingSpec(), 4)));

    private static BlobRef Request(SiloJob job) => new($"https://contoso.blob.core.windows.net/checkpoints/{job.Step.RunId}/jobs/round-00002/{job.Name}.json", new string('c', 64), 321);

    [Fact]
    public async Task Definition_OfATrainingJob_PassesTheOfficialSchemaAndCarriesNoSecret()
    {
        var job = Job();
        var definition = AzureMlSiloCompute.Definition(job, Request(job), Entry(), Workspace);

        Assert.Empty(emulator.ValidateJob(definition));
        var text = definition.ToJsonString();
        Assert.DoesNotContain("sig=", text, StringComparison.Ordinal);
        Assert.DoesNotContain("AccountKey", text, StringComparison.Ordinal);
        var p = definition["properties"]!;
        Assert.Equal("Managed", p["identity"]!["identityType"]!.GetValue<string>());
        Assert.Equal("Direct", p["inputs"]!["data"]!["mode"]!.GetValue<string>());
        Assert.Equal("https://silo1data.blob.core.windows.net/silo-1-outbox", p["outputs"]!["outbox"]!["uri"]!.GetValue<string>());
        Assert.Equal("https://contoso.blob.core.windows.net/checkpoints/aml-run/round-00001/model.safetensors", p["inputs"]!["model"]!["uri"]!.GetValue<string>());
        Assert.Contains("--job ${{inputs.job}}", p["command"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.EndsWith("/computes/silo-1-cluster", p["computeId"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateGetCancel_AJob_WalksTheStatusesAndCreatesItOnce()
    {
        emulator.Faults["stuck-job"] = JobFault.StuckInQueue;
        var job = Job();
        var definition = AzureMlSiloCompute.Definition(job, Request(job), Entry(), Workspace);

        var created = await client.CreateAsync(Workspace, "stuck-job", definition, default);
        Assert.Equal("NotStarted", created.Status);
        var again = await client.CreateAsync(Workspace, "stuck-job", definition, default);
        Assert.Equal("stuck-job", again.Name);
        Assert.Equal(["stuck-job"], emulator.Created);

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await client.GetAsync(Workspace, "stuck-job", default))!.Status != "Queued")
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(20);
        }

        Assert.True(await client.CancelAsync(Workspace, "stuck-job", default));
        Assert.Equal("Canceled", (await client.GetAsync(Workspace, "stuck-job", default))!.Status);
        Assert.Equal(["NotStarted", "Starting", "Preparing", "Queued", "CancelRequested", "Canceled"], emulator.History("stuck-job"));
        Assert.Null(await client.GetAsync(Workspace, "no-such-job", default));
        Assert.False(await client.CancelAsync(Workspace, "no-such-job", default));
    }

    [Fact]
    public async Task Requests_ThrottledWithRetryAfterOrUnavailable_AreRetriedUntilTheyPass()
    {
        emulator.ThrottleNext(2);
        Assert.Null(await client.GetAsync(Workspace, "after-throttling", default));
        emulator.UnavailableNext(2);
        Assert.Null(await client.GetAsync(Workspace, "after-outage", default));

        var statuses = emulator.Requests.Select(r => r.Status).ToArray();
        Assert.Equal([429, 429, 404, 503, 503, 404], statuses);
    }

    [Fact]
    public async Task Requests_MoreFailuresThanRetries_SurfaceArmsErrorCode()
    {
        emulator.UnavailableNext(20);
        var ex = await Assert.ThrowsAsync<RequestFailedException>(() => client.GetAsync(Workspace, "down", default));
        Assert.Equal(503, ex.Status);
        Assert.Equal("ServiceUnavailable", ex.ErrorCode);
    }

    [Fact]
    public async Task Tokens_ShortLived_AreRefreshedBeforeTheyExpire()
    {
        // Each request after the first carries the token the one before it refreshed, with lifetime − delay (1.6 s) to
        // spare. With 2 s and 1.2 s, a suite run on two busy cores once took longer than the 0.8 s left between the
        // client's check of its token and the emulator's, and got a 401.
        emulator.Credential.Lifetime = TimeSpan.FromSeconds(4);
        var shortClient = new AzureMlJobsClient(emulator.Endpoint, emulator.Credential, new AzureMlClientOptions { Transport = emulator.Transport });
        for (var i = 0; i < 4; i++)
        {
            Assert.Null(await shortClient.GetAsync(Workspace, "refresh-" + i, default));
            await Task.Delay(TimeSpan.FromSeconds(2.4));
        }

        Assert.DoesNotContain(emulator.Requests, r => r.Status == 401);
        Assert.True(emulator.Requests.Select(r => r.Token).Distinct().Count() >= 2, "the client never refreshed its token");
    }

    [Fact]
    public async Task Requests_WithoutAValidToken_AreRefusedWith401()
    {
        var anonymous = new AzureMlJobsClient(emulator.Endpoint, new Azure.Identity.ClientSecretCredential("t", "c", "s"), new AzureMlClientOptions { Transport = emulator.Transport, Retry = { MaxRetries = 0 } });
        await Assert.ThrowsAnyAsync<Exception>(() => anonymous.GetAsync(Workspace, "x", default));
        var forged = new AzureMlJobsClient(emulator.Endpoint, new FixedToken("emu.1.1.https://management.azure.com/.default"), new AzureMlClientOptions { Transport = emulator.Transport, Retry = { MaxRetries = 0 } });
        var ex = await Assert.ThrowsAsync<RequestFailedException>(() => forged.GetAsync(Workspace, "x", default));
        Assert.Equal((401, "ExpiredAuthenticationToken"), (ex.Status, ex.ErrorCode));
    }

    [Fact]
    public async Task Create_ADefinitionTheServiceRefuses_FailsWithTheViolations()
    {
        var job = Job();
        var definition = AzureMlSiloCompute.Definition(job, Request(job), Entry(), Workspace);
        definition["properties"]!.AsObject().Remove("environmentId");
        var ex = await Assert.ThrowsAsync<RequestFailedException>(() => client.CreateAsync(Workspace, "bad-job", definition, default));
        Assert.Equal((400, "UserError"), (ex.Status, ex.ErrorCode));
        await Assert.ThrowsAsync<RequestFailedException>(() => client.GetAsync(new AzureMlWorkspace("s", "rg", "x"), "bad name!", default));
    }

    [Theory]
    [InlineData("NotStarted", SiloJobState.Queued)]
    [InlineData("Starting", SiloJobState.Queued)]
    [InlineData("Provisioning", SiloJobState.Queued)]
    [InlineData("Preparing", SiloJobState.Queued)]
    [InlineData("Queued", SiloJobState.Queued)]
    [InlineData("Running", SiloJobState.Running)]
    [InlineData("Finalizing", SiloJobState.Running)]
    [InlineData("CancelRequested", SiloJobState.Running)]
    [InlineData("Completed", SiloJobState.Completed)]
    [InlineData("Failed", SiloJobState.Failed)]
    [InlineData("Canceled", SiloJobState.Canceled)]
    [InlineData("NotResponding", SiloJobState.Unknown)]
    [InlineData("Paused", SiloJobState.Unknown)]
    [InlineData("Unknown", SiloJobState.Unknown)]
    [InlineData("SomethingNew", SiloJobState.Unknown)]
    public void Map_EveryAzureMlStatus_HasAnOrchestratorState(string status, SiloJobState expected) =>
        Assert.Equal(expected, AzureMlSiloCompute.Map(status));

    private sealed class FixedToken(string token) : Azure.Core.TokenCredential
    {
        public override Azure.Core.AccessToken GetToken(Azure.Core.TokenRequestContext requestContext, CancellationToken cancellationToken) => new(token, DateTimeOffset.UtcNow.AddHours(1));

        public override ValueTask<Azure.Core.AccessToken> GetTokenAsync(Azure.Core.TokenRequestContext requestContext, CancellationToken cancellationToken) => ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }
}
