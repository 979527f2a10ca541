using FederatedFunctions.Api;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>The runs HTTP API. Every function needs a function key; each only translates HTTP for <see cref="RunsApi"/>.</summary>
public sealed class RunsHttpFunctions(RunsApi api)
{
    /// <summary>Function names, as the host and its settings know them.</summary>
    public const string StartRun = nameof(StartRun), ListRuns = nameof(ListRuns), GetRun = nameof(GetRun), CancelRun = nameof(CancelRun), ResumeRun = nameof(ResumeRun), GetRunAudit = nameof(GetRunAudit), GetRunCheckpoints = nameof(GetRunCheckpoints), GetRunModel = nameof(GetRunModel);

    /// <summary><c>POST /api/runs</c>.</summary>
    [Function(StartRun)]
    public Task<HttpResponseData> StartRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs")] HttpRequestData request,
        [DurableClient] DurableTaskClient client) =>
        HttpTranslation.StartAsync(request, client, RunsApi.MaxBodyBytes, api.StartFromHttpAsync);

    /// <summary><c>GET /api/runs</c>.</summary>
    [Function(ListRuns)]
    public Task<HttpResponseData> ListRunsAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs")] HttpRequestData request,
        [DurableClient] DurableTaskClient client) =>
        HttpTranslation.AnswerAsync(request, ct => api.ListAsync(client, request.Query["status"], request.Query["pageSize"], request.Query["continuationToken"], ct));

    /// <summary><c>GET /api/runs/{id}</c>.</summary>
    [Function(GetRun)]
    public Task<HttpResponseData> GetRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        HttpTranslation.AnswerAsync(request, ct => api.GetAsync(client, id, ct));

    /// <summary><c>POST /api/runs/{id}/cancel</c>.</summary>
    [Function(CancelRun)]
    public Task<HttpResponseData> CancelRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs/{id}/cancel")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        HttpTranslation.AnswerAsync(request, ct => api.CancelAsync(client, id, ct));

    /// <summary><c>POST /api/runs/{id}/resume?container=</c>.</summary>
    [Function(ResumeRun)]
    public Task<HttpResponseData> ResumeRunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "runs/{id}/resume")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        HttpTranslation.AnswerAsync(request, ct => api.ResumeAsync(client, id, request.Query["container"], HttpTranslation.Urls(client, request), ct));

    /// <summary><c>GET /api/runs/{id}/audit</c>.</summary>
    [Function(GetRunAudit)]
    public Task<HttpResponseData> GetRunAuditAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}/audit")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        HttpTranslation.AnswerAsync(request, ct => api.AuditAsync(client, id, ct));

    /// <summary><c>GET /api/runs/{id}/checkpoints</c>.</summary>
    [Function(GetRunCheckpoints)]
    public Task<HttpResponseData> GetRunCheckpointsAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}/checkpoints")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        HttpTranslation.AnswerAsync(request, ct => api.CheckpointsAsync(client, id, ct));

    /// <summary><c>GET /api/runs/{id}/checkpoints/{round}/model</c>: the round's model (<c>latest</c> for the newest), checked against its manifest.</summary>
    [Function(GetRunModel)]
    public Task<HttpResponseData> GetRunModelAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{id}/checkpoints/{round}/model")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id,
        string round) =>
        HttpTranslation.AnswerAsync(request, ct => api.ModelAsync(client, id, round, ct));
}
