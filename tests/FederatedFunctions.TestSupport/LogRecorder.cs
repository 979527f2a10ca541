using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.TestSupport;

/// <summary>One event a <see cref="LogRecorder"/> recorded.</summary>
/// <param name="Category">The logger's category (the full name of the class that logged).</param>
/// <param name="EventId">The event id.</param>
/// <param name="Level">The level.</param>
/// <param name="Message">The formatted message.</param>
public sealed record LoggedEvent(string Category, int EventId, LogLevel Level, string Message);

/// <summary>A logger provider that records every event written through it, at every level.</summary>
/// <remarks>Add it to a host's services (<c>AddSingleton&lt;ILoggerProvider&gt;</c>) or to a logger factory; it owns nothing to dispose.</remarks>
public sealed class LogRecorder : ILoggerProvider
{
    private readonly ConcurrentQueue<LoggedEvent> events = new();

    /// <summary>The events so far, in the order they were written.</summary>
    public IReadOnlyList<LoggedEvent> Events => [.. events];

    /// <summary>The events written by <typeparamref name="T"/>'s logger.</summary>
    public IReadOnlyList<LoggedEvent> Of<T>() => [.. events.Where(e => e.Category == typeof(T).FullName)];

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Recorder(events, categoryName);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class Recorder(ConcurrentQueue<LoggedEvent> events, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            events.Enqueue(new LoggedEvent(category, eventId.Id, logLevel, formatter(state, exception)));
    }
}
