using Azure;
using Azure.Data.Tables;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>The partition count of a task hub on the Azure Storage backend, which every host of the hub must agree on.</summary>
/// <remarks>
/// DurableTask.AzureStorage fixes a task hub's partition count (its number of control queues) when it creates the hub, and
/// keeps one row per control queue in the hub's partition table. A host started with another count routes orchestration
/// messages to other queues than the workers read.
/// So the local host reads the count of an existing hub and uses it, and refuses a different one asked for explicitly.
/// </remarks>
public static class TaskHubPartitions
{
    /// <summary>Most partitions DurableTask.AzureStorage supports.</summary>
    public const int Max = 16;

    /// <summary>The count a new hub gets when none is asked for.</summary>
    public const int Default = 1;

    /// <summary>The existing hub's partition count, or null when the hub does not exist yet.</summary>
    /// <remarks>Read from the hub's partition table (<c>{hub}Partitions</c>, one row per control queue), where the backend's
    /// table partition manager keeps its leases.</remarks>
    public static async Task<int?> ReadAsync(string connectionString, string taskHub, CancellationToken cancellationToken)
    {
        var table = new TableClient(connectionString, taskHub + "Partitions");
        try
        {
            var count = 0;
            await foreach (var _ in table.QueryAsync<TableEntity>(select: ["RowKey"], cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                count++;
            }

            return count == 0 ? null : count;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    /// <summary>The count to start a host of <paramref name="taskHub"/> with: the existing hub's, else <paramref name="requested"/> or <see cref="Default"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="requested"/> is out of range, or differs from the existing hub's count.</exception>
    public static async Task<int> ResolveAsync(string connectionString, string taskHub, int? requested, CancellationToken cancellationToken)
    {
        if (requested is < 1 or > Max)
        {
            throw new ArgumentException($"A task hub has 1 to {Max} partitions; got {requested}.");
        }

        var existing = await ReadAsync(connectionString, taskHub, cancellationToken).ConfigureAwait(false);
        if (existing is { } count && requested is { } asked && asked != count)
        {
            throw new ArgumentException(
                $"Task hub '{taskHub}' already exists with {count} partition(s); a hub's partition count is fixed when it is created. " +
                $"Leave --partitions out to join it, or use a new task hub (FL_TASK_HUB) for {asked}.");
        }

        return existing ?? requested ?? Default;
    }
}
