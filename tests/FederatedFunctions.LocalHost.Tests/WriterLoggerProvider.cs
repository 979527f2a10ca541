using System.Text;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>Writes every log line (category, message, exception) into one <see cref="StringBuilder"/>, under its lock.</summary>
/// <remarks>The logger factory's minimum level decides what is written; read the builder under its lock too.</remarks>
internal sealed class WriterLoggerProvider(StringBuilder writer) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new WriterLogger(writer, categoryName);

    public void Dispose()
    {
    }

    private sealed class WriterLogger(StringBuilder writer, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (writer)
            {
                writer.Append(category).Append(": ").Append(formatter(state, exception)).Append(' ').Append(exception).Append('\n');
            }
        }
    }
}
