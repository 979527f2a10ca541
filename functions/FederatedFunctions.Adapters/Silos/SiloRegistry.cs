using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using FederatedFunctions.Core.Specs;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>How a container is reached.</summary>
public enum SiloCredentialKind
{
    /// <summary>A SAS token scoped to the container (local simulation, or a provider that issues one).</summary>
    Sas,

    /// <summary>A managed identity (optionally user-assigned, by client id) granted roles on the container.</summary>
    ManagedIdentity,

    /// <summary>The default Azure credential chain (developer sign-in, workload identity, managed identity).</summary>
    DefaultAzure,

    /// <summary>A storage connection string; for Azurite and tests only.</summary>
    ConnectionString,

    /// <summary>
    /// Contoso's multi-tenant application in the silo's tenant, signed in with a user-assigned managed identity as its
    /// federated credential (<see cref="CrossTenantCredential"/>): a silo in another tenant, with no secret.
    /// </summary>
    FederatedApplication,
}

/// <summary>A credential for one container: which kind, and its secret or identity.</summary>
public class BlobAccess
{
    /// <summary>How to authenticate.</summary>
    public SiloCredentialKind Credential { get; set; } = SiloCredentialKind.ManagedIdentity;

    /// <summary>SAS token (without the leading <c>?</c>) when <see cref="Credential"/> is <see cref="SiloCredentialKind.Sas"/>.</summary>
    public string? SasToken { get; set; }

    /// <summary>Client id of a user-assigned managed identity, when one is used.</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>Connection string when <see cref="Credential"/> is <see cref="SiloCredentialKind.ConnectionString"/>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>With <see cref="SiloCredentialKind.FederatedApplication"/>: the silo's tenant.</summary>
    public string? TenantId { get; set; }

    /// <summary>With <see cref="SiloCredentialKind.FederatedApplication"/>: Contoso's multi-tenant application (its client id).</summary>
    public string? ApplicationClientId { get; set; }

    /// <summary>Whether this access holds a secret (a SAS token or a connection string), as opposed to naming an identity.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool HoldsSecret => !string.IsNullOrWhiteSpace(SasToken) || !string.IsNullOrWhiteSpace(ConnectionString);
}

/// <summary>Where a silo's steps run: <c>Silos:{id}:Compute</c>.</summary>
public sealed class SiloComputeOptions
{
    /// <summary>The compute kind: <c>local</c> (in the orchestrator's process), <c>process</c> (a separate OS process with the silo's own credential) or <c>azureml</c> (an Azure ML command job on the provider's compute).</summary>
    public string Kind { get; set; } = SiloComputeKinds.Local;

    /// <summary>Seconds between two reads of a running job's state; the kind's default when absent.</summary>
    public int? PollSeconds { get; set; }

    /// <summary><c>process</c>: the silo runner's credential file, which only the runner opens (the orchestrator passes its path).</summary>
    public string? CredentialFile { get; set; }

    /// <summary><c>azureml</c>: the workspace, compute, identity and environment of the silo's jobs.</summary>
    public AzureMlComputeOptions? AzureMl { get; set; }
}

/// <summary>The compute kinds.</summary>
public static class SiloComputeKinds
{
    /// <summary>In the orchestrator's process, with the silo's credential from the registry (simulation).</summary>
    public const string Local = "local";

    /// <summary>A separate OS process started with the silo's own credential file; the orchestrator holds no silo credential.</summary>
    public const string Process = "process";

    /// <summary>An Azure ML command job on the compute the provider attached, running as the provider's user-assigned identity.</summary>
    public const string AzureMl = "azureml";
}

/// <summary>The Azure ML side of a silo: <c>Silos:{id}:Compute:AzureMl</c>. None of it is secret.</summary>
public sealed class AzureMlComputeOptions
{
    /// <summary>Subscription of the Azure ML workspace the provider's compute is attached to.</summary>
    public string? SubscriptionId { get; set; }

    /// <summary>Resource group of the workspace.</summary>
    public string? ResourceGroup { get; set; }

    /// <summary>The workspace.</summary>
    public string? Workspace { get; set; }

