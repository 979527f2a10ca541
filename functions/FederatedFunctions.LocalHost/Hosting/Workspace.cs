using FederatedFunctions.LocalHost.Local;
using Microsoft.Extensions.Configuration;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>Where the local host keeps its state, and how it reaches storage.</summary>
/// <remarks>
/// State lives in <c>$FL_HOME</c>, default <c>.fl/</c> at the repository root: the silo registry
/// (<c>silos.json</c>, which holds SAS tokens and is git-ignored), the local Azurite's data and record, and specs
/// the demo writes. Storage is <c>$FL_STORAGE</c> (a connection string) when set, else the workspace's own Azurite,
/// started on demand and left running for the next command (<c>fl azurite stop</c> stops it).
/// </remarks>
public sealed class Workspace
{
    private Workspace(string root, string home)
    {
        RepositoryRoot = root;
        Home = home;
        Directory.CreateDirectory(home);
    }

    /// <summary>The repository root (holds FederatedFunctions.sln and tools/).</summary>
    public string RepositoryRoot { get; }

    /// <summary>The state folder.</summary>
    public string Home { get; }

    /// <summary>The local silo registry file.</summary>
    public string SiloRegistryPath => Path.Combine(Home, "silos.json");

    /// <summary>A silo's own credential file, which only its runner opens (the <c>process</c> compute).</summary>
    public string SiloCredentialPath(string siloId) => Path.Combine(Home, "silo-credentials", siloId + ".json");

    /// <summary>Where the <c>process</c> compute keeps its jobs' process records, statuses and logs.</summary>
    public string JobsDirectory => Path.Combine(Home, "jobs");

    /// <summary>The command that starts this build's silo runner: <c>dotnet fl.dll</c>, or the <c>fl</c> executable.</summary>
    public static IReadOnlyList<string> RunnerCommand
    {
        get
        {
            var host = Environment.ProcessPath ?? "dotnet";
            var entry = typeof(Workspace).Assembly.Location;
            return Path.GetFileNameWithoutExtension(host) == "dotnet" ? [host, entry] : [host];
        }
    }

    /// <summary>Opens the workspace from the environment.</summary>
    public static Workspace Open()
    {
        var root = Environment.GetEnvironmentVariable("FL_ROOT");
        if (string.IsNullOrEmpty(root))
        {
            root = FindRoot(AppContext.BaseDirectory) ?? FindRoot(Directory.GetCurrentDirectory())
                ?? throw new InvalidOperationException("Cannot find the repository root (FederatedFunctions.sln); set FL_ROOT.");
        }

        var home = Environment.GetEnvironmentVariable("FL_HOME");
        return new Workspace(Path.GetFullPath(root), Path.GetFullPath(string.IsNullOrEmpty(home) ? Path.Combine(root, ".fl") : home));
    }

    /// <summary>The storage connection string: <c>$FL_STORAGE</c>, or the workspace's Azurite (started if needed).</summary>
    public async Task<string> StorageConnectionStringAsync(CancellationToken cancellationToken)
    {
        var configured = Environment.GetEnvironmentVariable("FL_STORAGE");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured;
        }

        var endpoint = await Azurite.EnsureDaemonAsync(Azurite.FindExecutable(RepositoryRoot), Home, cancellationToken).ConfigureAwait(false);
        return endpoint.ConnectionString;
    }

    /// <summary>The task hub of the azurestorage backend: <c>$FL_TASK_HUB</c>, or <c>flhub</c>.</summary>
    public static string TaskHub =>
        Environment.GetEnvironmentVariable("FL_TASK_HUB") is { Length: > 0 } hub ? hub : "flhub";

    /// <summary>
    /// How soon work in flight when a host died runs again on the azurestorage backend: <c>$FL_DURABLE_VISIBILITY_SECONDS</c>,
    /// or 30 s. Shorter recovers sooner after a crash; too short re-runs long activities that are still running.
    /// </summary>
    public static TimeSpan VisibilityTimeout =>
        int.TryParse(Environment.GetEnvironmentVariable("FL_DURABLE_VISIBILITY_SECONDS"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var s) && s is >= 1 and <= 3600
            ? TimeSpan.FromSeconds(s)
            : TimeSpan.FromSeconds(30);

    /// <summary>Host configuration: the silo registry file, then the storage connection, then <c>FL_</c> environment variables.</summary>
    public IConfiguration BuildConfiguration(string storageConnectionString) =>
        new ConfigurationBuilder()
            .AddJsonFile(SiloRegistryPath, optional: true, reloadOnChange: false)
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Storage:ConnectionString"] = storageConnectionString,
                ["Compute:Process:JobsDirectory"] = JobsDirectory,
            }.Concat(RunnerCommand.Select((arg, i) => new KeyValuePair<string, string?>($"Compute:Process:Runner:{i}", arg))))
            .AddEnvironmentVariables("FL_")
            .Build();

    private static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FederatedFunctions.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
