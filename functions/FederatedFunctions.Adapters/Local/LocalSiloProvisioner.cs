using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Adapters.Local;

/// <summary>Creates simulated silos in one storage account: a container each, and a SAS scoped to that container alone.</summary>
/// <remarks>
/// For eyes-on simulation on one machine (Azurite, or a test account with shared keys). Each SAS grants
/// read, list, create, write and add on its own container only, so silo A's credential cannot list or read
/// silo B's container; the adapters then use those SAS tokens exactly as they would use a real provider's.
/// </remarks>
public static class LocalSiloProvisioner
{
    /// <summary>Permissions a silo's own credential gets on its own container.</summary>
    public const BlobContainerSasPermissions SiloPermissions =
        BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List | BlobContainerSasPermissions.Create
        | BlobContainerSasPermissions.Write | BlobContainerSasPermissions.Add;

    /// <summary>Creates the container of each silo and returns registry entries with container-scoped SAS tokens.</summary>
    /// <param name="account">A client authenticated with the account's shared key.</param>
    /// <param name="siloIds">Silo ids; each becomes a container of the same name.</param>
    /// <param name="lifetime">How long the SAS tokens stay valid.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<IReadOnlyDictionary<string, SiloEndpoint>> ProvisionAsync(
        BlobServiceClient account, IReadOnlyList<string> siloIds, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(account);
        var entries = new Dictionary<string, SiloEndpoint>(StringComparer.Ordinal);
        foreach (var id in siloIds)
        {
            if (!RunSpecValidator.IsValidSiloId(id))
            {
                throw new ArgumentException($"'{id}' is not a valid silo id.", nameof(siloIds));
            }

            var container = account.GetBlobContainerClient(id);
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            if (!container.CanGenerateSasUri)
            {
                throw new InvalidOperationException("Local silos need an account client with a shared key to mint container SAS tokens.");
            }

            var sas = container.GenerateSasUri(SiloPermissions, DateTimeOffset.UtcNow.Add(lifetime));
            entries[id] = new SiloEndpoint
            {
                BlobServiceUri = account.Uri.AbsoluteUri.TrimEnd('/'),
                Container = id,
                Credential = SiloCredentialKind.Sas,
                SasToken = sas.Query.TrimStart('?'),
            };
        }

        return entries;
    }

    /// <summary>Writes a dataset's splits into its silo's container, with that silo's own credential, as <c>data/train.{ext}</c> and <c>data/test.{ext}</c>.</summary>
    /// <param name="entry">The silo's registry entry.</param>
    /// <param name="data">The silo's dataset; the label column is written as <c>label</c>.</param>
    /// <param name="format"><c>csv</c> or <c>parquet</c>.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task WriteSplitsAsync(SiloEndpoint entry, SiloDataset data, string format = DataFormats.Csv, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var container = SiloRegistry.Create(data.SiloId, entry);
        var ext = format == DataFormats.Parquet ? "parquet" : "csv";
        foreach (var (split, table) in new[] { ("train", data.Train), ("test", data.Test) })
        {
            using var ms = new MemoryStream();
            if (format == DataFormats.Parquet)
            {
                await TabularWriter.WriteParquetAsync(ms, table, "label", cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await TabularWriter.WriteCsvAsync(ms, table, "label", cancellationToken).ConfigureAwait(false);
            }

            ms.Position = 0;
            await container.GetBlobClient($"data/{split}.{ext}").UploadAsync(ms, overwrite: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Host configuration entries (<c>Silos:{id}:…</c>, as <see cref="SiloRegistryOptions"/> binds them) for provisioned silos.</summary>
    public static Dictionary<string, string?> ToSettings(IReadOnlyDictionary<string, SiloEndpoint> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (id, e) in entries)
        {
            settings[$"Silos:{id}:BlobServiceUri"] = e.BlobServiceUri;
            settings[$"Silos:{id}:Container"] = e.Container;
            settings[$"Silos:{id}:Credential"] = e.Credential.ToString();
            settings[$"Silos:{id}:SasToken"] = e.SasToken;
        }

        return settings;
    }
}
