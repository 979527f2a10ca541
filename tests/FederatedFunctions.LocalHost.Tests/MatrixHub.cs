using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Configuration;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>Where the matrix tests run on the local host: their own silos on Azurite, and a task hub of their own on the Azure Storage backend.</summary>
internal static class MatrixHub
{
    /// <summary>
    /// Provisions <paramref name="silos"/> with synthetic splits (3 classes, 8 features) and returns the options of a local
    /// durable host on a new task hub named after <paramref name="hub"/>, configured with those silos and the local trainer approved.
    /// </summary>
    public static async Task<LocalDurableHostOptions> OptionsAsync(AzuriteFixture azurite, IReadOnlyList<string> silos, string hub)
    {
        var data = SyntheticData.Generate(new SyntheticOptions(silos.Count, 3, 8, 60, 30, null, 11)).Select((d, i) => d with { SiloId = silos[i] }).ToArray();
        var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, silos.ToArray(), TimeSpan.FromHours(2));
        foreach (var d in data)
        {
            await LocalSiloProvisioner.WriteSplitsAsync(entries[d.SiloId], d);
        }

        var settings = LocalSiloProvisioner.ToSettings(entries);
        settings["Storage:ConnectionString"] = azurite.ConnectionString;
        var trainer = LocalTrainerIdentity.Value;
        settings["Trust:ApprovedTrainers:0:Id"] = trainer.Id;
        settings["Trust:ApprovedTrainers:0:Sha256"] = trainer.Sha256;
        return new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.ConnectionString,
            TaskHub = hub + Guid.NewGuid().ToString("N")[..6],
            Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
            WorkItemVisibilityTimeout = TimeSpan.FromSeconds(5),
        };
    }
}
