// Simulation benchmark (issue 14): virtual silos through the durable orchestrator, against the same training in one plain loop.
//
//   scripts/bench.sh simulation          the 1,000-virtual-silo rounds, then the FLUTE-shaped run (100 rounds)
//   scripts/bench.sh simulation 20       the same with a FLUTE-shaped run of 20 rounds
//
// Each workload gets a fresh Azurite holding one host silo, and a local host (in-memory durable backend) over it.
// 1. Rounds of 1,000 virtual silos that do almost no work (2 rows each of 4 features, logistic regression), all sampled,
//    100 per silo step, as a durable run: when each round was committed, and the plain loop's time. Run first, they
//    also warm up the code both measurements below use.
// 2. A FLUTE-shaped workload: logistic regression on MNIST-shaped synthetic data (60,000 train and 10,000 test rows of 784
//    features, 10 classes) partitioned IID into 1,000 virtual silos; 10 sampled a round, one local epoch of batch 10
//    each, FedAvg, evaluated every 10 rounds on the 10,000 test rows. A cold pair, then five warm ones, each first the
//    same training in one plain loop (the same data read from the same blob by the same reader, the same partition and
//    samples, LocalTrainer for each virtual silo, the same weighted mean (StreamingAggregator), the same evaluations, no
//    durable step and no blob), then the run as `fl train` runs it (the silo's own credential, every update, checkpoint,
//    manifest and audit entry in Azurite). Both read and parse the splits in the cold pair only (the silo caches them, and so does the
//    loop); the medians are those of the warm pairs. Both start from the same seeded model; the final models are compared
//    bit for bit (exit code 1 if they differ).
// Storage__RecentBlobsMiB=0 in the environment turns the host's memory of the blobs it wrote off (docs/performance.md).
using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

var ci = CultureInfo.InvariantCulture;
var rounds = args.Length > 0 ? int.Parse(args[0], ci) : 100;
var root = args.Length > 1 ? args[1] : Workspace.Open().RepositoryRoot;
// The FLUTE-shaped workload's cold pair (pair 0) reads and parses the splits, and runs while the JIT still compiles the
// host's code in the background (a core of this 2-core machine for 20 s and more): it is reported, not compared.
const int WarmPairs = 5;
Console.WriteLine(string.Create(ci, $"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, TorchSharp threads {TorchRuntime.ThreadCount}."));

var flute = new RunSpec
{
    RunId = "flute-shaped",
    Model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 784 },
    Data = new DataSpec { Format = DataFormats.Safetensors, Train = "data/train.safetensors", Test = "data/test.safetensors", Classes = 10 },
    Training = new TrainingSpec { Rounds = rounds, LocalEpochs = 1, BatchSize = 10, LearningRate = 0.03, Optimizer = Optimizers.Sgd, Seed = 5 },
    Silos = ["mnist-like"],
    Simulation = new SimulationSpec { VirtualSilos = 1000, Split = SimulationSplits.Iid, Seed = 7, PerStep = 100 },
    Participation = new ParticipationSpec { SampleCount = 10 },
    Evaluation = new EvaluationSpec { EveryRounds = 10 },
};
var tiny = new RunSpec
{
    RunId = "thousand-tiny",
    Model = new ModelSpec { Architecture = ModelArchitectures.LogisticRegression, Inputs = 4 },
    Data = new DataSpec { Format = DataFormats.Safetensors, Train = "data/train.safetensors", Test = "data/test.safetensors", Classes = 3 },
    Training = new TrainingSpec { Rounds = 3, LocalEpochs = 1, BatchSize = 2, LearningRate = 0.05, Seed = 5 },
    Silos = ["tiny"],
    Simulation = new SimulationSpec { VirtualSilos = 1000, Split = SimulationSplits.Iid, Seed = 7, PerStep = 100 },
    Participation = new ParticipationSpec { SampleCount = 1000 },
    Evaluation = new EvaluationSpec { EveryRounds = 0 },
};

// Each workload gets a fresh Azurite: Azurite keeps working in the background after thousands of blobs (half a core
// here), which would slow whatever runs next. The plain loop runs first, while its Azurite is idle.

// 1. Rounds of 1,000 virtual silos that do almost no work (first: they also warm up every path both measurements use).
await using (var scenario = await Scenario.StartAsync(root, SyntheticData.Generate(new SyntheticOptions(1, Classes: 3, Features: 4, TrainPerSilo: 2_000, TestPerSilo: 100, DirichletAlpha: null, Seed: 3))[0] with { SiloId = "tiny" }))
{
    var thousand = await scenario.TimedRunAsync(tiny);
    var (tinyPlain, _, _) = await scenario.PlainLoopAsync(tiny, await scenario.ModelAsync(tiny.RunId!, 0));
    var committed = (await scenario.Store.ListAsync("checkpoints", tiny.RunId!, default)).Skip(1).Select(m => m.CreatedAt).ToArray();
    Console.WriteLine(string.Create(ci, $"1,000 virtual silos of 2 rows each, all sampled, 100 per silo step, {tiny.Training.Rounds} rounds: durable run {thousand.Seconds:0.00} s (start-up and the first data read included); plain loop {tinyPlain:0.00} s."));
    Console.WriteLine(string.Create(ci, $"Rounds committed at (s after the first): {string.Join(", ", committed.Select(t => (t - committed[0]).TotalSeconds.ToString("0.00", ci)))}"));
}

