using System.Globalization;
using FederatedFunctions.Core.Specs;
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
    /// <remarks>Instances of other orchestrators are left out of the page after the backend returned it, so a page may hold fewer than <paramref name="pageSize"/>.</remarks>
    public static async Task<ApiResponse> ListAsync<TItem>(
        DurableTaskClient client,
        string orchestrator,
        string? status,
        string? pageSize,
        string? continuationToken,
        Func<OrchestrationMetadata, TItem> item,
        Func<IReadOnlyList<TItem>, string?, object> page,
        CancellationToken cancellationToken)
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
            FetchInputsAndOutputs = true,
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

    private static async Task<ApiResponse> PageAsync<TItem>(DurableTaskClient client, OrchestrationQuery query, string orchestrator, Func<OrchestrationMetadata, TItem> item, Func<IReadOnlyList<TItem>, string?, object> page, CancellationToken cancellationToken)
    {
        await foreach (var p in client.GetAllInstancesAsync(query).AsPages(query.ContinuationToken, query.PageSize).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var items = p.Values.Where(m => m.Name == orchestrator).Select(item).ToArray();
            return new ApiResponse(200, page(items, string.IsNullOrEmpty(p.ContinuationToken) ? null : PageTokens.Encode(p.ContinuationToken)));
        }

        return new ApiResponse(200, page([], null));
    }
}
