using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using FederatedFunctions.Core.Specs;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>How a silo's storage is reached.</summary>
public enum SiloCredentialKind
{
    /// <summary>A SAS token scoped to the silo's container (local simulation, or a provider that issues one).</summary>
    Sas,

    /// <summary>A managed identity (optionally user-assigned, by client id) granted roles on the silo's container.</summary>
    ManagedIdentity,

    /// <summary>The default Azure credential chain (developer sign-in, workload identity, managed identity).</summary>
    DefaultAzure,

    /// <summary>A storage connection string; for Azurite and tests only.</summary>
    ConnectionString,
}

/// <summary>One silo's entry in the registry: where its data lives and how to reach it.</summary>
/// <remarks>
/// Entries are loaded from host configuration (section <c>Silos</c>, keyed by silo id). They contain credentials,
/// so they never enter an orchestration input or output: activities look them up by silo id.
/// </remarks>
public sealed class SiloEndpoint
{
    /// <summary>The silo's blob service endpoint, e.g. <c>https://contosohospital.blob.core.windows.net</c>.</summary>
    public string? BlobServiceUri { get; set; }

    /// <summary>The silo's container; data, outbox and nothing else of other silos.</summary>
    public string Container { get; set; } = string.Empty;

    /// <summary>How to authenticate.</summary>
    public SiloCredentialKind Credential { get; set; } = SiloCredentialKind.ManagedIdentity;

    /// <summary>SAS token (without the leading <c>?</c>) when <see cref="Credential"/> is <see cref="SiloCredentialKind.Sas"/>.</summary>
    public string? SasToken { get; set; }

    /// <summary>Client id of a user-assigned managed identity, when one is used.</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>Connection string when <see cref="Credential"/> is <see cref="SiloCredentialKind.ConnectionString"/>.</summary>
    public string? ConnectionString { get; set; }
}

/// <summary>The silo registry as bound from configuration.</summary>
public sealed class SiloRegistryOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Silos";

    /// <summary>Entries keyed by silo id.</summary>
    public Dictionary<string, SiloEndpoint> Silos { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>A silo id that is not in the registry, or whose entry is unusable.</summary>
public sealed class SiloRegistryException(string message) : Exception(message);

/// <summary>Resolves silo ids to storage clients that carry that silo's own credential.</summary>
public interface ISiloRegistry : FederatedFunctions.Workflow.Abstractions.ISiloCatalog
{
    /// <summary>Every registered silo id.</summary>
    IReadOnlyCollection<string> SiloIds { get; }

    /// <summary>A client for the silo's container, authenticated as that silo.</summary>
    /// <exception cref="SiloRegistryException">Unknown silo or invalid entry.</exception>
    BlobContainerClient GetContainer(string siloId);
}

/// <summary>The configuration-backed <see cref="ISiloRegistry"/>.</summary>
/// <remarks>Clients are cached per silo; entries are validated when first used, and errors name the silo and the field.</remarks>
public sealed class SiloRegistry(IOptionsMonitor<SiloRegistryOptions> options) : ISiloRegistry
{
    private readonly Dictionary<string, BlobContainerClient> clients = new(StringComparer.Ordinal);
    private readonly Lock gate = new();

    /// <inheritdoc />
    public IReadOnlyCollection<string> SiloIds => options.CurrentValue.Silos.Keys;

    /// <inheritdoc />
    public bool Contains(string siloId) => siloId is not null && options.CurrentValue.Silos.ContainsKey(siloId);

    /// <inheritdoc />
    public BlobContainerClient GetContainer(string siloId)
    {
        lock (gate)
        {
            if (clients.TryGetValue(siloId, out var cached))
            {
                return cached;
            }

            if (!RunSpecValidator.IsValidSiloId(siloId))
            {
                throw new SiloRegistryException($"'{siloId}' is not a valid silo id.");
            }

            if (!options.CurrentValue.Silos.TryGetValue(siloId, out var entry))
            {
                throw new SiloRegistryException($"Silo '{siloId}' is not in the silo registry (configuration section '{SiloRegistryOptions.Section}').");
            }

            var client = Create(siloId, entry);
            clients[siloId] = client;
            return client;
        }
    }

    /// <summary>Builds a container client for one entry.</summary>
    public static BlobContainerClient Create(string siloId, SiloEndpoint entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (string.IsNullOrWhiteSpace(entry.Container))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Container' is required.");
        }

        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.MaxRetries = 3;
        switch (entry.Credential)
        {
            case SiloCredentialKind.ConnectionString:
                if (string.IsNullOrWhiteSpace(entry.ConnectionString))
                {
                    throw new SiloRegistryException($"Silo '{siloId}': 'ConnectionString' is required for credential ConnectionString.");
                }

                return new BlobContainerClient(entry.ConnectionString, entry.Container, clientOptions);
            case SiloCredentialKind.Sas:
                if (string.IsNullOrWhiteSpace(entry.SasToken))
                {
                    throw new SiloRegistryException($"Silo '{siloId}': 'SasToken' is required for credential Sas.");
                }

                return new BlobContainerClient(ContainerUri(siloId, entry), new AzureSasCredential(entry.SasToken.TrimStart('?')), clientOptions);
            case SiloCredentialKind.ManagedIdentity:
                TokenCredential mi = string.IsNullOrWhiteSpace(entry.ManagedIdentityClientId)
                    ? new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned)
                    : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(entry.ManagedIdentityClientId));
                return new BlobContainerClient(ContainerUri(siloId, entry), mi, clientOptions);
            case SiloCredentialKind.DefaultAzure:
                return new BlobContainerClient(ContainerUri(siloId, entry), new DefaultAzureCredential(), clientOptions);
            default:
                throw new SiloRegistryException($"Silo '{siloId}': unknown credential kind '{entry.Credential}'.");
        }
    }

    private static Uri ContainerUri(string siloId, SiloEndpoint entry)
    {
        if (!Uri.TryCreate(entry.BlobServiceUri, UriKind.Absolute, out var service) || !string.IsNullOrEmpty(service.Query))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'BlobServiceUri' must be an absolute URI without a query string.");
        }

        return new Uri(service.AbsoluteUri.TrimEnd('/') + "/" + entry.Container);
    }
}
