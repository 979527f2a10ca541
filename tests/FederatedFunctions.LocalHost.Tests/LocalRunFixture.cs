using FederatedFunctions.Adapters.Local;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Configuration;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>Provisions silos with synthetic data in the shared Azurite and builds host configuration for them.</summary>
internal static class LocalSilos
{
    public static async Task<(IConfiguration Configuration, IReadOnlyList<SiloDataset> Data)> CreateAsync(AzuriteFixture azurite, string prefix, SyntheticOptions options)
    {
        var data = SyntheticData.Generate(options)
            .Select(d => d with { SiloId = $"{prefix}-{d.SiloId}" })
            .ToArray();
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, data.Select(d => d.SiloId).ToArray(), TimeSpan.FromHours(2));
        var settings = new Dictionary<string, string?> { ["Storage:ConnectionString"] = azurite.ConnectionString };
        foreach (var d in data)
        {
            var e = entries[d.SiloId];
            settings[$"Silos:{d.SiloId}:BlobServiceUri"] = e.BlobServiceUri;
            settings[$"Silos:{d.SiloId}:Container"] = e.Container;
            settings[$"Silos:{d.SiloId}:Credential"] = e.Credential.ToString();
            settings[$"Silos:{d.SiloId}:SasToken"] = e.SasToken;
            var container = SiloRegistry.Create(d.SiloId, e);
            foreach (var (name, table) in new[] { ("data/train.csv", d.Train), ("data/test.csv", d.Test) })
            {
                using var ms = new MemoryStream();
                await TabularWriter.WriteCsvAsync(ms, table, "label");
                ms.Position = 0;
                await container.GetBlobClient(name).UploadAsync(ms, overwrite: true);
            }
        }

        return (new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), data);
    }
}
