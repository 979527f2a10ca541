using System.Net;
using FederatedFunctions.Api;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>A shared API's start handler, as <see cref="RunsApi.StartFromHttpAsync"/> and <see cref="AnalysesApi.StartFromHttpAsync"/>.</summary>
internal delegate Task<ApiResponse> StartHandler(DurableTaskClient client, string? contentType, ReadOnlyMemory<byte>? body, ManagementUrlFactory urls, CancellationToken cancellationToken);

/// <summary>Translates between the Functions HTTP model and the shared API's request and response models.</summary>
internal static class HttpTranslation
{
    /// <summary>Runs <paramref name="handle"/> with the invocation's cancellation and writes its response.</summary>
    public static async Task<HttpResponseData> AnswerAsync(HttpRequestData request, Func<CancellationToken, Task<ApiResponse>> handle)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        return await WriteAsync(request, await handle(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary>A spec-carrying <c>POST</c>: the body read with <paramref name="limit"/>, its <c>Content-Type</c>, and the Durable extension's management URLs go to <paramref name="start"/>.</summary>
    public static Task<HttpResponseData> StartAsync(HttpRequestData request, DurableTaskClient client, int limit, StartHandler start) =>
        AnswerAsync(request, async ct => await start(client, ContentType(request), await ReadBodyAsync(request, limit, ct).ConfigureAwait(false), Urls(client, request), ct).ConfigureAwait(false));

    /// <summary>Reads the body with the API's size limit; null when it is larger.</summary>
    public static Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpRequestData request, int limit, CancellationToken cancellationToken)
    {
        long? declared = request.Headers.TryGetValues("Content-Length", out var lengths) && long.TryParse(lengths.FirstOrDefault(), out var n) ? n : null;
        return RequestBody.ReadLimitedAsync(request.Body, declared, limit, cancellationToken);
    }

    /// <summary>The request's <c>Content-Type</c> header, or null.</summary>
    public static string? ContentType(HttpRequestData request) =>
        request.Headers.TryGetValues("Content-Type", out var types) ? types.FirstOrDefault() : null;

    /// <summary>Writes an API response.</summary>
    public static async Task<HttpResponseData> WriteAsync(HttpRequestData request, ApiResponse response, CancellationToken cancellationToken)
    {
        var http = request.CreateResponse((HttpStatusCode)response.Status);
        if (response.Location is not null)
        {
            http.Headers.Add("Location", response.Location);
        }

        if (response.Body is not null)
        {
            var body = response.Encode();
            http.Headers.Add("Content-Type", body.ContentType);
            foreach (var (name, value) in body.Headers)
            {
                http.Headers.Add(name, value);
            }

            await http.Body.WriteAsync(body.Bytes, cancellationToken).ConfigureAwait(false);
        }

        return http;
    }

    /// <summary>The Durable extension's management URLs for an instance of this request's host.</summary>
    public static ManagementUrlFactory Urls(DurableTaskClient client, HttpRequestData request) => id =>
    {
        var payload = client.CreateHttpManagementPayload(id, request);
        return new ManagementUrls(payload.Id ?? id, payload.StatusQueryGetUri ?? string.Empty, payload.TerminatePostUri ?? string.Empty, payload.PurgeHistoryDeleteUri ?? string.Empty);
    };
}
