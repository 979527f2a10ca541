using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Compute.AzureMl;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Tests;

/// <summary>
/// <c>fl silo onboard</c>'s checks against real storage (Azurite), with grants as SAS tokens: each check passes when the
/// grant is what the permission matrix says, and each misgrant is reported by its check's name.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class SiloOnboardingTests(AzuriteFixture azurite)
{
    private const string Read = "rl", ReadWrite = "racwdl";

    private async Task<(BlobContainerClient Data, BlobContainerClient Outbox)> SiloAsync(string id)
    {
        var data = azurite.Blobs.GetBlobContainerClient(id + "-data");
        var outbox = azurite.Blobs.GetBlobContainerClient(id + "-outbox");
        await data.CreateIfNotExistsAsync();
        await outbox.CreateIfNotExistsAsync();
        await data.GetBlobClient("train.csv").UploadAsync(BinaryData.FromString("x,y\n1,0\n"), overwrite: true);
        return (data, outbox);
    }

    private static string Sas(BlobContainerClient container, string permissions)
    {
        var builder = new BlobSasBuilder { BlobContainerName = container.Name, Resource = "c", ExpiresOn = DateTimeOffset.UtcNow.AddHours(1) };
        builder.SetPermissions(permissions);
        return container.GenerateSasUri(builder).Query.TrimStart('?');
    }

    private SiloEndpoint Entry(BlobContainerClient data, BlobContainerClient outbox, BlobAccess? reader) => new()
    {
        BlobServiceUri = azurite.Blobs.Uri.AbsoluteUri,
        Container = data.Name,
        OutboxContainer = outbox.Name,
        OutboxReader = reader,
        Compute = new SiloComputeOptions { Kind = SiloComputeKinds.Process, CredentialFile = "/silo/credentials.json" },
    };

    private static SiloOnboarding Onboarding(string id, SiloEndpoint entry)
    {
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = { [id] = entry } }));
        var process = new ProcessSiloCompute(registry, Options.Create(new ProcessComputeOptions { Runner = ["fl"] }));
        var azureMl = new AzureMlSiloCompute(registry, new AzureMlJobsClient(new Uri("https://arm.invalid"), new Azure.Identity.DefaultAzureCredential()));
        var local = new LocalSiloCompute(registry, new InMemoryCheckpointStore(new InMemoryBlobs()), new SiloProtocol(new SiloDataCache()));
        return new SiloOnboarding(registry, new SiloCatalog(registry, [local, process, azureMl]));
    }

    private static SiloRunnerCredentials SiloAccess(BlobContainerClient data, string dataPermissions, BlobContainerClient outbox) => new(
        new SiloCredentialFile
        {
            Containers =
            [
                new ContainerCredential { Uri = data.Uri.AbsoluteUri, Credential = SiloCredentialKind.Sas, SasToken = Sas(data, dataPermissions) },
                new ContainerCredential { Uri = outbox.Uri.AbsoluteUri, Credential = SiloCredentialKind.Sas, SasToken = Sas(outbox, ReadWrite) },
            ],
        },
        null);

    private static async Task<List<string>> NamesAsync(BlobContainerClient container)
    {
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
        {
            names.Add(blob.Name);
        }

        return names;
    }

    private static Dictionary<string, bool> Results(IReadOnlyList<OnboardingCheck> checks) => checks.ToDictionary(c => c.Name, c => c.Passed);

    [Fact]
    public async Task CheckAsync_TheOrchestratorReadsTheOutboxOnly_EveryOrchestratorCheckPasses()
    {
        var (data, outbox) = await SiloAsync("onb-good");
        var checks = await Onboarding("onb-good", Entry(data, outbox, new BlobAccess { Credential = SiloCredentialKind.Sas, SasToken = Sas(outbox, Read) })).CheckAsync("onb-good", null, default);

        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Name}: {c.Detail}"));
        Assert.Equal(["registry-entry", "orchestrator-own-grant", "orchestrator-reads-outbox", "orchestrator-cannot-write-outbox", "orchestrator-cannot-read-data"], checks.Select(c => c.Name));
        Assert.Empty(await NamesAsync(outbox));
    }

    [Fact]
    public async Task CheckAsync_OrchestratorGrantsBeyondTheMatrix_AreEachReportedByName()
    {
        var (data, outbox) = await SiloAsync("onb-wide");
        var writes = await Onboarding("onb-wide", Entry(data, outbox, new BlobAccess { Credential = SiloCredentialKind.Sas, SasToken = Sas(outbox, ReadWrite) })).CheckAsync("onb-wide", null, default);
        Assert.Equal(["orchestrator-cannot-write-outbox"], writes.Where(c => !c.Passed).Select(c => c.Name));

        var account = await Onboarding("onb-wide", Entry(data, outbox, new BlobAccess { Credential = SiloCredentialKind.ConnectionString, ConnectionString = azurite.ConnectionString })).CheckAsync("onb-wide", null, default);
        Assert.Equal(["orchestrator-cannot-write-outbox", "orchestrator-cannot-read-data"], account.Where(c => !c.Passed).Select(c => c.Name));
        Assert.Contains("forbids", account.Single(c => c.Name == "orchestrator-cannot-read-data").Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_TheSilosOwnAccess_ReadsDataWritesPrivateAndOutbox_AndAContainerWideWriteIsReported()
    {
        var (data, outbox) = await SiloAsync("onb-silo");
        var onboarding = Onboarding("onb-silo", Entry(data, outbox, new BlobAccess { Credential = SiloCredentialKind.Sas, SasToken = Sas(outbox, Read) }));

        // A container SAS cannot be limited to private/ (an ABAC condition on a role can): read-only misses the private
        // area, read-write reaches beyond it. Each is reported by name.
        var readOnly = Results(await onboarding.CheckAsync("onb-silo", SiloAccess(data, Read, outbox), default));
        Assert.True(readOnly["silo-reads-data"] && readOnly["silo-writes-outbox"] && readOnly["silo-cannot-write-data"]);
        Assert.False(readOnly["silo-writes-private"]);

        var readWrite = Results(await onboarding.CheckAsync("onb-silo", SiloAccess(data, ReadWrite, outbox), default));
        Assert.True(readWrite["silo-reads-data"] && readWrite["silo-writes-private"] && readWrite["silo-writes-outbox"]);
        Assert.False(readWrite["silo-cannot-write-data"]);

        // The probes were deleted: only the silo's own file is left.
        Assert.Equal(["train.csv"], await NamesAsync(data));
        Assert.Empty(await NamesAsync(outbox));
    }

    [Fact]
    public async Task CheckAsync_AnIncompleteEntry_IsReportedAndNothingElseIsTried()
    {
        var (data, outbox) = await SiloAsync("onb-bad");
        var entry = Entry(data, outbox, null);
        var checks = await Onboarding("onb-bad", entry).CheckAsync("onb-bad", null, default);

        var check = Assert.Single(checks);
        Assert.Equal("registry-entry", check.Name);
        Assert.False(check.Passed);
        Assert.Contains("'OutboxReader' is required", check.Detail, StringComparison.Ordinal);
    }
}
