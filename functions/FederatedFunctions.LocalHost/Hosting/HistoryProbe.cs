using Azure.Data.Tables;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>What the Azure Storage backend holds in its History table for one orchestration instance.</summary>
/// <param name="Rows">History rows of the instance, every execution together.</param>
/// <param name="Executions">Distinct executions (generations) that still have rows.</param>
/// <param name="LargestExecutionRows">Rows of the largest execution.</param>
/// <param name="Bytes">Approximate stored size: the UTF-16 length of every string property, in bytes.</param>
public sealed record HistorySize(int Rows, int Executions, int LargestExecutionRows, long Bytes);

/// <summary>Measures the durable history of an instance straight from the task hub's History table.</summary>
/// <remarks>
/// Used to show that <c>ContinueAsNew</c> keeps history bounded however many rounds a run has: it reads the
/// table, not the SDK's view, so it measures what storage really keeps.
/// </remarks>
public sealed class HistoryProbe(string connectionString, string taskHub)
{
    private readonly TableClient table = new(connectionString, taskHub + "History");

    /// <summary>The instance's history as stored now.</summary>
    public async Task<HistorySize> MeasureAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        var rows = 0;
        long bytes = 0;
        var perExecution = new Dictionary<string, int>(StringComparer.Ordinal);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {instanceId}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            rows++;
            foreach (var value in ((IDictionary<string, object>)entity).Values)
            {
                bytes += value is string s ? s.Length * 2L : 8;
            }

            var execution = entity.GetString("ExecutionId") ?? string.Empty;
            perExecution[execution] = perExecution.GetValueOrDefault(execution) + 1;
        }

        return new HistorySize(rows, perExecution.Count, perExecution.Count == 0 ? 0 : perExecution.Values.Max(), bytes);
    }
}
