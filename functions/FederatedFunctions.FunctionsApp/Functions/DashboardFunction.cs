using FederatedFunctions.Api.Dashboard;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;

namespace FederatedFunctions.FunctionsApp.Functions;

/// <summary>
/// <c>GET /api/dashboard</c>: the dashboard page, behind the function key like every route (open it as
/// <c>/api/dashboard?code=KEY</c>; the page sends the same key with each API call it makes).
/// </summary>
public static class DashboardFunction
{
    /// <summary>Function name, as the host and its settings know it.</summary>
    public const string Name = "Dashboard";

    /// <summary>The page.</summary>
    [Function(Name)]
    public static Task<HttpResponseData> RunAsync([HttpTrigger(AuthorizationLevel.Function, "get", Route = "dashboard")] HttpRequestData request) =>
        HttpTranslation.AnswerAsync(request, _ => Task.FromResult(DashboardPage.Response()));
}
