using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary><c>fl</c>'s telemetry switches: off by default, the console with <c>FL_OTEL=console</c>, OTLP with <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
public sealed class LocalTelemetryTests
{
    private static IHost Build(Dictionary<string, string?> environment)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.AddFederatedTelemetry(environment);
        return builder.Build();
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("off", "http://127.0.0.1:4318")]
    public void AddFederatedTelemetry_NothingAsked_RegistersNoProvider(string? flOtel, string? endpoint)
    {
        using var host = Build(new() { [LocalTelemetry.Variable] = flOtel, [LocalTelemetry.OtlpEndpointVariable] = endpoint });

        Assert.Null(host.Services.GetService<TracerProvider>());
        Assert.Null(host.Services.GetService<MeterProvider>());
    }

    [Fact]
    public void AddFederatedTelemetry_Console_RegistersTheProvidersOfTheWorkflowsSourceAndMeter()
    {
        using var host = Build(new() { [LocalTelemetry.Variable] = "console" });

        Assert.NotNull(host.Services.GetService<TracerProvider>());
        Assert.NotNull(host.Services.GetService<MeterProvider>());
    }

    [Fact]
    public async Task AddFederatedTelemetry_OtlpEndpoint_SendsTheWorkflowsSpansThere()
    {
        var runId = "otel-fl-" + Guid.NewGuid().ToString("N");
        await using var collector = await RecordingHttpEndpoint.StartAsync(_ => Results.Ok());

        using (var host = Build(new()
        {
            [LocalTelemetry.OtlpEndpointVariable] = collector.Url,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        }))
        {
            var tracing = host.Services.GetRequiredService<TracerProvider>();
            var start = DateTime.UtcNow.AddMinutes(-2);
            FederatedTelemetry.RunEnded(new RunEnded(runId, PrivacyModes.EyesOn, start, start.AddMinutes(1), FederatedTelemetry.Outcomes.Completed, 1));
            Assert.True(tracing.ForceFlush(30_000));
        }

        var traces = collector.Requests.Where(r => r.Path == "/v1/traces").Select(r => r.Body).ToArray();
        Assert.Contains(traces, t => t.Contains(runId, StringComparison.Ordinal) && t.Contains("fl.run", StringComparison.Ordinal));
    }
}