    /// <summary>The name of the compute the provider attached (its jobs run there, in the provider's subscription).</summary>
    public string? Compute { get; set; }

    /// <summary>ARM resource id of the user-assigned identity the silo's jobs run as.</summary>
    public string? IdentityResourceId { get; set; }

    /// <summary>Client id of that identity: the silo runner authenticates to the silo's storage with it.</summary>
    public string? IdentityClientId { get; set; }

    /// <summary>The Azure ML environment that holds the silo runner's image (an ARM id, or <c>azureml:name:version</c>).</summary>
    public string? Environment { get; set; }

    /// <summary>The SHA-256 digest of that image (64 hex digits, no <c>sha256:</c> prefix): the trainer identity eyes-off runs approve.</summary>
    public string? ImageDigest { get; set; }

    /// <summary>Experiment the jobs are filed under.</summary>
    public string ExperimentName { get; set; } = "federatedfunctions";

    /// <summary>The longest a job may run before Azure ML cancels it (ISO-8601 duration), or null for Azure ML's default.</summary>
    public string? Timeout { get; set; }

    /// <summary>A workspace in another tenant: that tenant. The jobs are then submitted as <see cref="ApplicationClientId"/> there.</summary>
    public string? TenantId { get; set; }

    /// <summary>With <see cref="TenantId"/>: Contoso's multi-tenant application, signed in with the host's identity (<c>Compute:AzureMl:ManagedIdentityClientId</c>) as its federated credential.</summary>
    public string? ApplicationClientId { get; set; }
}

/// <summary>One silo's entry in the registry: where its data and outbox live, how each party reaches them, and its compute.</summary>
/// <remarks>
/// <para>Entries are loaded from host configuration (section <c>Silos</c>, keyed by silo id). They may contain credentials,
/// so they never enter an orchestration input or output: activities look them up by silo id.</para>
/// <para>The silo's own credential (<see cref="BlobAccess.Credential"/>, <see cref="BlobAccess.SasToken"/>,
/// <see cref="OutboxSasToken"/>) is needed only by the <c>local</c> compute, which trains in the orchestrator's process. The
/// orchestrator's own grant on the outbox is <see cref="OutboxReader"/>; with a <c>process</c> or <c>azureml</c> compute
/// it is required, and the entry may hold no silo secret at all.</para>
/// </remarks>
public sealed class SiloEndpoint : BlobAccess
{
    /// <summary>The silo's blob service endpoint, e.g. <c>https://contosohospital.blob.core.windows.net</c>.</summary>
    public string? BlobServiceUri { get; set; }

    /// <summary>The silo's data container: its data and its private area, which the orchestrator never reads.</summary>
    public string Container { get; set; } = string.Empty;

    /// <summary>The silo's outbox container, which the orchestrator reads; the data container when absent.</summary>
    public string? OutboxContainer { get; set; }

    /// <summary>The silo's SAS for its outbox container, when that is not the data container (<c>local</c> compute only).</summary>
    public string? OutboxSasToken { get; set; }

    /// <summary>The orchestrator's read-only access to the outbox; absent means the silo's own credential (<c>local</c> only).</summary>
    public BlobAccess? OutboxReader { get; set; }

    /// <summary>Where the silo's steps run.</summary>
    public SiloComputeOptions Compute { get; set; } = new();

    /// <summary>The silo's own least number of rows per reported cell of an analysis (DataSHIELD's per-site threshold); it can only raise an analysis's <c>privacy.minCount</c>.</summary>
    public int? MinCount { get; set; }

    /// <summary>The outbox container's name.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string OutboxContainerName => string.IsNullOrWhiteSpace(OutboxContainer) ? Container : OutboxContainer;
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
public sealed class SiloRegistryException(string message) : ArgumentException(message);

/// <summary>Resolves silo ids to their registry entries and to storage clients.</summary>
public interface ISiloRegistry
{
    /// <summary>Every registered silo id.</summary>
    IReadOnlyCollection<string> SiloIds { get; }

    /// <summary>The silo's entry.</summary>
    /// <exception cref="SiloRegistryException">Unknown silo, or an invalid entry; the message names the silo and the field.</exception>
    SiloEndpoint Entry(string siloId);

