using FederatedFunctions.Api;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>The runs HTTP API. Every function needs a function key; each only translates HTTP for <see cref="RunsApi"/>.</summary>
public sealed class RunsHttpFunctions(RunsApi api)
{
    /// <summary>Function names, as the host and its settings know them.</summary>
    public const string StartRun = nameof(StartRun), ListRuns = nameof(ListRuns), GetRun = nameof(GetRun), CancelRun = nameof(CancelRun), ResumeRun = nameof(ResumeRun), GetRunAudit = nameof(GetRunAudit), GetRunCheckpoints = nameof(GetRunCheckpoints);

    /// <summary><c>POST /api/runs</c>.</summary>
    [Function(StartRun)]
    public async Task<HttpResponseData> StartRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs")] HttpRequestData request,
        [DurableClient] DurableTaskClient client)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        var body = await HttpTranslation.ReadBodyAsync(request, RunsApi.MaxBodyBytes, ct).ConfigureAwait(false);
        var contentType = request.Headers.TryGetValues("Content-Type", out var types) ? types.FirstOrDefault() : null;
        var response = await api.StartFromHttpAsync(client, contentType, body, HttpTranslation.Urls(client, request), ct).ConfigureAwait(false);
        return await HttpTranslation.WriteAsync(request, response, ct).ConfigureAwait(false);
    }

    /// <summary><c>GET /api/runs</c>.</summary>
    [Function(ListRuns)]
    public async Task<HttpResponseData> ListRunsAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs")] HttpRequestData request,
        [DurableClient] DurableTaskClient client)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        var q = request.Query;
        var response = await api.ListAsync(client, q["status"], q["pageSize"], q["continuationToken"], ct).ConfigureAwait(false);
        return await HttpTranslation.WriteAsync(request, response, ct).ConfigureAwait(false);
    }

    /// <summary><c>GET /api/runs/{id}</c>.</summary>
    [Function(GetRun)]
    public async Task<HttpResponseData> GetRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        return await HttpTranslation.WriteAsync(request, await api.GetAsync(client, id, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary><c>POST /api/runs/{id}/cancel</c>.</summary>
    [Function(CancelRun)]
    public async Task<HttpResponseData> CancelRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs/{id}/cancel")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        return await HttpTranslation.WriteAsync(request, await api.CancelAsync(client, id, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary><c>POST /api/runs/{id}/resume?container=</c>.</summary>
    [Function(ResumeRun)]
    public async Task<HttpResponseData> ResumeRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs/{id}/resume")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        var response = await api.ResumeAsync(client, id, request.Query["container"], HttpTranslation.Urls(client, request), ct).ConfigureAwait(false);
        return await HttpTranslation.WriteAsync(request, response, ct).ConfigureAwait(false);
    }

    /// <summary><c>GET /api/runs/{id}/audit</c>.</summary>
    [Function(GetRunAudit)]
    public async Task<HttpResponseData> GetRunAuditAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}/audit")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        return await HttpTranslation.WriteAsync(request, await api.AuditAsync(client, id, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary><c>GET /api/runs/{id}/checkpoints</c>.</summary>
    [Function(GetRunCheckpoints)]
    public async Task<HttpResponseData> GetRunCheckpointsAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}/checkpoints")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ct = request.FunctionContext.CancellationToken;
        return await HttpTranslation.WriteAsync(request, await api.CheckpointsAsync(client, id, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }
}
