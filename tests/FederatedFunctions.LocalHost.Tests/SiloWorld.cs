using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Compute.AzureMl;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.TestSupport.AzureMl;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// Silos with synthetic data on the shared Azurite, registered three ways: on the <c>local</c> compute (the orchestrator's
/// process holds their credentials), on the <c>process</c> compute (each step a separate silo runner process with only
/// that silo's credential file), and on the <c>azureml</c> compute against the local Azure ML emulator (each step a command
/// job whose identity the emulator maps to that silo's credential file). The same silos and data serve all three.
/// </summary>
internal sealed class SiloWorld : IAsyncDisposable
{
    public const string Subscription = "00000000-1111-2222-3333-444444444444";

    private readonly AzuriteFixture azurite;
    private readonly TempDirectory home = new();

    private SiloWorld(AzuriteFixture azurite, IReadOnlyList<SiloDataset> data, IReadOnlyDictionary<string, ProvisionedSilo> silos, AzureMlEmulator emulator)
    {
        this.azurite = azurite;
        Data = data;
        Silos = silos;
        Emulator = emulator;
    }

    public IReadOnlyList<SiloDataset> Data { get; }

    public IReadOnlyDictionary<string, ProvisionedSilo> Silos { get; }

    public AzureMlEmulator Emulator { get; }

    public string JobsDirectory => Path.Combine(home.Path, "jobs");

    public static async Task<SiloWorld> CreateAsync(AzuriteFixture azurite, string prefix, SyntheticOptions options)
    {
        var data = SyntheticData.Generate(options).Select(d => d with { SiloId = $"{prefix}-{d.SiloId}" }).ToArray();
        var silos = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, data.Select(d => d.SiloId).ToArray(), TimeSpan.FromHours(2));
        foreach (var d in data)
        {
            await LocalSiloProvisioner.WriteSplitsAsync(silos[d.SiloId], d);
        }

        var emulator = await AzureMlEmulator.StartAsync();
        emulator.Runner = Workspace.RunnerCommand;
        emulator.StatusDelay = TimeSpan.FromMilliseconds(50);
        var world = new SiloWorld(azurite, data, silos, emulator);
        foreach (var silo in silos.Values)
        {
            await SiloRegistryFile.WriteCredentialsAsync(world.CredentialFile(silo.Id), silo.Credentials, default);
            emulator.Identities[IdentityClientId(silo.Id)] = world.CredentialFile(silo.Id);
        }

        return world;
    }

    public string CredentialFile(string siloId) => Path.Combine(home.Path, "credentials", siloId + ".json");

    /// <summary>The client id of the user-assigned identity a silo's Azure ML jobs run as: a GUID derived from the silo id.</summary>
    public static string IdentityClientId(string siloId) =>
        new Guid(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.UTF8.GetBytes(siloId))).ToString();

    /// <summary>Host configuration with every silo on <paramref name="kind"/> (and any listed in <paramref name="kinds"/> on theirs).</summary>
    public IConfiguration Configuration(string kind, IReadOnlyDictionary<string, string>? kinds = null, int pollSeconds = 1)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Storage:ConnectionString"] = azurite.ConnectionString,
            ["Compute:Process:JobsDirectory"] = JobsDirectory,
        };
        foreach (var (arg, i) in Workspace.RunnerCommand.Select((a, i) => (a, i)))
        {
            settings[$"Compute:Process:Runner:{i}"] = arg;
        }

        foreach (var (id, silo) in Silos)
        {
            var k = kinds?.GetValueOrDefault(id) ?? kind;
            var e = silo.Entry;
            var p = $"Silos:{id}:";
            settings[p + "BlobServiceUri"] = e.BlobServiceUri;
            settings[p + "Container"] = e.Container;
            settings[p + "OutboxContainer"] = e.OutboxContainer;
            settings[p + "OutboxReader:Credential"] = "Sas";
            settings[p + "OutboxReader:SasToken"] = e.OutboxReader!.SasToken;
            settings[p + "Compute:Kind"] = k;
            settings[p + "Compute:PollSeconds"] = pollSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            switch (k)
            {
                case SiloComputeKinds.Local:
                    settings[p + "Credential"] = "Sas";
                    settings[p + "SasToken"] = e.SasToken;
                    settings[p + "OutboxSasToken"] = e.OutboxSasToken;
                    break;
                case SiloComputeKinds.Process:
                    settings[p + "Compute:CredentialFile"] = CredentialFile(id);
                    break;
                case SiloComputeKinds.AzureMl:
                    var a = p + "Compute:AzureMl:";
                    settings[a + "SubscriptionId"] = Subscription;
                    settings[a + "ResourceGroup"] = "rg-contoso-fl";
                    settings[a + "Workspace"] = "contoso-fl";
                    settings[a + "Compute"] = id + "-cluster";
                    settings[a + "IdentityClientId"] = IdentityClientId(id);
                    settings[a + "IdentityResourceId"] = $"/subscriptions/{Subscription}/resourceGroups/rg-{id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{id}-jobs";
                    settings[a + "Environment"] = "azureml:fl-silo-runner:1";
                    settings[a + "ImageDigest"] = new string('e', 64);
                    break;
            }
        }

        return new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
    }

    /// <summary>Host options on this world's configuration, with the Azure ML client aimed at the emulator.</summary>
    public LocalDurableHostOptions HostOptions(IConfiguration configuration) => new()
    {
        Configuration = configuration,
        ConfigureServices = services => services.AddSingleton(EmulatorClient()),
    };

    public AzureMlJobsClient EmulatorClient()
    {
        var options = new AzureMlClientOptions { Transport = Emulator.Transport };
        options.Retry.Delay = TimeSpan.FromMilliseconds(200);
        return new AzureMlJobsClient(Emulator.Endpoint, Emulator.Credential, options);
    }

    public async ValueTask DisposeAsync()
    {
        await Emulator.DisposeAsync();
        home.Dispose();
    }
}
