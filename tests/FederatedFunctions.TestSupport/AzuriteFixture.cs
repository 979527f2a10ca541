using Azure.Storage.Blobs;
using FederatedFunctions.LocalHost.Local;

namespace FederatedFunctions.TestSupport;

/// <summary>A real Azurite on free ports, in-memory persistence, started once per test collection and killed afterwards.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private AzuriteChild? child;

    /// <summary>The running endpoint.</summary>
    public AzuriteEndpoint Endpoint => child?.Endpoint ?? throw new InvalidOperationException("Azurite is not started.");

    /// <summary>Its connection string.</summary>
    public string ConnectionString => Endpoint.ConnectionString;

    /// <summary>A blob client with the account key.</summary>
    public BlobServiceClient Blobs => new(ConnectionString);

    /// <inheritdoc />
    public async Task InitializeAsync() =>
        child = await Azurite.StartChildAsync(Azurite.FindExecutable(RepositoryPaths.Root), dataDirectory: null);

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        child?.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>Name of the per-assembly collection that shares one Azurite (xunit needs the definition in each test assembly).</summary>
public static class AzuriteCollectionName
{
    /// <summary>Collection name.</summary>
    public const string Value = "azurite";
}

/// <summary>Paths inside the repository.</summary>
public static class RepositoryPaths
{
    /// <summary>The repository root (holds FederatedFunctions.sln).</summary>
    public static string Root { get; } = Find();

    /// <summary>A real dataset from Debian's python3-sklearn package, which <c>scripts/setup.sh datasets</c> fetches and checks.</summary>
    /// <exception cref="FileNotFoundException">The dataset is not there: the setup did not run.</exception>
    public static string Dataset(string file)
    {
        var path = Path.Combine(Root, "tools", "datasets", "sklearn", file);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: run scripts/setup.sh datasets (./scripts/test.sh runs it).", path);
    }

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "FederatedFunctions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find FederatedFunctions.sln above " + AppContext.BaseDirectory);
    }
}

/// <summary>A temporary folder deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>Creates it.</summary>
    public TempDirectory() => Directory.CreateDirectory(Path);

    /// <summary>Its path.</summary>
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fl-test-" + Guid.NewGuid().ToString("N")[..8]);

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
