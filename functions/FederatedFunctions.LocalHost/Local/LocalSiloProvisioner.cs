using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;

namespace FederatedFunctions.LocalHost.Local;

/// <summary>A simulated silo: the orchestrator's registry entry for it, and the silo's own credential file.</summary>
/// <param name="Id">The silo.</param>
/// <param name="Entry">What the orchestrator's registry holds: containers, its read-only outbox SAS, the compute, and the silo's SAS only for the <c>local</c> compute.</param>
/// <param name="Credentials">What only the silo (its runner) holds: SAS tokens on its data and outbox containers, and read access to the orchestrator's checkpoints.</param>
public sealed record ProvisionedSilo(string Id, SiloEndpoint Entry, SiloCredentialFile Credentials);

/// <summary>Creates simulated silos in one storage account: a data and an outbox container each, and SAS tokens scoped to one container each.</summary>
/// <remarks>
/// <para>For eyes-on simulation on one machine (Azurite, or a test account with shared keys). The silo's own tokens grant
/// read, list, create, write and add on its own two containers only, so silo A's credential cannot list or read silo B's;
/// the orchestrator's token on a silo's outbox grants read and list only, and it gets none on the data container.</para>
/// <para>With the <c>local</c> compute the registry entry carries the silo's tokens too (the orchestrator's process trains).
/// With <c>process</c> it carries none: they are in the silo's credential file, which only the silo runner opens.</para>
/// </remarks>
public static class LocalSiloProvisioner
{
    /// <summary>Permissions a silo's own credential gets on each of its two containers.</summary>
    public const BlobContainerSasPermissions SiloPermissions =
        BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List | BlobContainerSasPermissions.Create
        | BlobContainerSasPermissions.Write | BlobContainerSasPermissions.Add;

    /// <summary>Permissions the orchestrator gets on a silo's outbox.</summary>
    public const BlobContainerSasPermissions ReaderPermissions = BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List;

    /// <summary>The checkpoint container a silo runner may read (the spec default).</summary>
    public const string CheckpointContainer = "checkpoints";

    /// <summary>The outbox container of a silo: <c>{id}-outbox</c>, shortened with a hash when that passes the 63-character limit.</summary>
    public static string OutboxContainerName(string siloId)
    {
        ArgumentNullException.ThrowIfNull(siloId);
        return siloId.Length <= 56 ? siloId + "-outbox" : $"{siloId[..49].TrimEnd('-')}-{Hashing.Sha256Hex(System.Text.Encoding.UTF8.GetBytes(siloId))[..8]}";
    }

    /// <summary>Creates each silo's containers and returns its registry entry and credential file.</summary>
    /// <param name="account">A client authenticated with the account's shared key.</param>
    /// <param name="siloIds">Silo ids; each becomes a data container of the same name and an outbox container.</param>
    /// <param name="lifetime">How long the SAS tokens stay valid.</param>
    /// <param name="compute">The registry entry's compute kind: <c>local</c> or <c>process</c>.</param>
    /// <param name="credentialFile">Where each silo's credential file goes, for a <c>process</c> compute entry to name.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<IReadOnlyDictionary<string, ProvisionedSilo>> ProvisionAsync(
        BlobServiceClient account, IReadOnlyList<string> siloIds, TimeSpan lifetime, string compute = SiloComputeKinds.Local, Func<string, string>? credentialFile = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(account);
        ArgumentNullException.ThrowIfNull(siloIds);
        if (compute is not (SiloComputeKinds.Local or SiloComputeKinds.Process))
        {
            throw new ArgumentException($"Local silos run on the 'local' or 'process' compute; got '{compute}'.", nameof(compute));
        }

        var expires = DateTimeOffset.UtcNow.Add(lifetime);
        var checkpoints = account.GetBlobContainerClient(CheckpointContainer);
        await checkpoints.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var silos = new Dictionary<string, ProvisionedSilo>(StringComparer.Ordinal);
        foreach (var id in siloIds)
        {
            if (!RunSpecValidator.IsValidSiloId(id))
            {
                throw new ArgumentException($"'{id}' is not a valid silo id.", nameof(siloIds));
            }

            var data = account.GetBlobContainerClient(id);
            var outbox = account.GetBlobContainerClient(OutboxContainerName(id));
            await data.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            await outbox.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            if (!data.CanGenerateSasUri)
            {
                throw new InvalidOperationException("Local silos need an account client with a shared key to mint container SAS tokens.");
            }

            var dataSas = Sas(data, SiloPermissions, expires);
            var outboxSas = Sas(outbox, SiloPermissions, expires);
            var credentials = new SiloCredentialFile
            {
                SiloId = id,
                Containers =
                [
                    new ContainerCredential { Uri = data.Uri.AbsoluteUri, Credential = SiloCredentialKind.Sas, SasToken = dataSas },
                    new ContainerCredential { Uri = outbox.Uri.AbsoluteUri, Credential = SiloCredentialKind.Sas, SasToken = outboxSas },
                    new ContainerCredential { Uri = checkpoints.Uri.AbsoluteUri, Credential = SiloCredentialKind.Sas, SasToken = Sas(checkpoints, BlobContainerSasPermissions.Read, expires) },
                ],
            };
            var local = compute == SiloComputeKinds.Local;
            var entry = new SiloEndpoint
            {
                BlobServiceUri = account.Uri.AbsoluteUri.TrimEnd('/'),
                Container = id,
                OutboxContainer = outbox.Name,
                Credential = SiloCredentialKind.Sas,
                SasToken = local ? dataSas : null,
                OutboxSasToken = local ? outboxSas : null,
                OutboxReader = new BlobAccess { Credential = SiloCredentialKind.Sas, SasToken = Sas(outbox, ReaderPermissions, expires) },
                Compute = new SiloComputeOptions { Kind = compute, CredentialFile = local ? null : credentialFile?.Invoke(id) },
            };
            silos[id] = new ProvisionedSilo(id, entry, credentials);
        }

