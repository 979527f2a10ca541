using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;

// The Bicep CLI package is the linux-x64 build: these tests run on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace FederatedFunctions.Infra.Tests;

/// <summary>The Bicep CLI from its NuGet package (restored with the solution), run on the templates under infra/.</summary>
internal static class Bicep
{
    private static string Metadata(string key) =>
        typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    /// <summary>The infra/ directory.</summary>
    public static string InfraDirectory { get; } = Path.GetFullPath(Metadata("InfraDirectory"));

    /// <summary>Every template and parameter file, relative to infra/.</summary>
    public static IEnumerable<string> Files(string extension) =>
        Directory.EnumerateFiles(InfraDirectory, "*." + extension, SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(InfraDirectory, f))
            .Order(StringComparer.Ordinal);

    private static string Cli()
    {
        var path = Metadata("BicepCli");
        Assert.True(File.Exists(path), $"The Bicep CLI is not at {path}: run scripts/setup.sh (it restores the solution).");
        var mode = File.GetUnixFileMode(path);
        if (!mode.HasFlag(UnixFileMode.UserExecute))
        {
            // The package does not keep the executable bit.
            File.SetUnixFileMode(path, mode | UnixFileMode.UserExecute);
        }

        return path;
    }

    /// <summary>Runs the CLI: its exit code and everything it printed.</summary>
    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo(Cli()) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = InfraDirectory };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        // Offline: no telemetry, no registry restore.
        start.Environment["BICEP_TELEMETRY_ENABLED"] = "false";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), $"bicep {string.Join(' ', args)} did not finish");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The compiled ARM template of a .bicep file.</summary>
    public static JsonObject Build(string file)
    {
        var (code, stdout, stderr) = Run("build", Path.Combine(InfraDirectory, file), "--stdout");
        Assert.True(code == 0, $"bicep build {file}: {stderr}");
        return JsonNode.Parse(stdout)!.AsObject();
    }

    /// <summary>The parameter values of a .bicepparam file.</summary>
    public static JsonObject Parameters(string file)
    {
        var (code, stdout, stderr) = Run("build-params", Path.Combine(InfraDirectory, file), "--stdout");
        Assert.True(code == 0, $"bicep build-params {file}: {stderr}");
        var parameters = JsonNode.Parse(JsonNode.Parse(stdout)!["parametersJson"]!.GetValue<string>())!["parameters"]!.AsObject();
        return new JsonObject(parameters.Select(p => KeyValuePair.Create(p.Key, p.Value!["value"]?.DeepClone())));
    }

    /// <summary>Every resource of a compiled template and of the templates of its modules, with the module path.</summary>
    public static IEnumerable<(string Module, JsonObject Resource, JsonObject Template)> Resources(JsonObject template, string module = "")
    {
        var resources = template["resources"] switch
        {
            JsonArray a => a.Select(r => r!.AsObject()),
            JsonObject o => o.Select(p => p.Value!.AsObject()),
            _ => [],
        };
        foreach (var resource in resources)
        {
            yield return (module, resource, template);
            if ((string?)resource["type"] == "Microsoft.Resources/deployments" && resource["properties"]?["template"] is JsonObject nested)
            {
                foreach (var inner in Resources(nested, module + "/" + (string?)resource["name"]))
                {
                    yield return inner;
                }
            }
        }
    }
}
