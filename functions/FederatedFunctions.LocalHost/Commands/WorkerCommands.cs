using System.CommandLine;
using System.Globalization;
using FederatedFunctions.LocalHost.Hosting;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary><c>fl worker</c>: one more process executing a task hub's orchestrations and activities.</summary>
internal static class WorkerCommands
{
    public static Command Worker(CommandContext ctx)
    {
        var partitions = new Option<int?>("--partitions")
        {
            Description = $"Partitions of a task hub this worker creates (1 to {TaskHubPartitions.Max}; {TaskHubPartitions.Default} by default): how many workers can run orchestrations at once. An existing hub keeps its own count.",
        };
        var activities = new Option<int>("--max-activities")
        {
            Description = "Activities (silo steps, aggregations) this worker runs at once; the rest stay queued for the other workers. Default: the core count.",
            DefaultValueFactory = _ => Math.Max(1, Environment.ProcessorCount),
        };
        var name = new Option<string?>("--name") { Description = "This worker's name in the task hub (its partition leases are held under it); default <machine>-<process id>." };
        var cmd = new Command(
            "worker",
            "Joins the workspace's task hub on the azurestorage backend (FL_TASK_HUB on the workspace's storage) and executes its orchestrations and activities until stopped; " +
            "start several, on this machine or others on the same storage, and the durable engine spreads the work over them. Prints one line per activity it runs.\n" +
            "Example: fl worker --partitions 4   (then, elsewhere: fl train --spec run.json --backend azurestorage --no-worker)")
        { partitions, activities, name };
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(activities) is < 1 or > 256)
            {
                await ctx.Error.WriteLineAsync($"error: --max-activities must be from 1 to 256; got {pr.GetValue(activities)}.").ConfigureAwait(false);
                return 2;
            }

            var ws = CommandContext.Workspace();
            var storage = await ws.StorageConnectionStringAsync(ct).ConfigureAwait(false);
            var worker = pr.GetValue(name) ?? string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}-{Environment.ProcessId}");
            using var loggers = CommandContext.CreateLoggerFactory(b => b
                .AddFilter<ActivityLog>(ActivityLog.Category, LogLevel.Information)
                .AddProvider(new ActivityLog(ctx.Output, worker)));
            LocalDurableHost host;
            try
            {
                host = await FlCommands.StartHostAsync(ws, storage, DurableBackendKind.AzureStorage, loggers, runWorker: true, ct, pr.GetValue(partitions), worker, pr.GetValue(activities)).ConfigureAwait(false);
            }
            catch (ArgumentException ex)
            {
                await ctx.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            await using var hostScope = host;
            await ctx.Output.WriteLineAsync($"Worker {worker} joined task hub '{Workspace.TaskHub}' ({host.PartitionCount} partition(s)). Ctrl+C stops it; its work in flight runs again elsewhere.").ConfigureAwait(false);
            await ctx.Output.FlushAsync(ct).ConfigureAwait(false);
            return await ctx.RunUntilStoppedAsync(ct).ConfigureAwait(false);
        });
        return cmd;
    }
}
