using Azure.Storage.Blobs;
using FederatedFunctions.Core.Runs;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>A silo's own credential file: one access per container the silo runner may touch. Only the runner opens it.</summary>
/// <remarks>
/// Used by the <c>process</c> compute (the orchestrator passes the file's path, never its content) and by the local Azure ML
/// emulator, which maps a job's user-assigned identity to such a file. In Azure, an Azure ML job has no file: the runner
/// authenticates as the job's user-assigned identity instead.
/// </remarks>
public sealed class SiloCredentialFile
{
    /// <summary>The silo the credentials belong to.</summary>
    public string? SiloId { get; set; }

    /// <summary>The containers and their access: typically the silo's data and outbox containers, and read access to the orchestrator's checkpoint container.</summary>
    public List<ContainerCredential> Containers { get; set; } = [];
}

/// <summary>The access to one container, by its URI.</summary>
public sealed class ContainerCredential : BlobAccess
{
    /// <summary>The container's URI without query, e.g. <c>https://account.blob.core.windows.net/silo-1</c>.</summary>
    public string Uri { get; set; } = string.Empty;
}

/// <summary>Clients for the containers a silo runner touches: from its credential file, or as the job's managed identity.</summary>
/// <param name="file">The credential file, or null to authenticate as a managed identity.</param>
/// <param name="managedIdentityClientId">The user-assigned identity's client id (Azure ML sets <c>AZURE_CLIENT_ID</c>); null uses the default credential chain.</param>
public sealed class SiloRunnerCredentials(SiloCredentialFile? file, string? managedIdentityClientId)
{
    /// <summary>A client for the container at <paramref name="containerUri"/>.</summary>
    /// <exception cref="SiloRegistryException">The credential file has no access to that container.</exception>
    public BlobContainerClient Container(Uri containerUri)
    {
        ArgumentNullException.ThrowIfNull(containerUri);
        var key = Key(containerUri);
        if (file is not null)
        {
            var access = file.Containers.FirstOrDefault(c => System.Uri.TryCreate(c.Uri, UriKind.Absolute, out var u) && Key(u) == key)
                ?? throw new SiloRegistryException($"The silo's credential file grants nothing on container {containerUri.AbsoluteUri}.");
            return SiloRegistry.ClientFor(containerUri, access, $"credential file entry for {containerUri.AbsoluteUri}");
        }

        var identity = string.IsNullOrWhiteSpace(managedIdentityClientId)
            ? new BlobAccess { Credential = SiloCredentialKind.DefaultAzure }
            : new BlobAccess { Credential = SiloCredentialKind.ManagedIdentity, ManagedIdentityClientId = managedIdentityClientId };
        return SiloRegistry.ClientFor(containerUri, identity, "the job's identity");
    }

    /// <summary>The container of a blob URI, e.g. the checkpoint container of a global model.</summary>
    public static Uri ContainerOf(string blobUri)
    {
        var parts = new BlobUriBuilder(new Uri(blobUri)) { BlobName = string.Empty, Query = string.Empty };
        return parts.ToUri();
    }

    /// <summary>Reads a blob of the orchestrator's storage by reference, with the runner's access to its container, and checks it.</summary>
    public Task<byte[]> ReadOrchestratorBlobAsync(BlobRef blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        return BlobRefChecks.ReadAsync(Container(ContainerOf(blob.Uri)), blob, cancellationToken);
    }

    private static string Key(Uri containerUri)
    {
        var parts = new BlobUriBuilder(containerUri);
        return $"{containerUri.Scheme}://{containerUri.Authority}/{parts.AccountName}/{parts.BlobContainerName}".ToLowerInvariant();
    }
}
