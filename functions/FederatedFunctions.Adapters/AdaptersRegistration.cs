using Azure.Core;
using Azure.Identity;
using FederatedFunctions.Adapters.Compute.AzureMl;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Silo;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.Adapters;

/// <summary>The orchestrator's own storage account, where checkpoints live.</summary>
public sealed class OrchestratorStorageOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Storage";

    /// <summary>A connection string (Azurite, or an account with shared keys).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Blob endpoint reached with the default Azure credential (managed identity in Azure).</summary>
    public string? BlobServiceUri { get; set; }
}

/// <summary>Composition of the adapter layer.</summary>
public static class AdaptersRegistration
{
    /// <summary>
    /// Registers the blob checkpoint store, the silo registry (section <c>Silos</c>), the outbox reader, the TorchSharp
    /// tensor engine, and the silo compute kinds (<c>local</c>, <c>process</c>, <c>azureml</c>) behind the silo catalog.
    /// </summary>
    /// <remarks>
    /// The orchestrator storage comes from <c>Storage:ConnectionString</c>, else <c>Storage:BlobServiceUri</c> with
    /// the default Azure credential, else <c>AzureWebJobsStorage</c> (the Functions host's own storage). The stores and
    /// the <c>local</c> compute share one <see cref="RecentBlobs"/> of <c>Storage:RecentBlobsMiB</c>.
    /// </remarks>
    public static IServiceCollection AddFederatedAdapters(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.Configure<SiloRegistryOptions>(o => configuration.GetSection(SiloRegistryOptions.Section).Bind(o.Silos));
        services.AddSingleton<ISiloRegistry, SiloRegistry>();
        services.AddSingleton(_ => CreateOrchestratorBlobService(configuration));
        services.AddSingleton(_ => CreateRecentBlobs(configuration));
        services.AddSingleton<BlobCheckpointStore>();
        services.AddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<BlobCheckpointStore>());
        services.AddSingleton<IUpdateStore, SiloUpdateStore>();
        services.AddSingleton<ITensorEngine, TorchTensorEngine>();

        // The silo side, for the compute that runs it in this process, and the compute kinds: one class each.
        services.AddSingleton<SiloDataCache>();
        services.AddSingleton<SiloProtocol>();
        services.Configure<ProcessComputeOptions>(o => configuration.GetSection(ProcessComputeOptions.Section).Bind(o));
        services.AddSingleton<ISiloComputeKind, LocalSiloCompute>();
        services.AddSingleton<ISiloComputeKind, ProcessSiloCompute>();
        services.Configure<AzureMlHostOptions>(o => configuration.GetSection(AzureMlHostOptions.Section).Bind(o));
        services.TryAddSingleton(sp => CreateAzureMlClient(sp.GetRequiredService<IOptions<AzureMlHostOptions>>().Value));
        services.TryAddSingleton<AzureMlTenantClients>();
        services.AddSingleton<ISiloComputeKind, AzureMlSiloCompute>();
        services.AddSingleton<ISiloCatalog, SiloCatalog>();
        services.Configure<RecurringOptions>(o => configuration.GetSection(RecurringOptions.Section).Bind(o));
        services.AddSingleton<IRecurringStore, BlobRecurringStore>();
        services.AddSingleton(configuration.GetSection(AnalysisOptions.Section).Get<AnalysisOptions>() ?? new AnalysisOptions());
        return services;
    }

    /// <summary>The setting of <see cref="CreateRecentBlobs"/>: MiB of the blobs this process wrote lately that it keeps to answer its own reads of them.</summary>
    /// <remarks>Not a property of <see cref="OrchestratorStorageOptions"/>, whose binding would fail on a bad value before this names it.</remarks>
    public const string RecentBlobsMiBKey = OrchestratorStorageOptions.Section + ":RecentBlobsMiB";

    /// <summary>The host's one <see cref="RecentBlobs"/>, of <see cref="RecentBlobsMiBKey"/> MiB (64 when unset or empty; 0 keeps none).</summary>
    /// <exception cref="InvalidOperationException">The setting is not a whole number of 0 or more.</exception>
    public static RecentBlobs CreateRecentBlobs(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var setting = configuration[RecentBlobsMiBKey];
        if (string.IsNullOrWhiteSpace(setting))
        {
            return new RecentBlobs();
        }

        // Digits only: no sign, no fraction, so what parses is a whole number of 0 or more.
        return int.TryParse(setting.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var mib)
            ? new RecentBlobs(mib * 1024L * 1024)
            : throw new InvalidOperationException($"{RecentBlobsMiBKey} is '{setting}'; it must be a whole number of MiB, 0 (keep none) or more.");
    }

    /// <summary>The Azure ML jobs client, authenticated as the orchestrator's identity.</summary>
    public static AzureMlJobsClient CreateAzureMlClient(AzureMlHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        TokenCredential credential = string.IsNullOrWhiteSpace(options.ManagedIdentityClientId)
            ? new DefaultAzureCredential()
            : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(options.ManagedIdentityClientId));
        return new AzureMlJobsClient(new Uri(options.Endpoint), credential, audience: options.Audience);
    }

    /// <summary>Builds the orchestrator's blob client from configuration.</summary>
    /// <exception cref="InvalidOperationException">No storage is configured.</exception>
    public static BlobServiceClient CreateOrchestratorBlobService(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = configuration.GetSection(OrchestratorStorageOptions.Section).Get<OrchestratorStorageOptions>() ?? new();
        var connectionString = options.ConnectionString;
        if (string.IsNullOrWhiteSpace(connectionString) && string.IsNullOrWhiteSpace(options.BlobServiceUri))
        {
            connectionString = configuration["AzureWebJobsStorage"];
        }

        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            if (connectionString.Trim().Equals("UseDevelopmentStorage=true", StringComparison.OrdinalIgnoreCase))
            {
                connectionString = "UseDevelopmentStorage=true";
            }

            return new BlobServiceClient(connectionString);
        }

        if (Uri.TryCreate(options.BlobServiceUri, UriKind.Absolute, out var uri))
        {
            return new BlobServiceClient(uri, new DefaultAzureCredential());
        }

        throw new InvalidOperationException(
            "No orchestrator storage is configured: set Storage:ConnectionString, Storage:BlobServiceUri or AzureWebJobsStorage.");
    }
}