// 2. The FLUTE-shaped training, six times each, alternating: the plain loop from the run's seeded initial model, then
//    the durable run. Medians of the five warm pairs are compared: Azurite's own background work after large uploads and
//    many writes, and the JIT's, make single measurements vary by up to 2x on this machine.
await using (var scenario = await Scenario.StartAsync(root, SyntheticData.Generate(new SyntheticOptions(1, Classes: 10, Features: 784, TrainPerSilo: 60_000, TestPerSilo: 10_000, DirichletAlpha: null, Seed: 3))[0] with { SiloId = "mnist-like" }))
{
    var initial = Scenario.InitialModel(flute);
    var plainTimes = new List<double>();
    var durableTimes = new List<double>();
    var identical = true;
    double? accuracy = null;
    (double Plain, double Durable) cold = default;
    for (var i = 0; i <= WarmPairs; i++)
    {
        var (plainSeconds, plainModel, plainAccuracy) = await scenario.PlainLoopAsync(flute, initial);
        var spec = flute with { RunId = $"flute-shaped-{i}" };
        var durable = await scenario.TimedRunAsync(spec);
        identical &= Same(initial, await scenario.ModelAsync(spec.RunId!, 0)) && Same(await scenario.ModelAsync(spec.RunId!, rounds), plainModel) && durable.Accuracy == plainAccuracy;
        accuracy = plainAccuracy;
        Console.Error.WriteLine(string.Create(ci, $"pair {i}{(i == 0 ? " (cold)" : string.Empty)}: plain loop {plainSeconds:0.00} s, durable run {durable.Seconds:0.00} s"));
        if (i == 0)
        {
            cold = (plainSeconds, durable.Seconds);
            continue;
        }

        plainTimes.Add(plainSeconds);
        durableTimes.Add(durable.Seconds);
    }

    var (plain, run) = (Median(plainTimes), Median(durableTimes));
    Console.WriteLine();
    Console.WriteLine(string.Create(ci, $"FLUTE-shaped: 1,000 virtual silos (IID, 60 rows each), 10 a round, {rounds} rounds, logistic regression 784→10, batch 10, evaluated every 10 rounds on 10,000 rows; a cold pair, then {WarmPairs} warm ones, alternating."));
    Console.WriteLine($"| | wall, median of the {WarmPairs} warm (s) | each warm (s) | per round (ms) | cold (s) | final accuracy |");
    Console.WriteLine("|---|---:|---|---:|---:|---:|");
    Console.WriteLine(string.Create(ci, $"| durable run (in-memory backend, Azurite blobs) | {run:0.00} | {string.Join(", ", durableTimes.Select(t => t.ToString("0.00", ci)))} | {1000 * run / rounds:0} | {cold.Durable:0.00} | {accuracy:P2} |"));
    Console.WriteLine(string.Create(ci, $"| plain loop (same data read, training, means, evaluations) | {plain:0.00} | {string.Join(", ", plainTimes.Select(t => t.ToString("0.00", ci)))} | {1000 * plain / rounds:0} | {cold.Plain:0.00} | {accuracy:P2} |"));
    Console.WriteLine(string.Create(ci, $"Ratio of the medians, durable ÷ plain: {run / plain:0.00}. Same initial model, bit-identical final models and equal accuracy in every pair: {(identical ? "yes" : "NO")}."));
    return identical ? 0 : 1;
}

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static bool Same(IReadOnlyList<NamedTensor> a, IReadOnlyList<NamedTensor> b) =>
    a.Count == b.Count && a.Zip(b).All(p => p.First.Name == p.Second.Name && p.First.Data.Span.SequenceEqual(p.Second.Data.Span));

/// <summary>One host silo holding a dataset in a fresh Azurite, and a local host (in-memory durable backend) over it.</summary>
internal sealed class Scenario : IAsyncDisposable
{
    private readonly AzuriteChild azurite;
    private readonly LocalDurableHost host;
    private readonly ProvisionedSilo silo;
    private (TabularData Train, TabularData Test)? splits;

    private Scenario(AzuriteChild azurite, LocalDurableHost host, ProvisionedSilo silo)
    {
        this.azurite = azurite;
        this.host = host;
        this.silo = silo;
    }

