// Simulation benchmark (issue 14): virtual silos through the durable orchestrator, against the same training in one plain loop.
//
//   scripts/bench.sh simulation          the FLUTE-shaped run (100 rounds) and the 1,000-virtual-silo rounds
//   scripts/bench.sh simulation 20       the FLUTE-shaped run with 20 rounds
//
// 1. Rounds of 1,000 virtual silos that do almost no work (2 rows each of 4 features, logistic regression), all sampled,
//    100 per silo step, as a durable run: each round's time, and the plain loop's. Run first, they also warm up the code
//    both measurements below use.
// 2. A FLUTE-shaped workload: logistic regression on MNIST-shaped synthetic data (60,000 train and 10,000 test rows of 784
//    features, 10 classes) in one host silo on Azurite, partitioned IID into 1,000 virtual silos; 10 sampled a round, one
//    local epoch of batch 10 each, FedAvg, evaluated every 10 rounds on the 10,000 test rows. It runs as `fl train` runs
//    it (the local host, in-memory durable backend, the silo's own credential, every update, checkpoint, manifest and audit
//    entry in Azurite), then the same training runs in one plain loop: the same data read from the same blob, the same
//    partition and samples, LocalTrainer for each virtual silo, the same weighted mean (StreamingAggregator), the same
//    evaluations, no durable step and no blob. Both final models are compared bit for bit.
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
using var azurite = await Azurite.StartChildAsync(Azurite.FindExecutable(root), dataDirectory: null);
var blobs = new Azure.Storage.Blobs.BlobServiceClient(azurite.Endpoint.ConnectionString);
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

var datasets = new[]
{
    SyntheticData.Generate(new SyntheticOptions(1, Classes: 10, Features: 784, TrainPerSilo: 60_000, TestPerSilo: 10_000, DirichletAlpha: null, Seed: 3))[0] with { SiloId = "mnist-like" },
    SyntheticData.Generate(new SyntheticOptions(1, Classes: 3, Features: 4, TrainPerSilo: 2_000, TestPerSilo: 100, DirichletAlpha: null, Seed: 3))[0] with { SiloId = "tiny" },
};
var entries = await LocalSiloProvisioner.ProvisionAsync(blobs, datasets.Select(d => d.SiloId).ToArray(), TimeSpan.FromDays(2));
var settings = LocalSiloProvisioner.ToSettings(entries);
settings["Storage:ConnectionString"] = azurite.Endpoint.ConnectionString;
foreach (var d in datasets)
{
    await LocalSiloProvisioner.WriteSplitsAsync(entries[d.SiloId], d, DataFormats.Safetensors);
}

await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions
{
    Backend = DurableBackendKind.InMemory,
    Configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build(),
});
var store = host.Services.GetRequiredService<ICheckpointStore>();

// 1. Rounds of 1,000 virtual silos that do almost no work (first: they also warm up every path both measurements use).
var thousand = await TimedRunAsync(tiny);
var tinyInitial = await ModelAsync(tiny.RunId!, 0);
var (tinyPlain, _, _) = await PlainLoopAsync(tiny, entries[tiny.Silos[0]], tinyInitial);
var roundSeconds = (await store.ListAsync("checkpoints", tiny.RunId!, default)).Skip(1).Select(m => m.CreatedAt).ToArray();
Console.WriteLine(string.Create(ci, $"1,000 virtual silos of 2 rows each, all sampled, 100 per silo step, {tiny.Training.Rounds} rounds: durable run {thousand.Seconds:0.00} s ({thousand.Seconds / tiny.Training.Rounds:0.00} s a round, start-up and the first data read included); plain loop {tinyPlain:0.00} s."));
Console.WriteLine(string.Create(ci, $"Rounds committed at (s after the first): {string.Join(", ", roundSeconds.Select(t => (t - roundSeconds[0]).TotalSeconds.ToString("0.00", ci)))}"));
Console.WriteLine();
// 2. The FLUTE-shaped run, then the plain loop.
var durable = await TimedRunAsync(flute);
var initial = await ModelAsync(flute.RunId!, 0);
var (plainSeconds, plainModel, plainAccuracy) = await PlainLoopAsync(flute, entries[flute.Silos[0]], initial);
var federatedModel = await ModelAsync(flute.RunId!, rounds);
var identical = federatedModel.Zip(plainModel).All(p => p.First.Name == p.Second.Name && p.First.Data.Span.SequenceEqual(p.Second.Data.Span));
Console.WriteLine();
Console.WriteLine(string.Create(ci, $"FLUTE-shaped: 1,000 virtual silos (IID, 60 rows each), 10 a round, {rounds} rounds, logistic regression 784→10, batch 10, evaluated every 10 rounds on 10,000 rows."));
Console.WriteLine("| | wall (s) | per round (ms) | final accuracy |");
Console.WriteLine("|---|---:|---:|---:|");
Console.WriteLine(string.Create(ci, $"| durable run (in-memory backend, Azurite blobs) | {durable.Seconds:0.00} | {1000 * durable.Seconds / rounds:0} | {durable.Accuracy:P2} |"));
Console.WriteLine(string.Create(ci, $"| plain loop (same data read, training, means, evaluations) | {plainSeconds:0.00} | {1000 * plainSeconds / rounds:0} | {plainAccuracy:P2} |"));
Console.WriteLine(string.Create(ci, $"Ratio durable ÷ plain: {durable.Seconds / plainSeconds:0.00}. Final models bit-identical: {(identical ? "yes" : "NO")}."));

return identical ? 0 : 1;

async Task<(double Seconds, double? Accuracy)> TimedRunAsync(RunSpec spec)
{
    var stopwatch = Stopwatch.StartNew();
    var report = await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId!, "inmemory", default);
    return (stopwatch.Elapsed.TotalSeconds, report.FinalAccuracy);
}

async Task<IReadOnlyList<NamedTensor>> ModelAsync(string runId, int round)
{
    var manifest = await store.GetManifestAsync("checkpoints", runId, round, default) ?? throw new InvalidOperationException($"{runId} has no round {round}.");
    return Safetensors.Parse((await store.ReadModelAsync(manifest.Model, default)).ToArray()).Tensors;
}

// The same training without the durable engine or any blob after the data: read and parse the splits as a silo does,
// partition, sample, train each sampled virtual silo, take the weighted mean in silo-id order, evaluate as the run does.
async Task<(double Seconds, IReadOnlyList<NamedTensor> Model, double? Accuracy)> PlainLoopAsync(RunSpec spec, ProvisionedSilo silo, IReadOnlyList<NamedTensor> global)
{
    var stopwatch = Stopwatch.StartNew();
    var container = LocalSiloProvisioner.DataContainer(silo);
    async Task<TabularData> ReadAsync(string path)
    {
        await using var stream = await container.GetBlobClient(path).OpenReadAsync();
        return await TensorDataReader.ReadAsync(stream, spec.Data, spec.Model.Inputs!.Value, silo.Id);
    }

    var train = await ReadAsync(spec.Data.Train);
    var test = await ReadAsync(spec.Data.Test);
    Console.Error.WriteLine(string.Create(ci, $"plain loop {spec.RunId}: the splits read in {stopwatch.Elapsed.TotalSeconds:0.00} s"));
    var parts = VirtualPartition.Split(train.Labels, spec.Data.Classes, spec.Simulation!);
    var participants = VirtualSilos.Participants(spec);
    double? accuracy = null;
    for (var round = 1; round <= spec.Training.Rounds; round++)
    {
        var sampled = ParticipationPolicy.SampleVirtual(participants, spec.Participation, spec.Training.Seed, round).Order(StringComparer.Ordinal).ToArray();
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
