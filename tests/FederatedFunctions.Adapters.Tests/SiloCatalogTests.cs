using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Compute.AzureMl;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Tests;

/// <summary>The silo catalog: each compute kind's placement, trainer and validation, from registry entries.</summary>
public sealed class SiloCatalogTests
{
    private static readonly string Digest = new('9', 64);

    private static SiloEndpoint Entry(string kind, Action<SiloEndpoint>? change = null)
    {
        var entry = new SiloEndpoint
        {
            BlobServiceUri = "https://silo.blob.core.windows.net",
            Container = "data",
            OutboxContainer = "outbox",
            OutboxReader = new BlobAccess { Credential = SiloCredentialKind.ManagedIdentity },
            Compute = new SiloComputeOptions { Kind = kind },
        };
        if (kind == SiloComputeKinds.Local)
        {
            entry.Credential = SiloCredentialKind.Sas;
            entry.SasToken = "sv=x";
        }
        else if (kind == SiloComputeKinds.Process)
        {
            entry.Compute.CredentialFile = "/secure/silo.json";
        }
        else
        {
            entry.Compute.AzureMl = new AzureMlComputeOptions
            {
                SubscriptionId = "sub", ResourceGroup = "rg", Workspace = "contoso-fl", Compute = "cluster",
                IdentityClientId = Guid.NewGuid().ToString(), Environment = "azureml:runner:1", ImageDigest = Digest,
            };
        }

        change?.Invoke(entry);
        return entry;
    }

