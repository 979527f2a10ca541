using FederatedFunctions.Api;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>The analyses HTTP API. Every function needs a function key; each only translates HTTP for <see cref="AnalysesApi"/>.</summary>
public sealed class AnalysesHttpFunctions(AnalysesApi api)
{
    /// <summary>Function names, as the host and its settings know them.</summary>
    public const string StartAnalysis = nameof(StartAnalysis), ListAnalyses = nameof(ListAnalyses), GetAnalysis = nameof(GetAnalysis);

    /// <summary><c>POST /api/analyses</c>.</summary>
    [Function(StartAnalysis)]
    public Task<HttpResponseData> StartAnalysisAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "analyses")] HttpRequestData request,
        [DurableClient] DurableTaskClient client) =>
        HttpTranslation.StartAsync(request, client, AnalysesApi.MaxBodyBytes, api.StartFromHttpAsync);

    /// <summary><c>GET /api/analyses</c>.</summary>
    [Function(ListAnalyses)]
    public Task<HttpResponseData> ListAnalysesAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "analyses")] HttpRequestData request,
        [DurableClient] DurableTaskClient client) =>
        HttpTranslation.AnswerAsync(request, ct => api.ListAsync(client, request.Query["status"], request.Query["pageSize"], request.Query["continuationToken"], ct));

    /// <summary><c>GET /api/analyses/{id}</c>: its status, then its result.</summary>
    [Function(GetAnalysis)]
    public Task<HttpResponseData> GetAnalysisAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "analyses/{id}")] HttpRequestData request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        HttpTranslation.AnswerAsync(request, ct => api.GetAsync(client, id, ct));
}
