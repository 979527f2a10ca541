// Aggregation-activity benchmark: the service the aggregation activity runs (AggregationService, composed as the hosts
// compose it: blob checkpoint store, silo update store over each silo's outbox credential, TorchSharp engine), on a fresh
// Azurite. For each K and P: K silos' updates of P float32 parameters are uploaded to their outboxes, then one round is
// aggregated (the global model read, K updates downloaded and SHA-256-checked, the weighted mean computed, the model
// written back). The time is the median of three rounds; GB/s counts the bytes read and written, (K + 2) · P · 4.
//
//   scripts/bench.sh activity
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Azure.Storage.Blobs;
using FederatedFunctions.Adapters;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Workflow;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

var ci = CultureInfo.InvariantCulture;
var root = args.Length > 0 ? args[0] : Workspace.Open().RepositoryRoot;
using var azurite = await Azurite.StartChildAsync(Azurite.FindExecutable(root), dataDirectory: null);
var account = new BlobServiceClient(azurite.Endpoint.ConnectionString);
var rows = new List<string>();
foreach (var p in new[] { 1_000_000, 10_000_000 })
{
    foreach (var k in new[] { 2, 8 })
    {
        var silos = Enumerable.Range(0, k).Select(i => string.Create(ci, $"bench-{p / 1_000_000}m-{k}-{i}")).ToArray();
        var provisioned = await LocalSiloProvisioner.ProvisionAsync(account, silos, TimeSpan.FromHours(2));
        var settings = LocalSiloProvisioner.ToSettings(provisioned);
        settings["Storage:ConnectionString"] = azurite.Endpoint.ConnectionString;
        var services = new ServiceCollection().AddLogging().AddFederatedWorkflow()
            .AddFederatedAdapters(new ConfigurationBuilder().AddInMemoryCollection(settings).Build())
            .BuildServiceProvider();
        var checkpoints = services.GetRequiredService<ICheckpointStore>();
        var runId = string.Create(ci, $"bench-{p}-{k}");
        var global = await checkpoints.PutModelAsync(LocalSiloProvisioner.CheckpointContainer, runId, 0, Safetensors.Serialize([Tensor(p, 0)]), firstWriterWins: false, default);
        var updates = new List<SiloUpdate>();
        for (var i = 0; i < k; i++)
        {
            var bytes = Safetensors.Serialize([Tensor(p, i + 1)]);
            var blob = LocalSiloProvisioner.OutboxContainer(provisioned[silos[i]]).GetBlobClient($"outbox/{runId}/round-1/update.safetensors");
            await blob.UploadAsync(new BinaryData(bytes), overwrite: true);
            updates.Add(new SiloUpdate(silos[i], 1, new BlobRef(blob.Uri.GetLeftPart(UriPartial.Path), Hashing.Sha256Hex(bytes), bytes.Length), 100 + i, 0.5, null));
        }

        var service = services.GetRequiredService<AggregationService>();
        var request = new AggregateRequest(runId, 1, LocalSiloProvisioner.CheckpointContainer, new StrategySpec(), global, updates);
        await service.AggregateAsync(request, default); // warm-up
        var times = new double[3];
        for (var r = 0; r < times.Length; r++)
        {
            var watch = Stopwatch.StartNew();
            await service.AggregateAsync(request, default);
            times[r] = watch.Elapsed.TotalMilliseconds;
        }

        Array.Sort(times);
        var ms = times[1];
        var gb = (k + 2) * (double)p * 4 / 1e9;
        rows.Add(string.Create(ci, $"| {k} | {p:N0} | {ms:0} | {gb / (ms / 1e3):0.00} | {ms / k:0} |"));
        Console.Error.WriteLine(rows[^1]);
        await services.DisposeAsync();
    }
}

Console.WriteLine(string.Create(ci, $"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; Azurite in memory, over loopback HTTP."));
Console.WriteLine();
Console.WriteLine("| K | P (float32) | activity time (ms) | GB/s, (K + 2) · P · 4 bytes | ms per update |");
Console.WriteLine("|---:|---:|---:|---:|---:|");
rows.ForEach(Console.WriteLine);
return 0;

static NamedTensor Tensor(int p, int seed)
{
    var values = new float[p];
    var random = new Random(seed);
    for (var i = 0; i < p; i++)
    {
        values[i] = (float)random.NextDouble();
    }

    return new NamedTensor("w", TensorDType.F32, [p], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
}