    private static SiloCatalog Catalog(params (string Id, SiloEndpoint Entry)[] entries)
    {
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = entries.ToDictionary(e => e.Id, e => e.Entry) }));
        var store = new InMemoryCheckpointStore(new InMemoryBlobs());
        var process = new ProcessSiloCompute(registry, Options.Create(new ProcessComputeOptions { Runner = ["fl"] }));
        var azureMl = new AzureMlSiloCompute(registry, new AzureMlJobsClient(new Uri("https://arm.invalid"), new Azure.Identity.DefaultAzureCredential()));
        return new SiloCatalog(registry, [new LocalSiloCompute(registry, store, new SiloProtocol(new SiloDataCache())), process, azureMl]);
    }

    [Fact]
    public void Placement_EachKind_HasItsInlinenessAndDefaultPolling()
    {
        var catalog = Catalog(("a", Entry(SiloComputeKinds.Local)), ("b", Entry(SiloComputeKinds.Process)), ("c", Entry(SiloComputeKinds.AzureMl)), ("d", Entry(SiloComputeKinds.AzureMl, e => e.Compute.PollSeconds = 600)));
        Assert.Equal(("local", true, 1), (catalog.Placement("a").Kind, catalog.Placement("a").Inline, catalog.Placement("a").PollSeconds));
        Assert.Equal(("process", false, 1), (catalog.Placement("b").Kind, catalog.Placement("b").Inline, catalog.Placement("b").PollSeconds));
        Assert.Equal(("azureml", false, 60), (catalog.Placement("c").Kind, catalog.Placement("c").Inline, catalog.Placement("c").PollSeconds));
        Assert.Equal(600, catalog.Placement("d").PollSeconds);
    }

    [Fact]
    public void Trainer_EachKind_IsWhatItRuns()
    {
        var catalog = Catalog(("a", Entry(SiloComputeKinds.Local)), ("b", Entry(SiloComputeKinds.Process)), ("c", Entry(SiloComputeKinds.AzureMl)));
        Assert.Equal(LocalTrainerIdentity.Value, catalog.Trainer("a"));
        Assert.Equal(LocalTrainerIdentity.Value, catalog.Trainer("b"));
        Assert.Equal(new Core.Silos.TrainerIdentity("azureml-environment:azureml:runner:1", Digest), catalog.Trainer("c"));
    }

    [Theory]
    [InlineData("kind", "'Compute:Kind' is 'docker'")]
    [InlineData("process-file", "'Compute:CredentialFile' is required")]
    [InlineData("process-secret", "remove 'SasToken'")]
    [InlineData("azureml-missing", "'Compute:AzureMl' is required")]
    [InlineData("azureml-workspace", "'Compute:AzureMl:Workspace'")]
    [InlineData("azureml-identity", "'Compute:AzureMl:IdentityClientId'")]
    [InlineData("azureml-digest", "'Compute:AzureMl:ImageDigest'")]
    [InlineData("azureml-environment", "'Compute:AzureMl:Environment' is required")]
    [InlineData("poll", "'Compute:PollSeconds' must be from 1 to 86400")]
    [InlineData("azureml-tenant", "'Compute:AzureMl:TenantId' and 'Compute:AzureMl:ApplicationClientId' go together")]
    public void Placement_AnUnusableEntry_IsRefusedNamingTheField(string fault, string expected)
    {
        var entry = fault switch
        {
            "kind" => Entry(SiloComputeKinds.Process, e => e.Compute.Kind = "docker"),
            "process-file" => Entry(SiloComputeKinds.Process, e => e.Compute.CredentialFile = null),
            "process-secret" => Entry(SiloComputeKinds.Process, e => e.SasToken = "sv=leak"),
            "azureml-missing" => Entry(SiloComputeKinds.AzureMl, e => e.Compute.AzureMl = null),
            "azureml-workspace" => Entry(SiloComputeKinds.AzureMl, e => e.Compute.AzureMl!.Workspace = "a b"),
            "azureml-identity" => Entry(SiloComputeKinds.AzureMl, e => e.Compute.AzureMl!.IdentityClientId = "not-a-guid"),
            "azureml-digest" => Entry(SiloComputeKinds.AzureMl, e => e.Compute.AzureMl!.ImageDigest = "sha256:abc"),
            "azureml-environment" => Entry(SiloComputeKinds.AzureMl, e => e.Compute.AzureMl!.Environment = " "),
            "azureml-tenant" => Entry(SiloComputeKinds.AzureMl, e => e.Compute.AzureMl!.TenantId = Guid.NewGuid().ToString()),
            _ => Entry(SiloComputeKinds.Process, e => e.Compute.PollSeconds = 0),
        };
        var ex = Assert.Throws<SiloRegistryException>(() => Catalog(("s", entry)).Placement("s"));
        Assert.Contains("Silo 's'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "app", "mi", "'TenantId' must be a GUID")]
    [InlineData("tenant", null, "mi", "'ApplicationClientId' must be a GUID")]
    [InlineData("tenant", "app", null, "'ManagedIdentityClientId' must be a GUID")]
    public void OutboxReader_FederatedApplicationWithoutItsIds_IsRefusedNamingTheField(string? tenant, string? app, string? mi, string expected)
    {
        string? Id(string? v) => v is null ? null : Guid.NewGuid().ToString();
        var entry = Entry(SiloComputeKinds.AzureMl, e => e.OutboxReader = new BlobAccess { Credential = SiloCredentialKind.FederatedApplication, TenantId = Id(tenant), ApplicationClientId = Id(app), ManagedIdentityClientId = Id(mi) });
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = { ["s"] = entry } }));
        var ex = Assert.Throws<SiloRegistryException>(() => registry.GetOutboxReader("s"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("silo 's'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutboxReader_FederatedApplication_SignsInToTheSilosTenantAsContosoApplication()
    {
        var entry = Entry(SiloComputeKinds.AzureMl, e => e.OutboxReader = new BlobAccess
        {
            Credential = SiloCredentialKind.FederatedApplication, TenantId = Guid.NewGuid().ToString(), ApplicationClientId = Guid.NewGuid().ToString(), ManagedIdentityClientId = Guid.NewGuid().ToString(),
        });
        var registry = new SiloRegistry(new FixedOptions<SiloRegistryOptions>(new SiloRegistryOptions { Silos = { ["s"] = entry } }));
        var reader = registry.GetOutboxReader("s");
        Assert.Equal("https://silo.blob.core.windows.net/outbox", reader.Uri.AbsoluteUri);
        Assert.False(reader.CanGenerateSasUri);
    }
}
