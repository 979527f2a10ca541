// Long-run benchmark: one run of many rounds (500 by default) on the durable Azure Storage backend (Azurite),
// continuing as new every 10 rounds. Every 25 rounds it records the instance's stored history (straight from the
// task hub's History table) and the host's memory (managed heap after a full collection, and RSS).
//
//   scripts/bench.sh long            500 rounds
//   scripts/bench.sh long 100        100 rounds
using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

var ci = CultureInfo.InvariantCulture;
var rounds = args.Length > 0 ? int.Parse(args[0], ci) : 500;
var root = args.Length > 1 ? args[1] : Workspace.Open().RepositoryRoot;
using var azurite = await Azurite.StartChildAsync(Azurite.FindExecutable(root), dataDirectory: null);
var blobs = new Azure.Storage.Blobs.BlobServiceClient(azurite.Endpoint.ConnectionString);

var data = SyntheticData.Generate(new SyntheticOptions(2, 3, 4, 60, 20, null, 7));
var entries = await LocalSiloProvisioner.ProvisionAsync(blobs, data.Select(d => d.SiloId).ToArray(), TimeSpan.FromDays(2));
var settings = LocalSiloProvisioner.ToSettings(entries);
settings["Storage:ConnectionString"] = azurite.Endpoint.ConnectionString;
foreach (var d in data)
{
    await LocalSiloProvisioner.WriteSplitsAsync(entries[d.SiloId], d);
}

const string hub = "fllongrun";
await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
{
    Backend = DurableBackendKind.AzureStorage,
    DurableStorageConnectionString = azurite.Endpoint.ConnectionString,
    TaskHub = hub,
    Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
    MaxQueuePollingInterval = TimeSpan.FromMilliseconds(100),
});
var spec = new RunSpec
{
    RunId = "long-run",
    Model = new ModelSpec { Inputs = 4 },
    Data = new DataSpec { Classes = 3 },
    Training = new TrainingSpec { Rounds = rounds },
    Silos = data.Select(d => d.SiloId).ToArray(),
    Evaluation = new EvaluationSpec { EveryRounds = 0 },
    Orchestration = new OrchestrationSpec { RoundsPerInstance = 10 },
};

var probe = new HistoryProbe(azurite.Endpoint.ConnectionString, hub);
var store = host.Services.GetRequiredService<ICheckpointStore>();
var stopwatch = Stopwatch.StartNew();
var run = new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId, "azurestorage", default);
var samples = new List<(int Round, HistorySize History, double HeapMiB, double RssMiB, double Seconds)>();
var largest = new HistorySize(0, 0, 0, 0);
var next = 25;
while (!run.IsCompleted)
{
    var history = await probe.MeasureAsync(spec.RunId);
    if (history.Rows > largest.Rows)
    {
        largest = history;
    }

    var round = (await store.GetLatestAsync("checkpoints", spec.RunId, default))?.Round ?? 0;
    if (round >= next)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        samples.Add((round, history, GC.GetTotalMemory(forceFullCollection: true) / 1048576.0, Rss(), stopwatch.Elapsed.TotalSeconds));
        Console.Error.WriteLine(string.Create(ci, $"round {round}: history {history.Rows} rows, {history.Bytes / 1024.0:0} KiB; heap {samples[^1].HeapMiB:0.0} MiB, RSS {samples[^1].RssMiB:0} MiB, {stopwatch.Elapsed.TotalSeconds:0} s"));
        next = round - round % 25 + 25;
    }

    await Task.Delay(250);
}

var report = await run;
Console.WriteLine(string.Create(ci, $"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}. {report.Rounds} rounds, 10 per instance, 2 silos, in {stopwatch.Elapsed.TotalSeconds:0} s ({stopwatch.Elapsed.TotalSeconds / report.Rounds:0.00} s a round)."));
Console.WriteLine(string.Create(ci, $"Largest stored history of the instance: {largest.Rows} rows, about {largest.Bytes / 1024.0:0} KiB ({largest.Executions} execution(s) at that moment)."));
Console.WriteLine();
Console.WriteLine("| round | history rows | history KiB | managed heap (MiB) | RSS (MiB) | elapsed (s) |");
Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
foreach (var s in samples)
{
    Console.WriteLine(string.Create(ci, $"| {s.Round} | {s.History.Rows} | {s.History.Bytes / 1024.0:0} | {s.HeapMiB:0.0} | {s.RssMiB:0} | {s.Seconds:0} |"));
}

return 0;

static double Rss()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
    }

    return double.NaN;
}
