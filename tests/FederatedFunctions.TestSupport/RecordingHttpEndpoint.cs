using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// An HTTP endpoint on a free loopback port that records every POST it receives (a gzip body unzipped) and answers with
/// what the test says: a stand-in for a telemetry backend (an Application Insights ingestion endpoint, an OTLP collector).
/// </summary>
public sealed class RecordingHttpEndpoint : IAsyncDisposable
{
    private readonly WebApplication app;

    private RecordingHttpEndpoint(WebApplication app) => this.app = app;

    /// <summary>The base address, e.g. <c>http://127.0.0.1:40123</c>.</summary>
    public string Url => app.Urls.First();

    /// <summary>Every POST received: its path and body.</summary>
    public ConcurrentQueue<(string Path, string Body)> Requests { get; } = new();

    /// <summary>Starts the endpoint; <paramref name="answer"/> makes the response to a body.</summary>
    public static async Task<RecordingHttpEndpoint> StartAsync(Func<string, IResult> answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var endpoint = new RecordingHttpEndpoint(builder.Build());
        endpoint.app.MapPost("/{**path}", async (HttpRequest request) =>
        {
            var body = request.Headers.ContentEncoding == "gzip" ? new GZipStream(request.Body, CompressionMode.Decompress) : request.Body;
            using var reader = new StreamReader(body);
            var text = await reader.ReadToEndAsync();
            endpoint.Requests.Enqueue((request.Path, text));
            return answer(text);
        });
        await endpoint.app.StartAsync();
        return endpoint;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await app.DisposeAsync();
}
