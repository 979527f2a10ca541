using Azure.Core;
using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace FederatedFunctions.FunctionsApp;

/// <summary>The Functions app's telemetry: the workflow's spans and metrics, exported to Application Insights.</summary>
/// <remarks>
/// <para>Only when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set (the infrastructure sets it): otherwise nothing is
/// registered and nothing is exported. The worker's defaults (<c>UseFunctionsWorkerDefaults</c>) add the Functions resource
/// (site, region, resource id) and the worker's own invocation spans.</para>
/// <para>The exporter authenticates as the Functions host does: with <c>APPLICATIONINSIGHTS_AUTHENTICATION_STRING</c> set to
/// <c>Authorization=AAD</c> (and <c>ClientId=…</c> for a user-assigned identity, as the infrastructure sets it) it uses the
/// managed identity, since the infrastructure turns the component's key authentication off; without it, the key in the
/// connection string.</para>
/// <para>Sampling is off (every span is kept): the exporter's default, a rate-limited sampler, drops spans while its budget
/// fills, and a run emits only a few spans per round.</para>
/// </remarks>
public static class FunctionsTelemetry
{
    /// <summary>The app setting holding the Application Insights connection string.</summary>
    public const string ConnectionStringSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>The app setting saying how to authenticate to Application Insights.</summary>
    public const string AuthenticationSetting = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";

    /// <summary>Registers the tracer and meter providers with the Azure Monitor exporter, when a connection string is configured.</summary>
    public static IServiceCollection AddFederatedTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration[ConnectionStringSetting] is not { Length: > 0 } connectionString)
        {
            return services;
        }

        var credential = Credential(configuration[AuthenticationSetting]);
        void Configure(AzureMonitorExporterOptions o)
        {
            o.ConnectionString = connectionString;
            // Every span: a run emits a few per round, and the exporter's default rate-limited sampler drops spans at start-up.
            o.TracesPerSecond = null;
            o.SamplingRatio = 1.0F;
        }

        services.AddOpenTelemetry()
            .UseFunctionsWorkerDefaults()
            .WithTracing(t => t.AddSource(FederatedTelemetry.Name).AddAzureMonitorTraceExporter(Configure, credential))
            .WithMetrics(m => m.AddMeter(FederatedTelemetry.Name).AddAzureMonitorMetricExporter(Configure, credential));
        return services;
    }

    /// <summary>The managed identity an authentication string names (<c>Authorization=AAD[;ClientId=…]</c>), or null for key authentication.</summary>
    internal static TokenCredential? Credential(string? authentication)
    {
        var parts = (authentication ?? string.Empty)
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2, StringSplitOptions.TrimEntries))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.OrdinalIgnoreCase);
        if (!parts.TryGetValue("Authorization", out var mode) || !string.Equals(mode, "AAD", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return new ManagedIdentityCredential(parts.TryGetValue("ClientId", out var clientId) ? ManagedIdentityId.FromUserAssignedClientId(clientId) : ManagedIdentityId.SystemAssigned);
    }
}