    public ICheckpointStore Store => host.Services.GetRequiredService<ICheckpointStore>();

    public static async Task<Scenario> StartAsync(string root, SiloDataset data)
    {
        var azurite = await Azurite.StartChildAsync(Azurite.FindExecutable(root), dataDirectory: null);
        var entries = await LocalSiloProvisioner.ProvisionAsync(new Azure.Storage.Blobs.BlobServiceClient(azurite.Endpoint.ConnectionString), [data.SiloId], TimeSpan.FromDays(2));
        await LocalSiloProvisioner.WriteSplitsAsync(entries[data.SiloId], data, DataFormats.Safetensors);
        var settings = LocalSiloProvisioner.ToSettings(entries);
        settings["Storage:ConnectionString"] = azurite.Endpoint.ConnectionString;
        // Storage__RecentBlobsMiB=0 runs the host without its memory of what it wrote, for a comparison in one binary.
        if (Environment.GetEnvironmentVariable("Storage__RecentBlobsMiB") is { Length: > 0 } recent)
        {
            settings["Storage:RecentBlobsMiB"] = recent;
        }
        var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
        {
            Backend = DurableBackendKind.InMemory,
            Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
        });
        return new Scenario(azurite, host, entries[data.SiloId]);
    }

    /// <summary>The seeded round-0 model a run of <paramref name="spec"/> starts from, made as the run makes it.</summary>
    public static IReadOnlyList<NamedTensor> InitialModel(RunSpec spec) =>
        ModelFactory.InitialState(spec.Model, RunSpecValidator.ResolveInputs(spec), spec.Data.Classes, spec.Training.Seed);

    public async Task<(double Seconds, double? Accuracy)> TimedRunAsync(RunSpec spec)
    {
        var stopwatch = Stopwatch.StartNew();
        var report = await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId!, "inmemory", default);
        return (stopwatch.Elapsed.TotalSeconds, report.FinalAccuracy);
    }

    public async Task<IReadOnlyList<NamedTensor>> ModelAsync(string runId, int round)
    {
        var manifest = await Store.GetManifestAsync("checkpoints", runId, round, default) ?? throw new InvalidOperationException($"{runId} has no round {round}.");
        return Safetensors.Parse((await Store.ReadModelAsync(manifest.Model, default)).ToArray()).Tensors;
    }

    // The same training without the durable engine or any blob after the data: read and parse the splits as a silo does,
    // partition, sample, train each sampled virtual silo, take the weighted mean in silo-id order, evaluate as the run does.
    public async Task<(double Seconds, IReadOnlyList<NamedTensor> Model, double? Accuracy)> PlainLoopAsync(RunSpec spec, IReadOnlyList<NamedTensor> global)
    {
        var stopwatch = Stopwatch.StartNew();
        var container = LocalSiloProvisioner.DataContainer(silo);
        async Task<TabularData> ReadAsync(string path)
        {
            await using var stream = await container.GetBlobClient(path).OpenReadAsync();
            return await TensorDataReader.ReadAsync(stream, spec.Data, spec.Model.Inputs!.Value, silo.Id);
        }

        // Read once, as the silo's cache reads them once.
        splits ??= (await ReadAsync(spec.Data.Train), await ReadAsync(spec.Data.Test));
        var (train, test) = splits.Value;
        var parts = VirtualPartition.Split(train.Labels, spec.Data.Classes, spec.Simulation!);
        var participants = VirtualSilos.Participants(spec);
        double? accuracy = null;
        for (var round = 1; round <= spec.Training.Rounds; round++)
        {
            var sampled = ParticipationPolicy.SampleVirtual(participants, spec.Participation, spec.Training.Seed, round).Order(VirtualSilos.IdOrder).ToArray();
            var results = sampled.Select(id =>
            {
                VirtualSilos.TryParse(id, out _, out var index);
                return LocalTrainer.Train(spec.Model, spec.Training, spec.Data.Classes, global, train.Select(parts[index - 1]), round, id);
            }).ToArray();
            var weights = WeightedMath.NormalisedWeights(results.Select(r => r.Examples).ToArray());
            using var mean = new StreamingAggregator(global);
            for (var i = 0; i < results.Length; i++)
            {
                mean.Add(results[i].State, weights[i]);
            }

            global = mean.Result();
            if (TrainingOrchestrator.IsEvaluationRound(spec, round))
            {
                var scored = LocalTrainer.Evaluate(spec.Model, spec.Data.Classes, global, test);
                accuracy = (double)scored.Correct / scored.Examples;
            }
        }

        return (stopwatch.Elapsed.TotalSeconds, global, accuracy);
    }

    public async ValueTask DisposeAsync()
    {
        await host.DisposeAsync();
        azurite.Dispose();
    }
}
