namespace FederatedFunctions.Core;

/// <summary>Reads started beside a step that must decide first: the step's own failure wins, and nothing is left running unobserved.</summary>
public static class Concurrent
{
    /// <summary>
    /// Starts <paramref name="read"/> so that whatever it throws, even before its first await, is the task's fault: a read
    /// started beside a check fails only when awaited, after the check.
    /// </summary>
    public static async Task<T> Begin<T>(Func<Task<T>> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        return await read().ConfigureAwait(false);
    }

    /// <summary>
    /// <paramref name="first"/>'s result; when <paramref name="first"/> fails, its exception once <paramref name="alongside"/>,
    /// started beside it, has ended too, with a fault of <paramref name="alongside"/> observed rather than left to the finalizer.
    /// </summary>
    public static Task<T> AfterAsync<T>(Task<T> first, Task alongside) => AfterAsync(first, alongside, stopAlongside: null);

    /// <summary>
    /// As <see cref="AfterAsync{T}(Task{T}, Task)"/>, and when <paramref name="first"/> fails, <paramref name="stopAlongside"/>
    /// (the token <paramref name="alongside"/> was started with) is cancelled first: a large download started beside a
    /// check that failed stops, rather than running to its end before the check's error is reported.
    /// </summary>
    public static async Task<T> AfterAsync<T>(Task<T> first, Task alongside, CancellationTokenSource? stopAlongside)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(alongside);
        try
        {
            return await first.ConfigureAwait(false);
        }
        catch
        {
            if (stopAlongside is not null)
            {
                // A callback that throws while the token is cancelled must not replace first's exception either.
                await Observed(stopAlongside.CancelAsync()).ConfigureAwait(false);
            }

            // The caller sees first's exception; a fault of alongside is observed, not left to the finalizer.
            await Observed(alongside).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// A task that ends when <paramref name="task"/> (if any) has ended, whatever its outcome, and never faults: a fault of
    /// <paramref name="task"/> is marked observed, for work whose failure is not the caller's to report.
    /// </summary>
    public static Task Observed(Task? task) =>
        task?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default) ?? Task.CompletedTask;
}
