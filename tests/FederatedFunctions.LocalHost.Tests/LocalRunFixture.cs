using FederatedFunctions.LocalHost.Local;
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
        var settings = LocalSiloProvisioner.ToSettings(entries);
        settings["Storage:ConnectionString"] = azurite.ConnectionString;
        foreach (var d in data)
        {
            await LocalSiloProvisioner.WriteSplitsAsync(entries[d.SiloId], d);
        }

        return (new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), data);
    }
}