        return silos;
    }

    /// <summary>Writes a dataset's splits into its silo's data container, with that silo's own credential, as <c>data/train.{ext}</c> and <c>data/test.{ext}</c>.</summary>
    /// <param name="silo">The silo, as provisioned.</param>
    /// <param name="data">The silo's dataset; the label column is written as <c>label</c> (the array formats' labels are <c>y</c>).</param>
    /// <param name="format"><c>csv</c>, <c>parquet</c>, <c>npz</c> or <c>safetensors</c>; the extension is the format's name.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="ArgumentException">Another format (an image folder needs images).</exception>
    public static async Task WriteSplitsAsync(ProvisionedSilo silo, SiloDataset data, string format = DataFormats.Csv, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(data);
        if (format is not (DataFormats.Csv or DataFormats.Parquet or DataFormats.Npz or DataFormats.Safetensors))
        {
            throw new ArgumentException($"Synthetic splits are written as csv, parquet, npz or safetensors, not '{format}'.", nameof(format));
        }

        var container = DataContainer(silo);
        foreach (var (split, table) in new[] { ("train", data.Train), ("test", data.Test) })
        {
            using var ms = new MemoryStream();
            switch (format)
            {
                case DataFormats.Parquet:
                    await TabularWriter.WriteParquetAsync(ms, table, "label", cancellationToken).ConfigureAwait(false);
                    break;
                case DataFormats.Npz:
                    ms.Write(TensorDataWriter.ToNpz(table));
                    break;
                case DataFormats.Safetensors:
                    ms.Write(TensorDataWriter.ToSafetensors(table));
                    break;
                default:
                    await TabularWriter.WriteCsvAsync(ms, table, "label", cancellationToken).ConfigureAwait(false);
                    break;
            }

            ms.Position = 0;
            await container.GetBlobClient($"data/{split}.{format}").UploadAsync(ms, overwrite: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The silo's data container with the silo's own credential (from its credential file).</summary>
    public static BlobContainerClient DataContainer(ProvisionedSilo silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        return new SiloRunnerCredentials(silo.Credentials, null).Container(SiloRegistry.ContainerUri(silo.Id, silo.Entry, silo.Entry.Container));
    }

    /// <summary>The silo's outbox container with the silo's own credential (from its credential file).</summary>
    public static BlobContainerClient OutboxContainer(ProvisionedSilo silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        return new SiloRunnerCredentials(silo.Credentials, null).Container(SiloRegistry.ContainerUri(silo.Id, silo.Entry, silo.Entry.OutboxContainerName));
    }

    /// <summary>Every SAS token minted for a silo: its own, and the orchestrator's on its outbox.</summary>
    public static IEnumerable<string> SasTokens(ProvisionedSilo silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        return silo.Credentials.Containers.Select(c => c.SasToken).Append(silo.Entry.OutboxReader?.SasToken).OfType<string>();
    }

    /// <summary>Host configuration entries (<c>Silos:{id}:…</c>, as <see cref="SiloRegistryOptions"/> binds them) for provisioned silos.</summary>
    public static Dictionary<string, string?> ToSettings(IReadOnlyDictionary<string, ProvisionedSilo> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (id, silo) in silos)
        {
            var e = silo.Entry;
            settings[$"Silos:{id}:BlobServiceUri"] = e.BlobServiceUri;
            settings[$"Silos:{id}:Container"] = e.Container;
            settings[$"Silos:{id}:OutboxContainer"] = e.OutboxContainer;
            settings[$"Silos:{id}:Credential"] = e.Credential.ToString();
            settings[$"Silos:{id}:SasToken"] = e.SasToken;
            settings[$"Silos:{id}:OutboxSasToken"] = e.OutboxSasToken;
            settings[$"Silos:{id}:OutboxReader:Credential"] = e.OutboxReader?.Credential.ToString();
            settings[$"Silos:{id}:OutboxReader:SasToken"] = e.OutboxReader?.SasToken;
            settings[$"Silos:{id}:Compute:Kind"] = e.Compute.Kind;
            settings[$"Silos:{id}:Compute:CredentialFile"] = e.Compute.CredentialFile;
        }

        return settings;
    }

    private static string Sas(BlobContainerClient container, BlobContainerSasPermissions permissions, DateTimeOffset expires) =>
        container.GenerateSasUri(permissions, expires).Query.TrimStart('?');
}
