using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using FederatedFunctions.Adapters.Silos;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>Reads and merges the local silo registry file (<c>{"Silos": {"silo-1": {...}}}</c>), which doubles as host configuration, and writes silos' credential files.</summary>
public static class SiloRegistryFile
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Adds or replaces entries, keeping the others.</summary>
    public static async Task MergeAsync(string path, IReadOnlyDictionary<string, SiloEndpoint> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        JsonObject root = File.Exists(path)
            ? JsonNode.Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)) as JsonObject ?? []
            : [];
        if (root[SiloRegistryOptions.Section] is not JsonObject silos)
        {
            silos = [];
            root[SiloRegistryOptions.Section] = silos;
        }

        foreach (var (id, entry) in entries)
        {
            silos[id] = JsonSerializer.SerializeToNode(entry, Options);
        }

        await WritePrivateAsync(path, root.ToJsonString(Options), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes a silo's credential file, readable by its owner only.</summary>
    public static Task WriteCredentialsAsync(string path, SiloCredentialFile credentials, CancellationToken cancellationToken) =>
        WritePrivateAsync(path, JsonSerializer.Serialize(credentials, Options), cancellationToken);

    /// <summary>Reads a silo's credential file.</summary>
    /// <exception cref="InvalidOperationException">It is not a credential file.</exception>
    public static async Task<SiloCredentialFile> ReadCredentialsAsync(string path, CancellationToken cancellationToken) =>
        JsonSerializer.Deserialize<SiloCredentialFile>(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false), Options)
            ?? throw new InvalidOperationException($"'{path}' is not a silo credential file.");

    private static async Task WritePrivateAsync(string path, string text, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var tmp = path + ".tmp";
        await File.WriteAllTextAsync(tmp, text, cancellationToken).ConfigureAwait(false);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(tmp, path, overwrite: true);
    }
}
