// Durable-step benchmark: what the durable engine itself costs on the local host (LocalDurableHost: the Durable Task
// sidecar, its orchestration service and the standard worker and client), with activities that do nothing.
//
//   step     one orchestration calls a no-op activity N times in a row; each interval between two consecutive activity
//            starts is one durable step (activity returned, orchestrator replayed and scheduled the next, activity started)
//   round    one orchestration per round, shaped like a training round: S silo steps fanned out and in, one aggregation
//            step, S evaluation steps fanned out and in, one commit step; the time from scheduling to completion
//
// On the in-memory backend, then on the Azure Storage backend (DurableTask.AzureStorage on a fresh Azurite), with the
// local host's own settings. Prints one markdown table; asserts nothing.
//
//   scripts/bench.sh durable
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;

var ci = CultureInfo.InvariantCulture;
var root = args.Length > 0 ? args[0] : Workspace.Open().RepositoryRoot;
var starts = new ConcurrentQueue<long>();
var rows = new List<string>();

await MeasureAsync("in-memory", new LocalDurableHostOptions { Configuration = Empty(), ConfigureTasks = Register });
using (var azurite = await Azurite.StartChildAsync(Azurite.FindExecutable(root), dataDirectory: null))
{
    // The local host's default longest poll of an empty queue, then a tenth of it.
    var defaults = new LocalDurableHostOptions { Configuration = Empty() };
    foreach (var poll in new[] { defaults.MaxQueuePollingInterval, defaults.MaxQueuePollingInterval / 10 })
    {
        await MeasureAsync(string.Create(ci, $"Azure Storage (Azurite), polls ≤ {poll.TotalMilliseconds:0} ms"), defaults with
        {
            Backend = DurableBackendKind.AzureStorage,
            DurableStorageConnectionString = azurite.Endpoint.ConnectionString,
            TaskHub = string.Create(ci, $"flsteps{poll.TotalMilliseconds:0}"),
            MaxQueuePollingInterval = poll,
            ConfigureTasks = Register,
        });
    }
}

Console.WriteLine(string.Create(ci, $"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}. Times are medians."));
Console.WriteLine();
Console.WriteLine("| backend | figure | median | p90 | samples |");
Console.WriteLine("|---|---|---:|---:|---:|");
rows.ForEach(Console.WriteLine);
return 0;

async Task MeasureAsync(string backend, LocalDurableHostOptions options)
{
    await using var host = await LocalDurableHost.StartAsync(options);
    var client = host.Client;

    // Warm-up: JIT, gRPC connections, the first queue polls.
    await RunAsync(client, "Steps", 20);
    await RunAsync(client, "Round", new RoundShape(10));

    starts.Clear();
    const int steps = 200;
    await RunAsync(client, "Steps", steps);
    var marks = starts.Order().ToArray();
    var intervals = marks.Zip(marks.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a, b).TotalMilliseconds).ToArray();
    rows.Add(Row(backend, "one durable step (no-op activity)", intervals, "ms"));

    // The Azure Storage backend takes about a minute for a 1,000-silo round on Azurite: measured once.
    var onAzurite = options.Backend == DurableBackendKind.AzureStorage;
    foreach (var (silos, repeats) in new[] { (10, 20), (100, 5), (1000, onAzurite ? 1 : 3) })
    {
        var rounds = new double[repeats];
        for (var i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            await RunAsync(client, "Round", new RoundShape(silos));
            rounds[i] = watch.Elapsed.TotalMilliseconds;
        }

        rows.Add(Row(backend, string.Create(ci, $"one round, {silos} silos that do no work ({2 * silos + 2} steps)"), rounds, "ms"));
    }

    // The same 10-silo round as a client sees it: WaitForInstanceCompletionAsync instead of polling here.
    var waited = new double[10];
    for (var i = 0; i < waited.Length; i++)
    {
        var watch = Stopwatch.StartNew();
        var id = await client.ScheduleNewOrchestrationInstanceAsync("Round", new RoundShape(10));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);
        waited[i] = watch.Elapsed.TotalMilliseconds;
    }

    rows.Add(Row(backend, "one round, 10 silos that do no work, waited for with WaitForInstanceCompletionAsync", waited, "ms"));
}

void Register(DurableTaskRegistry r)
{
    r.AddActivityFunc<int, int>("Noop", (_, i) =>
    {
        starts.Enqueue(Stopwatch.GetTimestamp());
        return i;
    });
    r.AddOrchestratorFunc<int, int>("Steps", async (context, n) =>
    {
        var sum = 0;
        for (var i = 0; i < n; i++)
        {
            sum += await context.CallActivityAsync<int>("Noop", i);
        }

        return sum;
    });
    r.AddOrchestratorFunc<RoundShape, int>("Round", async (context, shape) =>
    {
        var trained = await Task.WhenAll(Enumerable.Range(0, shape.Silos).Select(i => context.CallActivityAsync<int>("Noop", i)));
        var aggregate = await context.CallActivityAsync<int>("Noop", trained.Sum());
        var evaluated = await Task.WhenAll(Enumerable.Range(0, shape.Silos).Select(i => context.CallActivityAsync<int>("Noop", aggregate + i)));
        return await context.CallActivityAsync<int>("Noop", evaluated.Length);
    });
}

static async Task RunAsync(DurableTaskClient client, string name, object input)
{
    // Polled every 5 ms, so that the engine is measured rather than the client's wait (measured on its own row: the Azure
    // Storage backend's own wait polls every 2 s; the local host's SidecarStorageFix polls from 20 ms up to 1 s).
    var id = await client.ScheduleNewOrchestrationInstanceAsync(name, input);
    var deadline = DateTime.UtcNow.AddMinutes(10);
    OrchestrationMetadata? done;
    while ((done = await client.GetInstanceAsync(id, getInputsAndOutputs: false)) is not { IsCompleted: true })
    {
        if (DateTime.UtcNow > deadline)
        {
            throw new TimeoutException($"{name} did not complete in 10 minutes.");
        }

        await Task.Delay(5);
    }

    if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
    {
        throw new InvalidOperationException($"{name} ended {done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage}");
    }
}

string Row(string backend, string figure, double[] samples, string unit)
{
    Array.Sort(samples);
    var median = samples[samples.Length / 2];
    var p90 = samples[Math.Min(samples.Length - 1, (int)Math.Ceiling(samples.Length * 0.9) - 1)];
    return string.Create(ci, $"| {backend} | {figure} | {Format(median)} | {Format(p90)} | {samples.Length} |");
}

static string Format(double ms) => ms >= 1000 ? string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.00} s") : string.Create(CultureInfo.InvariantCulture, $"{ms:0.0} ms");

static IConfiguration Empty() => new ConfigurationBuilder().AddInMemoryCollection([new KeyValuePair<string, string?>("Storage:ConnectionString", "UseDevelopmentStorage=true")]).Build();

internal sealed record RoundShape(int Silos);
