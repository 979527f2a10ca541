using System.Text;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>The bad-input battery for silo data, end to end: each bad silo is refused by name, field and problem, and the run goes on.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class BadDataTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    private const string Marker = "7777.123";

    [Fact]
    public async Task Train_SilosWithEachKindOfBadData_AreRefusedNamingSiloAndFieldAndTheRunCompletes()
    {
        var (config, data) = await LocalSilos.CreateAsync(azurite, "bad", new SyntheticOptions(7, 3, 4, 80, 30, null, 12));
        var ids = data.Select(d => d.SiloId).ToArray();
        var registry = new SiloRegistry(new FixedSilos(config));
        var good = await DownloadAsync(registry, ids[0]);
        var lines = good.Split('\n');

        // One defect per silo; silos 1 and 2 stay good. Each expected fragment is what the error must name.
        var defects = new (string Silo, string Csv, string[] Names)[]
        {
            (ids[2], Replace(lines, row: 3, column: 1, "abc" + Marker), ["column", "row 3"]),
            (ids[3], Replace(lines, row: 2, column: -1, "99"), ["label", "row 2"]),
            (ids[4], string.Join('\n', lines.Select(l => string.Join(',', l.Split(',')[..^1]))), ["label"]),
            (ids[5], string.Empty, ["data/train.csv"]),
            (ids[6], lines[0] + "\n" + new string('1', 3 * 1024 * 1024) + "\n", ["row"]),
        };
        foreach (var (silo, csv, _) in defects)
        {
            await registry.GetContainer(silo).GetBlobClient("data/train.csv").UploadAsync(BinaryData.FromString(csv), overwrite: true);
        }

        var spec = new RunSpec
        {
            RunId = "bad-data-run",
            Model = new ModelSpec { Inputs = 4 },
            Data = new DataSpec { Classes = 3 },
            Training = new TrainingSpec { Rounds = 2 },
            Silos = ids,
            Participation = new ParticipationSpec { MinSilos = 2 },
            Retry = new RetrySpec { MaxAttempts = 2, FirstIntervalSeconds = 0.1 },
        };
        await using var host = await LocalDurableHost.StartAsync(new LocalDurableHostOptions { Configuration = config });
        var report = await new RunRunner(host, TextWriter.Null).RunAsync(spec, spec.RunId, "inmemory", default);

        Assert.Equal(2, report.Rounds);
        var manifests = await host.Services.GetRequiredService<ICheckpointStore>().ListAsync("checkpoints", spec.RunId, default);
        foreach (var manifest in manifests.Where(m => m.Round > 0))
        {
            Assert.Equal([ids[0], ids[1]], manifest.Participants.Select(p => p.SiloId).Order());
            foreach (var (silo, _, names) in defects)
            {
                var rejected = Assert.Single(manifest.Rejected, r => r.SiloId == silo);
                log.WriteLine($"{silo}: {rejected.Reason}: {rejected.Detail}");
                Assert.Equal("bad-data", rejected.Reason);
                Assert.Contains(silo, rejected.Detail, StringComparison.Ordinal);
                Assert.All(names, n => Assert.Contains(n, rejected.Detail, StringComparison.OrdinalIgnoreCase));
                Assert.DoesNotContain(Marker, rejected.Detail, StringComparison.Ordinal);
                Assert.True(rejected.Detail.Length < 600, "an error message must not echo the data");
            }
        }
    }

    private static string Replace(string[] lines, int row, int column, string value)
    {
        var copy = lines.ToArray();
        var cells = copy[row].Split(',');
        cells[column < 0 ? cells.Length + column : column] = value;
        copy[row] = string.Join(',', cells);
        return string.Join('\n', copy);
    }

    private static async Task<string> DownloadAsync(SiloRegistry registry, string silo) =>
        Encoding.UTF8.GetString((await registry.GetContainer(silo).GetBlobClient("data/train.csv").DownloadContentAsync()).Value.Content.ToArray()).Replace("\r", string.Empty, StringComparison.Ordinal).TrimEnd('\n');

    private sealed class FixedSilos(Microsoft.Extensions.Configuration.IConfiguration config) : Microsoft.Extensions.Options.IOptionsMonitor<SiloRegistryOptions>
    {
        public SiloRegistryOptions CurrentValue => Get(null);

        public SiloRegistryOptions Get(string? name)
        {
            var options = new SiloRegistryOptions();
            Microsoft.Extensions.Configuration.ConfigurationBinder.Bind(config.GetSection("Silos"), options.Silos);
            return options;
        }

        public IDisposable? OnChange(Action<SiloRegistryOptions, string?> listener) => null;
    }
}
