using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>Writes one line per activity this process starts (the Durable Task worker's event 603), for <c>fl worker</c>.</summary>
/// <remarks>The line names the activity and its orchestration instance (a run id or a silo job), never its input.</remarks>
public sealed class ActivityLog(TextWriter output, string worker) : ILoggerProvider
{
    /// <summary>The Durable Task worker's "activity started" event.</summary>
    public const int ActivityStarted = 603;

    /// <summary>The category the worker logs activities under.</summary>
    public const string Category = "Microsoft.DurableTask.Worker.Activities";

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => categoryName == Category ? new Writer(output, worker) : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class Writer(TextWriter output, string worker) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == ActivityStarted)
            {
                lock (output)
                {
                    output.WriteLine($"worker {worker}: {formatter(state, exception)}");
                    output.Flush();
                }
            }
        }
    }
}
