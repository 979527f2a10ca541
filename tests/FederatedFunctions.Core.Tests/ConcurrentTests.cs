using FederatedFunctions.Core;

namespace FederatedFunctions.Core.Tests;

public sealed class ConcurrentTests
{
    [Fact]
    public async Task Begin_AReadThatThrowsBeforeItsFirstAwait_FaultsItsTaskInsteadOfThrowing()
    {
        static Task<int> Throws() => throw new InvalidOperationException("no grant");

        var read = Concurrent.Begin(Throws);

        Assert.True(read.IsFaulted);
        Assert.Equal("no grant", (await Assert.ThrowsAsync<InvalidOperationException>(() => read)).Message);
    }

    [Fact]
    public async Task AfterAsync_FirstFails_ThrowsItsExceptionOnlyOnceTheOtherHasEnded_AndObservesTheOthersFault()
    {
        var alongside = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var after = Concurrent.AfterAsync(Task.FromException<int>(new InvalidDataException("bad data")), alongside.Task);

        await Task.Delay(50);
        Assert.False(after.IsCompleted);
        alongside.SetException(new IOException("download failed"));

        Assert.Equal("bad data", (await Assert.ThrowsAsync<InvalidDataException>(() => after)).Message);
        Assert.True(alongside.Task.IsFaulted);
    }

    [Fact]
    public async Task AfterAsync_FirstFailsWithAStopForTheOther_CancelsTheOtherAndThrowsFirstsException()
    {
        // A download that would run until cancelled, beside a check that fails.
        using var stop = new CancellationTokenSource();
        var download = Task.Delay(Timeout.InfiniteTimeSpan, stop.Token).ContinueWith(_ => 0, stop.Token, TaskContinuationOptions.None, TaskScheduler.Default);
        var after = Concurrent.AfterAsync(Task.FromException<int>(new InvalidDataException("bad data")), download, stop);

        Assert.Equal("bad data", (await Assert.ThrowsAsync<InvalidDataException>(() => after.WaitAsync(TimeSpan.FromSeconds(30)))).Message);
        Assert.True(download.IsCanceled);
    }

    [Fact]
    public async Task AfterAsync_FirstSucceeds_LeavesTheOthersStopAlone()
    {
        using var stop = new CancellationTokenSource();

        Assert.Equal(7, await Concurrent.AfterAsync(Task.FromResult(7), Task.CompletedTask, stop));
        Assert.False(stop.IsCancellationRequested);
    }

    [Fact]
    public async Task Observed_AFaultedOrCancelledTaskOrNone_EndsWithoutThrowingOnceTheTaskHasEnded()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var observed = Concurrent.Observed(running.Task);
        Assert.False(observed.IsCompleted);

        running.SetException(new IOException("download failed"));
        await observed;
        await Concurrent.Observed(Task.FromCanceled(new CancellationToken(canceled: true)));
        Assert.True(Concurrent.Observed(null).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task AfterAsync_FirstSucceeds_ReturnsItsResultWithoutWaitingForTheOther()
    {
        var alongside = new TaskCompletionSource<int>();

        Assert.Equal(7, await Concurrent.AfterAsync(Task.FromResult(7), alongside.Task));
        Assert.False(alongside.Task.IsCompleted);
    }
}
