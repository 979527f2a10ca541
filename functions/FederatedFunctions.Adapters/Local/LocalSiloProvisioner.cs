using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Specs;

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
}
