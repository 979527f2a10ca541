using Azure.Identity;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters.Checkpoints;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Workflow.Abstractions;
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
    /// Registers the blob checkpoint store, the silo registry (section <c>Silos</c>), the silo update store and
    /// the local TorchSharp silo backend.
    /// </summary>
    /// <remarks>
    /// The orchestrator storage comes from <c>Storage:ConnectionString</c>, else <c>Storage:BlobServiceUri</c> with
    /// the default Azure credential, else <c>AzureWebJobsStorage</c> (the Functions host's own storage).
    /// </remarks>
    public static IServiceCollection AddFederatedAdapters(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.Configure<SiloRegistryOptions>(o => configuration.GetSection(SiloRegistryOptions.Section).Bind(o.Silos));
        services.AddSingleton<ISiloRegistry, SiloRegistry>();
        services.AddSingleton<ISiloCatalog>(sp => sp.GetRequiredService<ISiloRegistry>());
        services.AddSingleton(_ => CreateOrchestratorBlobService(configuration));
        services.AddSingleton<BlobCheckpointStore>();
        services.AddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<BlobCheckpointStore>());
        services.AddSingleton<IUpdateStore, SiloUpdateStore>();
        services.AddSingleton<ISiloBackend, LocalTorchSiloBackend>();
        services.Configure<RecurringOptions>(o => configuration.GetSection(RecurringOptions.Section).Bind(o));
        services.AddSingleton<IRecurringStore, BlobRecurringStore>();
        return services;
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
