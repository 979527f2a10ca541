using FederatedFunctions.Core.Specs;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>
/// The app's telemetry, in the host Program.cs builds: with an Application Insights connection string, the workflow's spans
/// reach the Azure Monitor exporter, which sends them to the connection string's ingestion endpoint (here a local one);
/// without one, nothing is registered.
/// </summary>
public sealed class TelemetryCompositionTests
{
    private static Dictionary<string, string?> Settings => FunctionsCompositionTests.Settings;

    [Fact]
    public void WorkerHost_WithoutAConnectionString_RegistersNoTelemetry()
    {
        using var host = WorkerHost.Build(Settings);

        Assert.Null(host.Services.GetService<TracerProvider>());
        Assert.Null(host.Services.GetService<MeterProvider>());
    }

    [Fact]
    public async Task WorkerHost_WithAConnectionString_ExportsTheWorkflowsSpansThroughTheAzureMonitorExporter()
    {
        // A run id of its own: the exporter keeps what it could not send on disk, and sends it again later.
        var runId = "otel-functions-" + Guid.NewGuid().ToString("N");
        await using var ingestion = await RecordingHttpEndpoint.StartAsync(body =>
        {
            var items = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            return Results.Json(new { itemsReceived = items, itemsAccepted = items, errors = Array.Empty<object>() });
        });
        var endpoint = ingestion.Url;

        var settings = new Dictionary<string, string?>(Settings)
        {
            [FunctionsTelemetry.ConnectionStringSetting] = $"InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint={endpoint}/",
        };
        using (var host = WorkerHost.Build(settings))
        {
            var tracing = host.Services.GetRequiredService<TracerProvider>();
            Assert.NotNull(host.Services.GetService<MeterProvider>());
            var start = DateTime.UtcNow.AddMinutes(-5);
            FederatedTelemetry.RunEnded(new RunEnded(runId, PrivacyModes.EyesOn, start, start.AddMinutes(4), FederatedTelemetry.Outcomes.Completed, 3));
            Assert.True(tracing.ForceFlush(30_000));
        }

        var sent = string.Join('\n', ingestion.Requests.Where(r => r.Path == "/v2.1/track").Select(r => r.Body));
        Assert.Contains(runId, sent, StringComparison.Ordinal);
        Assert.Contains("fl.run", sent, StringComparison.Ordinal);
        Assert.Contains(FederatedTelemetry.TraceId(runId).ToHexString(), sent, StringComparison.Ordinal);
    }

    [Fact]
    public void Credential_FollowsTheAuthenticationStringTheInfrastructureSets()
    {
        Assert.Null(FunctionsTelemetry.Credential(null));
        Assert.Null(FunctionsTelemetry.Credential("Authorization=Key"));
        Assert.IsType<Azure.Identity.ManagedIdentityCredential>(FunctionsTelemetry.Credential("ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD"));
        Assert.IsType<Azure.Identity.ManagedIdentityCredential>(FunctionsTelemetry.Credential("Authorization=AAD"));
    }
}
