using Microsoft.DurableTask.Client;

namespace FederatedFunctions.TestSupport;

/// <summary>The spec of a matrix run: id, rounds, privacy mode, the train file (null for the silos' own) and the checkpoint container (null for the default).</summary>
public delegate string MatrixSpec(string runId, int rounds, string mode, string? train, string? container);

/// <summary>The matrix runs' specs.</summary>
public static class MatrixSpecs
{
    /// <summary>A small MLP on <paramref name="silos"/> (8 features, <paramref name="classes"/> classes), one attempt per silo step, eyes-off aggregates over 2 silos.</summary>
    public static MatrixSpec For(IReadOnlyList<string> silos, int classes) => (id, rounds, mode, train, container) => System.Text.Json.JsonSerializer.Serialize(
        new
        {
            runId = id,
            model = new { architecture = "mlp", inputs = 8, hidden = new[] { 8 } },
            data = new { classes, train },
            training = new { rounds },
            silos,
            retry = new { maxAttempts = 1 },
            privacy = new { mode, minAggregateSilos = 2 },
            checkpoints = container is null ? null : new { container },
        },
        new System.Text.Json.JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull });
}

/// <summary>
/// Puts new runs into each <see cref="RunState"/> through a host's own API: <paramref name="start"/> and <paramref name="cancel"/>
/// call its start and cancel routes, and <paramref name="committed"/> counts a run's committed rounds through it.
/// </summary>
/// <param name="prefix">Run ids are <c>{prefix}-{state}-{n}</c>.</param>
/// <param name="client">The host's Durable client: it waits for statuses, purges, and reports <c>ContinuedAsNew</c> for the runs made in that state.</param>
/// <param name="spec">The spec of a run.</param>
/// <param name="start">Starts a run from a spec; throws unless accepted.</param>
/// <param name="cancel">Cancels a run; throws unless accepted.</param>
/// <param name="committed">A run's committed rounds.</param>
public sealed class RunStateMaker(string prefix, StatusOverridingClient client, MatrixSpec spec, Func<string, Task> start, Func<string, Task> cancel, Func<string, Task<int>> committed)
{
    private int next;

    /// <summary>A new run id, put into <paramref name="state"/>. A Pending run is made only once the host starts no new run.</summary>
    public async Task<string> CreateAsync(RunState state)
    {
        var id = $"{prefix}-{state.ToString().ToLowerInvariant()}-{Interlocked.Increment(ref next)}";
        const string EyesOn = "eyes-on";
        switch (state)
        {
            case RunState.Unknown:
                break;
            case RunState.Pending:
                await start(spec(id, 5, EyesOn, null, null));
                await WaitAsync(id, s => s == OrchestrationRuntimeStatus.Pending);
                break;
            case RunState.Running or RunState.ContinuedAsNew:
                await StartAndCommitAsync(id, spec(id, 10_000, EyesOn, null, null));
                if (state == RunState.ContinuedAsNew)
                {
#pragma warning disable CS0618 // the status a backend reports between two executions
                    client.Overrides[id] = OrchestrationRuntimeStatus.ContinuedAsNew;
#pragma warning restore CS0618
                }

                break;
            case RunState.Completed or RunState.Purged:
                await start(spec(id, 1, EyesOn, null, null));
                await WaitAsync(id, s => s == OrchestrationRuntimeStatus.Completed);
                if (state == RunState.Purged)
                {
                    Assert.Equal(1, (await client.PurgeInstanceAsync(id)).PurgedInstanceCount);
                }

                break;
            case RunState.FailedEyesOn or RunState.FailedEyesOff:
                await start(spec(id, 3, state == RunState.FailedEyesOff ? "eyes-off" : EyesOn, "data/missing.csv", null));
                await WaitAsync(id, s => s == OrchestrationRuntimeStatus.Failed);
                break;
            case RunState.Terminated or RunState.OtherContainer:
                await StartAndCommitAsync(id, spec(id, 10_000, EyesOn, null, state == RunState.OtherContainer ? RouteMatrix.OtherContainer : null));
                await cancel(id);
                await WaitAsync(id, s => s == OrchestrationRuntimeStatus.Terminated);
                break;
        }

        return id;
    }

    // Started, and its first round committed (so that it has a model to download).
    private async Task StartAndCommitAsync(string id, string json)
    {
        await start(json);
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (await committed(id) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{id} committed no round");
            await Task.Delay(100);
        }
    }

    private async Task WaitAsync(string id, Func<OrchestrationRuntimeStatus, bool> reached)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!((await client.GetInstanceAsync(id)) is { } meta && reached(meta.RuntimeStatus)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{id} did not reach its state");
            await Task.Delay(100);
        }
    }
}