    /// <summary>The silo's data container, authenticated as that silo (the <c>local</c> compute).</summary>
    /// <exception cref="SiloRegistryException">Unknown silo, invalid entry, or no silo credential in it.</exception>
    BlobContainerClient GetContainer(string siloId);

    /// <summary>The silo's outbox container, authenticated as that silo (the <c>local</c> compute).</summary>
    /// <exception cref="SiloRegistryException">As <see cref="GetContainer"/>.</exception>
    BlobContainerClient GetOutbox(string siloId);

    /// <summary>The silo's outbox container with the orchestrator's own read access.</summary>
    /// <exception cref="SiloRegistryException">Unknown silo, or an entry with no usable reader.</exception>
    BlobContainerClient GetOutboxReader(string siloId);
}

/// <summary>The configuration-backed <see cref="ISiloRegistry"/>.</summary>
/// <remarks>Clients are cached per silo; entries are validated when first used, and errors name the silo and the field.</remarks>
public sealed class SiloRegistry(IOptionsMonitor<SiloRegistryOptions> options) : ISiloRegistry
{
    private readonly Dictionary<(string Silo, string Role), BlobContainerClient> clients = [];
    private readonly Lock gate = new();

    /// <inheritdoc />
    public IReadOnlyCollection<string> SiloIds => options.CurrentValue.Silos.Keys;

    /// <inheritdoc />
    public SiloEndpoint Entry(string siloId)
    {
        if (!RunSpecValidator.IsValidSiloId(siloId))
        {
            throw new SiloRegistryException($"'{siloId}' is not a valid silo id.");
        }

        if (!options.CurrentValue.Silos.TryGetValue(siloId, out var entry))
        {
            throw new SiloRegistryException($"Silo '{siloId}' is not in the silo registry (configuration section '{SiloRegistryOptions.Section}').");
        }

        if (string.IsNullOrWhiteSpace(entry.Container))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Container' is required.");
        }

        if (entry.Compute.Kind != SiloComputeKinds.Local && entry.HoldsSecret)
        {
            throw new SiloRegistryException(
                $"Silo '{siloId}': a '{entry.Compute.Kind}' compute runs with the silo's own credential, so the orchestrator's registry must not hold it: remove 'SasToken' and 'ConnectionString' (the orchestrator reads the outbox through 'OutboxReader').");
        }

        return entry;
    }

    /// <inheritdoc />
    public BlobContainerClient GetContainer(string siloId) => Cached(siloId, "data", entry => Create(siloId, entry, entry.Container, entry, "the silo's credential"));

    /// <inheritdoc />
    public BlobContainerClient GetOutbox(string siloId) => Cached(siloId, "outbox", entry =>
        entry.OutboxContainerName == entry.Container || entry.Credential != SiloCredentialKind.Sas
            ? Create(siloId, entry, entry.OutboxContainerName, entry, "the silo's credential")
            : Create(siloId, entry, entry.OutboxContainerName, new BlobAccess { Credential = SiloCredentialKind.Sas, SasToken = entry.OutboxSasToken }, "'OutboxSasToken'"));

    /// <inheritdoc />
    public BlobContainerClient GetOutboxReader(string siloId) => Cached(siloId, "reader", entry =>
        entry.OutboxReader is { } reader
            ? Create(siloId, entry, entry.OutboxContainerName, reader, "'OutboxReader'")
            : entry.Compute.Kind == SiloComputeKinds.Local
                ? GetOutbox(siloId)
                : throw new SiloRegistryException($"Silo '{siloId}': 'OutboxReader' is required with a '{entry.Compute.Kind}' compute: the orchestrator reads the outbox with its own grant."));

    /// <summary>Builds a client for one container of a silo.</summary>
    /// <exception cref="SiloRegistryException">A field the credential kind needs is missing; the message names it.</exception>
    public static BlobContainerClient Create(string siloId, SiloEndpoint entry, string container, BlobAccess access, string what = "the silo's credential")
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(access);
        if (access.Credential == SiloCredentialKind.ConnectionString)
        {
            return string.IsNullOrWhiteSpace(access.ConnectionString)
                ? throw new SiloRegistryException($"Silo '{siloId}': 'ConnectionString' is required for credential ConnectionString ({what}).")
                : new BlobContainerClient(access.ConnectionString, container, ClientOptions());
        }

