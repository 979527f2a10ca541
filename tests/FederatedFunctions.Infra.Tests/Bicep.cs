using System.Diagnostics;
using System.Reflection;
using System.Text;
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

    /// <summary>A .bicep file compiled by the CLI's JSON-RPC server: whether it compiled, its diagnostics (the linter's too, with infra/bicepconfig.json), and the ARM template.</summary>
    public static (bool Success, JsonArray Diagnostics, string? Template) Compile(string file)
    {
        var result = RpcServer.Value.Call("bicep/compile", new JsonObject { ["path"] = Path.Combine(InfraDirectory, file) });
        return ((bool)result["success"]!, result["diagnostics"]!.AsArray(), (string?)result["contents"]);
    }

    /// <summary>A .bicepparam file compiled by the CLI's JSON-RPC server: whether it compiled, its diagnostics, and the parameters file.</summary>
    public static (bool Success, JsonArray Diagnostics, string? Parameters) CompileParams(string file)
    {
        var result = RpcServer.Value.Call("bicep/compileParams", new JsonObject { ["path"] = Path.Combine(InfraDirectory, file), ["parameterOverrides"] = new JsonObject() });
        return ((bool)result["success"]!, result["diagnostics"]!.AsArray(), (string?)result["parameters"]);
    }

    /// <summary>The compiled ARM template of a .bicep file.</summary>
    public static JsonObject Build(string file)
    {
        var (success, diagnostics, template) = Compile(file);
        Assert.True(success, $"bicep build {file}: {diagnostics.ToJsonString()}");
        return JsonNode.Parse(template!)!.AsObject();
    }

    /// <summary>The parameter values of a .bicepparam file.</summary>
    public static JsonObject Parameters(string file)
    {
        var (success, diagnostics, json) = CompileParams(file);
        Assert.True(success, $"bicep build-params {file}: {diagnostics.ToJsonString()}");
        var parameters = JsonNode.Parse(json!)!["parameters"]!.AsObject();
        return new JsonObject(parameters.Select(p => KeyValuePair.Create(p.Key, p.Value!["value"]?.DeepClone())));
    }

    // One CLI process for the whole assembly: a start of the CLI costs about 3.5 s of CPU, a compile in a warm server a
    // fraction of that. The CLI's own commands (build, lint) are still run where the tests check the CLI itself.
    private static readonly Lazy<JsonRpc> RpcServer = new(() => new JsonRpc(Cli()));

    /// <summary>
    /// <c>bicep jsonrpc --stdio</c>: the CLI's programmatic interface (stable since Bicep 0.29), LSP-style framing
    /// (<c>Content-Length</c> headers) over its standard input and output, one request at a time.
    /// </summary>
    private sealed class JsonRpc
    {
        private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
        private readonly Lock gate = new();
        private readonly Process process;
        private int nextId;

        public JsonRpc(string cli)
        {
            var start = new ProcessStartInfo(cli, ["jsonrpc", "--stdio"])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = InfraDirectory,
            };
            start.Environment["BICEP_TELEMETRY_ENABLED"] = "false";
            process = Process.Start(start)!;
            process.ErrorDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try
                {
                    process.Kill();
                }
                catch (InvalidOperationException)
                {
                    // Already gone.
                }
            };
        }

        /// <summary>Sends one request and returns its result; an error answer fails the test with the server's message.</summary>
        public JsonObject Call(string method, JsonObject parameters)
        {
            lock (gate)
            {
                var id = ++nextId;
                var body = Encoding.UTF8.GetBytes(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters }.ToJsonString());
                var input = process.StandardInput.BaseStream;
                input.Write(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"));
                input.Write(body);
                input.Flush();
                // A message without an id is a notification, not the answer: skipped.
                var read = Task.Run(() =>
                {
                    JsonObject message;
                    do
                    {
                        message = ReadMessage(process.StandardOutput.BaseStream);
                    }
                    while (message["id"] is null);

                    return message;
                });
                Assert.True(read.Wait(Timeout), $"bicep jsonrpc: no answer to {method} within {Timeout}");
                var answer = read.Result;
                Assert.Equal(id, (int)answer["id"]!);
                Assert.True(answer["error"] is null, $"bicep jsonrpc {method}: {answer["error"]?.ToJsonString()}");
                return answer["result"]!.AsObject();
            }
        }

        private static JsonObject ReadMessage(Stream output)
        {
            // Headers end with an empty line; Content-Length is the only one needed.
            var header = new StringBuilder();
            while (!header.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                var b = output.ReadByte();
                if (b < 0)
                {
                    throw new EndOfStreamException("bicep jsonrpc closed its output.");
                }

                header.Append((char)b);
            }

            var length = header.ToString().Split("\r\n")
                .Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(l => int.Parse(l["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture))
                .Single();
            var body = new byte[length];
            output.ReadExactly(body);
            return JsonNode.Parse(body)!.AsObject();
        }
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
