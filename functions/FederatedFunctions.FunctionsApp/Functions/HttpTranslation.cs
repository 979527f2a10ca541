using System.Net;
using System.Text.Json;
using FederatedFunctions.Api;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>Translates between the Functions HTTP model and the shared API's request and response models.</summary>
internal static class HttpTranslation
{
    /// <summary>Reads the body with the API's size limit; null when it is larger.</summary>
    public static Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpRequestData request, int limit, CancellationToken cancellationToken)
    {
        long? declared = request.Headers.TryGetValues("Content-Length", out var lengths) && long.TryParse(lengths.FirstOrDefault(), out var n) ? n : null;
        return RequestBody.ReadLimitedAsync(request.Body, declared, limit, cancellationToken);
    }

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
            http.Headers.Add("Content-Type", response.ContentType + "; charset=utf-8");
            await http.WriteBytesAsync(JsonSerializer.SerializeToUtf8Bytes(response.Body, response.Body.GetType(), ApiJson.Options), cancellationToken).ConfigureAwait(false);
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