        return ClientFor(ContainerUri(siloId, entry, container), access, $"silo '{siloId}', {what}");
    }

    /// <summary>A client for the container at <paramref name="containerUri"/> with <paramref name="access"/>.</summary>
    /// <param name="containerUri">The container.</param>
    /// <param name="access">The credential.</param>
    /// <param name="what">Whose credential it is, for errors.</param>
    /// <param name="clientOptions">The client's options; by default <see cref="ClientOptions"/>.</param>
    /// <exception cref="SiloRegistryException">A field the credential kind needs is missing.</exception>
    public static BlobContainerClient ClientFor(Uri containerUri, BlobAccess access, string what, BlobClientOptions? clientOptions = null)
    {
        ArgumentNullException.ThrowIfNull(containerUri);
        ArgumentNullException.ThrowIfNull(access);
        var options = clientOptions ?? ClientOptions();
        switch (access.Credential)
        {
            case SiloCredentialKind.ConnectionString:
                if (string.IsNullOrWhiteSpace(access.ConnectionString))
                {
                    throw new SiloRegistryException($"'ConnectionString' is required for credential ConnectionString ({what}).");
                }

                var name = containerUri.AbsolutePath.TrimEnd('/').Split('/')[^1];
                return new BlobContainerClient(access.ConnectionString, name, options);
            case SiloCredentialKind.Sas:
                return string.IsNullOrWhiteSpace(access.SasToken)
                    ? throw new SiloRegistryException($"A SAS token is required for credential Sas ({what}).")
                    : new BlobContainerClient(containerUri, new AzureSasCredential(access.SasToken.TrimStart('?')), options);
            case SiloCredentialKind.ManagedIdentity:
                TokenCredential mi = string.IsNullOrWhiteSpace(access.ManagedIdentityClientId)
                    ? new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned)
                    : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(access.ManagedIdentityClientId));
                return new BlobContainerClient(containerUri, mi, options);
            case SiloCredentialKind.DefaultAzure:
                return new BlobContainerClient(containerUri, new DefaultAzureCredential(), options);
            case SiloCredentialKind.FederatedApplication:
                return new BlobContainerClient(containerUri, CrossTenantCredential.Create(access.TenantId, access.ApplicationClientId, access.ManagedIdentityClientId, what), options);
            default:
                throw new SiloRegistryException($"Unknown credential kind '{access.Credential}' ({what}).");
        }
    }

    /// <summary>Builds a client for a silo's data container with its own credential (provisioning and tests).</summary>
    public static BlobContainerClient Create(string siloId, SiloEndpoint entry) => Create(siloId, entry, entry?.Container ?? string.Empty, entry!);

    /// <summary>The URI of one of a silo's containers, without credential.</summary>
    /// <exception cref="SiloRegistryException">The entry's <c>BlobServiceUri</c> is missing or has a query string.</exception>
    public static Uri ContainerUri(string siloId, SiloEndpoint entry, string container)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!Uri.TryCreate(entry.BlobServiceUri, UriKind.Absolute, out var service) || !string.IsNullOrEmpty(service.Query))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'BlobServiceUri' must be an absolute URI without a query string.");
        }

        return new Uri(service.AbsoluteUri.TrimEnd('/') + "/" + container);
    }

    /// <summary>The options of every silo client: 3 retries of a failed request (a download that breaks off on the way is resumed by the SDK's download stream, with its own budget).</summary>
    public static BlobClientOptions ClientOptions()
    {
        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.MaxRetries = 3;
        return clientOptions;
    }

    private BlobContainerClient Cached(string siloId, string role, Func<SiloEndpoint, BlobContainerClient> create)
    {
        lock (gate)
        {
            if (clients.TryGetValue((siloId, role), out var cached))
            {
                return cached;
            }
        }

        var client = create(Entry(siloId));
        lock (gate)
        {
            clients[(siloId, role)] = client;
        }

        return client;
    }
}
