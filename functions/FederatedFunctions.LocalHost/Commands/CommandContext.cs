using System.Text.Json;
using FederatedFunctions.LocalHost.Hosting;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary>What every command shares: the workspace, the output writers and the logger factory.</summary>
public sealed class CommandContext(TextWriter output, TextWriter error)
{
    /// <summary>JSON for <c>--json</c> output: camelCase, one line.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Standard output.</summary>
    public TextWriter Output => output;

    /// <summary>Standard error.</summary>
    public TextWriter Error => error;

    /// <summary>Waits until the command is stopped (Ctrl+C or SIGTERM), says so, and returns exit code 0.</summary>
    public async Task<int> RunUntilStoppedAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await output.WriteLineAsync("Stopping.").ConfigureAwait(false);
        }

        return 0;
    }

    /// <summary>Opens the workspace.</summary>
    public static Workspace Workspace() => Hosting.Workspace.Open();

    /// <summary>Warnings and errors of the hosts go to standard error; <c>FL_LOG_LEVEL</c> lowers the level.</summary>
    /// <param name="more">More providers or filters (fl worker's activity lines).</param>
    public static ILoggerFactory CreateLoggerFactory(Action<ILoggingBuilder>? more = null)
    {
        var level = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("FL_LOG_LEVEL"), ignoreCase: true, out var l) ? l : LogLevel.Warning;
        return LoggerFactory.Create(b =>
        {
            b.SetMinimumLevel(level)
            .AddFilter("Microsoft.AspNetCore", LogLevel.Warning)
            .AddFilter("Grpc", LogLevel.Warning)
            .AddFilter("DurableTask", level > LogLevel.Warning ? level : LogLevel.Warning)
            .AddFilter("Microsoft.DurableTask", level > LogLevel.Warning ? level : LogLevel.Warning)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            })
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            more?.Invoke(b);
        });
    }
}
