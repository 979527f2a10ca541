using System.Globalization;
using FederatedFunctions.Core.Specs;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api;

/// <summary>The list routes (<c>GET /api/runs</c>, <c>GET /api/analyses</c>): one page of one orchestrator's instances, filtered by status.</summary>
internal static class InstanceLists
{
    /// <summary>Largest page size.</summary>
    public const int MaxPageSize = 100;

    /// <summary>
    /// One page of <paramref name="orchestrator"/>'s instances. A bad <paramref name="status"/>, <paramref name="pageSize"/> or
    /// <paramref name="continuationToken"/> is a 400 naming the query parameter.
    /// </summary>
    /// <remarks>Instances of other orchestrators are skipped: backend pages are read until the page holds <paramref name="pageSize"/> items, the backend has no more, or 20 backend pages were read (then the page is short, and its token goes on from there).</remarks>
    public static async Task<ApiResponse> ListAsync<TItem>(
        DurableTaskClient client,
        string orchestrator,
        string? status,
        string? pageSize,
        string? continuationToken,
        Func<OrchestrationMetadata, TItem> item,
        Func<IReadOnlyList<TItem>, string?, object> page,
        CancellationToken cancellationToken,
        bool fetchInputs = true)
    {
        ArgumentNullException.ThrowIfNull(client);
        var size = 20;
        if (pageSize is not null && (!int.TryParse(pageSize, NumberStyles.None, CultureInfo.InvariantCulture, out size) || size < 1 || size > MaxPageSize))
        {
            return RunsApi.InvalidQuery("pageSize", "range", $"pageSize must be an integer from 1 to {MaxPageSize}; got {SpecPath.Quote(pageSize)}.");
        }

        List<OrchestrationRuntimeStatus>? statuses = null;
        if (!string.IsNullOrEmpty(status))
        {
            statuses = [];
            foreach (var s in status.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!Enum.TryParse<OrchestrationRuntimeStatus>(s, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed) || int.TryParse(s, out _))
                {
                    return RunsApi.InvalidQuery("status", "enum", $"Unknown status {SpecPath.Quote(s)}. Use {string.Join(", ", Enum.GetNames<OrchestrationRuntimeStatus>())}.");
                }

                statuses.Add(parsed);
            }
        }

        string? backendToken = null;
        if (!string.IsNullOrEmpty(continuationToken) && !PageTokens.TryDecode(continuationToken, out backendToken))
        {
            return RunsApi.InvalidQuery("continuationToken", "token", "continuationToken is not a token this API issued; pass back the continuationToken of the previous page, or omit it for the first page.");
        }

        var query = new OrchestrationQuery
        {
            Statuses = statuses,
            PageSize = size,
            ContinuationToken = backendToken,
            FetchInputsAndOutputs = fetchInputs,
        };
        try
        {
            return await PageAsync(client, query, orchestrator, item, page, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (backendToken is not null && !cancellationToken.IsCancellationRequested)
        {
            // Well-formed but refused by the backend (edited by hand, or from another task hub)? The first page tells a bad
            // token from a backend that is down: if it fails too, the original error stands.
            await PageAsync(client, query with { ContinuationToken = null }, orchestrator, item, page, cancellationToken).ConfigureAwait(false);
            return RunsApi.InvalidQuery("continuationToken", "token", "continuationToken was not accepted by the durable backend; omit it to start from the first page.");
        }
    }

    // Backend pages read for one page of this API at most: other orchestrators' instances (a run's silo jobs, say) are
    // skipped without ending the page early, within this bound.
    private const int MaxBackendPages = 20;

    private static async Task<ApiResponse> PageAsync<TItem>(DurableTaskClient client, OrchestrationQuery query, string orchestrator, Func<OrchestrationMetadata, TItem> item, Func<IReadOnlyList<TItem>, string?, object> page, CancellationToken cancellationToken)
    {
        var items = new List<TItem>();
        var token = query.ContinuationToken;
        for (var read = 0; read < MaxBackendPages && items.Count < query.PageSize; read++)
        {
            var size = query.PageSize - items.Count;
            Page<OrchestrationMetadata>? backend = null;
            await foreach (var p in client.GetAllInstancesAsync(query with { ContinuationToken = token, PageSize = size }).AsPages(token, size).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                backend = p;
                break;
            }

            items.AddRange((backend?.Values ?? []).Where(m => m.Name == orchestrator).Select(item));
            token = string.IsNullOrEmpty(backend?.ContinuationToken) ? null : backend.ContinuationToken;
            if (token is null)
            {
                break;
            }
        }

        return new ApiResponse(200, page(items, token is null ? null : PageTokens.Encode(token)));
    }
}
