using System.Collections;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>The local host's telemetry: the workflow's spans and metrics, to the console or to an OTLP endpoint, when asked.</summary>
/// <remarks>
/// <para>Off by default, so that <c>fl</c> prints nothing more. <c>FL_OTEL=console</c> writes every span and, when the host
/// stops, the metrics to standard output (not for use with <c>--json</c>). <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> sends them to an
/// OTLP collector, with the OpenTelemetry SDK's own variables (<c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>_HEADERS</c>,
/// <c>OTEL_SERVICE_NAME</c>, …) as it reads them. Both can be on; <c>FL_OTEL=off</c> turns both off.</para>
/// </remarks>
public static class LocalTelemetry
{
    /// <summary>The variable that selects the console exporter (<c>console</c>) or turns telemetry off (<c>off</c>).</summary>
    public const string Variable = "FL_OTEL";

    /// <summary>The OpenTelemetry SDK's variable for the OTLP endpoint.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The process's environment, as <see cref="AddFederatedTelemetry"/> reads it.</summary>
    public static IReadOnlyDictionary<string, string?> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (string?)e.Value, StringComparer.Ordinal);

    /// <summary>Registers the tracer and meter providers with the exporters <paramref name="environment"/> asks for; nothing when it asks for none.</summary>
    public static IHostApplicationBuilder AddFederatedTelemetry(this IHostApplicationBuilder builder, IReadOnlyDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(environment);
        var selected = environment.GetValueOrDefault(Variable)?.Trim();
        if (string.Equals(selected, "off", StringComparison.OrdinalIgnoreCase))
        {
            return builder;
        }

        var console = string.Equals(selected, "console", StringComparison.OrdinalIgnoreCase);
        var otlp = !string.IsNullOrWhiteSpace(environment.GetValueOrDefault(OtlpEndpointVariable));
        if (!console && !otlp)
        {
            return builder;
        }

        // The host's configuration has no environment variables; the OTLP exporter reads its settings from it.
        builder.Configuration.AddInMemoryCollection(environment.Where(e => e.Key.StartsWith("OTEL_", StringComparison.Ordinal)));
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(environment.GetValueOrDefault("OTEL_SERVICE_NAME") ?? "fl"))
            .WithTracing(t =>
            {
                t.AddSource(FederatedTelemetry.Name);
                if (console)
                {
                    t.AddConsoleExporter();
                }

                if (otlp)
                {
                    t.AddOtlpExporter();
                }
            })
            .WithMetrics(m =>
            {
                m.AddMeter(FederatedTelemetry.Name);
                if (console)
                {
                    m.AddConsoleExporter();
                }

                if (otlp)
                {
                    m.AddOtlpExporter();
                }
            });
        return builder;
    }
}
