using System.Text.Json;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Configuration;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>The root host.json and local.settings.sample.json are the app's real configuration: check they say what the code needs.</summary>
public sealed class ConfigurationFilesTests
{
    private static JsonElement Read(string name) => JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, name))).RootElement;

    [Fact]
    public void HostJson_ConfiguresTheDurableTaskHubOnAzureStorage()
    {
        var host = Read("host.json");
        Assert.Equal("2.0", host.GetProperty("version").GetString());
        var durable = host.GetProperty("extensions").GetProperty("durableTask");
        Assert.Equal("%DURABLE_TASK_HUB%", durable.GetProperty("hubName").GetString());
        Assert.Equal("AzureStorage", durable.GetProperty("storageProvider").GetProperty("type").GetString());
        Assert.Equal("AzureWebJobsStorage", durable.GetProperty("storageProvider").GetProperty("connectionStringName").GetString());
        Assert.InRange(durable.GetProperty("maxConcurrentActivityFunctions").GetInt32(), 1, 4);
        Assert.False(durable.GetProperty("tracing").GetProperty("traceInputsAndOutputs").GetBoolean());
        Assert.True(host.GetProperty("logging").GetProperty("logLevel").TryGetProperty("FederatedFunctions", out _));
    }

    [Fact]
    public void HostJson_IsCopiedIntoTheAppOutput()
    {
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var copied = Path.Combine(RepositoryPaths.Root, "functions", "FederatedFunctions.FunctionsApp", "bin", configuration, "net10.0", "host.json");
        Assert.Equal(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json")), File.ReadAllText(copied));
    }

    [Fact]
    public void LocalSettings_AreCopiedIntoTheAppOutput_TheSampleWhenThereIsNoLocalFile()
    {
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var copied = Path.Combine(RepositoryPaths.Root, "functions", "FederatedFunctions.FunctionsApp", "bin", configuration, "net10.0", "local.settings.json");
        var own = Path.Combine(RepositoryPaths.Root, "local.settings.json");
        var source = File.Exists(own) ? own : Path.Combine(RepositoryPaths.Root, "local.settings.sample.json");
        Assert.Equal(File.ReadAllText(source), File.ReadAllText(copied));
    }

    [Fact]
    public void LocalSettingsSample_HasTheRuntimeStorageScheduleAndSilos()
    {
        var values = Read("local.settings.sample.json").GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal("UseDevelopmentStorage=true", values["AzureWebJobsStorage"]);
        Assert.Equal("dotnet-isolated", values["FUNCTIONS_WORKER_RUNTIME"]);
        Assert.False(string.IsNullOrEmpty(values["DURABLE_TASK_HUB"]));

        // NCRONTAB with seconds: six fields.
        Assert.Equal(6, values["RECURRING_SCHEDULE"]!.Split(' ').Length);

        // The one setting that turns the timer off names the function.
        Assert.True(values.ContainsKey($"AzureWebJobs.{RecurringTrainingFunction.Name}.Disabled"));

        // App settings use "__" for sections; bound the way the host binds them, they form a usable silo registry.
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(kv => new KeyValuePair<string, string?>(kv.Key.Replace("__", ":", StringComparison.Ordinal), kv.Value)))
            .Build();
        var registry = new SiloRegistryOptions();
        config.GetSection(SiloRegistryOptions.Section).Bind(registry.Silos);

        // A dataset's privacy budget, bound as the adapters bind it; a spec names it in lower case.
        var analysis = config.GetSection(Workflow.Services.AnalysisOptions.Section).Get<Workflow.Services.AnalysisOptions>()!;
        Assert.True(analysis.Budgets.TryGetValue("adult", out var budget), string.Join(", ", analysis.Budgets.Keys));
        Assert.Equal((3.0, "data/adult.csv"), (budget!.Epsilon, budget.Path));
        Assert.Equal(["silo-1", "silo-2", "silo-3", "silo-4"], registry.Silos.Keys.Order());
        Assert.All(registry.Silos, kv =>
        {
            Assert.Equal(kv.Key, kv.Value.Container);
            Assert.Equal("silo-" + kv.Key[^1], SiloRegistry.Create(kv.Key, kv.Value).Name);
        });
    }
}
