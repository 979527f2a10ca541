using System.Text.Json;
using System.Text.Json.Nodes;
using FederatedFunctions.Adapters.Silos;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>Reads and merges the local silo registry file (<c>{"Silos": {"silo-1": {...}}}</c>), which doubles as host configuration.</summary>
public static class SiloRegistryFile
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    /// <summary>Adds or replaces entries, keeping the others.</summary>
    public static async Task MergeAsync(string path, IReadOnlyDictionary<string, SiloEndpoint> entries, CancellationToken cancellationToken)
    {
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
            silos[id] = JsonSerializer.SerializeToNode(new
            {
                entry.BlobServiceUri,
                entry.Container,
                Credential = entry.Credential.ToString(),
                entry.SasToken,
                entry.ConnectionString,
                entry.ManagedIdentityClientId,
            });
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var tmp = path + ".tmp";
        await File.WriteAllTextAsync(tmp, root.ToJsonString(Options), cancellationToken).ConfigureAwait(false);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(tmp, path, overwrite: true);
    }
}
