using System.Globalization;
using System.Text;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Silo;
using FederatedFunctions.TestSupport;
using Microsoft.DurableTask.Client;
using static FederatedFunctions.Workflow.Tests.Orchestration.TrainingOrchestratorTests;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>Federated feature standardization: computed by the analysis path before round 1, recorded in round 0, applied in every silo.</summary>
public sealed class StandardizationTests
{
    private static readonly string[] Features = Enumerable.Range(0, 8).Select(i => "x" + i.ToString(CultureInfo.InvariantCulture)).ToArray();

    private static double[] TrainColumn(Harness h, string column)
    {
        var values = new List<double>();
        foreach (var silo in Data)
        {
            var lines = Encoding.UTF8.GetString(h.Blobs.Items[$"mem://{silo.SiloId}/data/train.csv"]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var j = Array.IndexOf(lines[0].Split(','), column);
            values.AddRange(lines.Skip(1).Select(l => double.Parse(l.Split(',')[j], CultureInfo.InvariantCulture)));
        }

        return values.ToArray();
    }

    [Fact]
    public async Task Run_WithStandardize_RecordsTheFederatedMeanAndStddevOfTheTrainSplitsInRoundZero()
    {
        await using var h = await new Harness().StartAsync();
        var spec = Spec("std-run", rounds: 2) with { Data = new DataSpec { Classes = 4, Features = Features, Standardize = true } };

        var meta = await h.RunAsync(spec);

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        var round0 = await h.Store.GetManifestAsync("checkpoints", "std-run", 0, default);
        var standardization = round0!.Standardization!;
        for (var i = 0; i < Features.Length; i++)
        {
            var x = TrainColumn(h, Features[i]);
            var mean = x.Average();
            var stddev = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / (x.Length - 1));
            Assert.True(Math.Abs(mean - standardization.Mean[i]) <= 1e-9 * Math.Max(1, Math.Abs(mean)), $"{Features[i]} mean: central {mean:R}, federated {standardization.Mean[i]:R}");
            Assert.True(Math.Abs(stddev - standardization.Stddev[i]) <= 1e-9 * stddev, $"{Features[i]} stddev: central {stddev:R}, federated {standardization.Stddev[i]:R}");
        }

        // The analysis ran under its own id beside the run, with an audit entry per partial.
        Assert.NotNull(await h.Store.GetDocumentAsync("checkpoints", BlobLayout.AnalysisResult(StandardizationAnalysis.Id("std-run")), default));
        Assert.Equal(Data.Count, Core.Audit.AuditLog.Parse(await h.Store.ReadAuditAsync("checkpoints", StandardizationAnalysis.Id("std-run"), 1, default)).Count);

        // Later rounds' manifests carry none: the run has one standardization, round 0's.
        Assert.Null((await h.Store.GetManifestAsync("checkpoints", "std-run", 1, default))!.Standardization);
    }

    [Fact]
    public async Task SiloDataCache_WithAStandardization_GivesEachFeatureMinusItsMeanOverItsStddev()
    {
        var blobs = new InMemoryBlobs();
        blobs.Items["mem://s1/data/train.csv"] = "a,b,label\n1,10,0\n3,30,1\n"u8.ToArray();
        var storage = new InMemorySiloStorage(blobs, "s1", new InMemoryCheckpointStore(blobs));
        var data = new DataSpec { Classes = 2, Features = ["a", "b"], Standardization = new FeatureStandardization([2, 20], [1, 10]) };
        var cache = new SiloDataCache();

        var table = await cache.ReadAsync(storage, data, "data/train.csv", 2, default);
        var plain = await cache.ReadAsync(storage, data with { Standardization = null }, "data/train.csv", 2, default);

        Assert.Equal([-1f, -1f, 1f, 1f], table.Features);
        Assert.Equal([1f, 10f, 3f, 30f], plain.Features);

        // The values follow data.features' order, not the file's.
        var reordered = await cache.ReadAsync(storage, data with { Features = ["b", "a"], Standardization = new FeatureStandardization([20, 2], [10, 2]) }, "data/train.csv", 2, default);
        Assert.Equal([-1f, -0.5f, 1f, 0.5f], reordered.Features);
    }
}
