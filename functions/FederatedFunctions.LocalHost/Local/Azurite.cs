using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace FederatedFunctions.LocalHost.Local;

/// <summary>Ports of a running Azurite and the connection string that reaches it.</summary>
/// <param name="BlobPort">Blob service port.</param>
/// <param name="QueuePort">Queue service port.</param>
/// <param name="TablePort">Table service port.</param>
/// <param name="ProcessId">Process id of Azurite (0 when unknown).</param>
public sealed record AzuriteEndpoint(int BlobPort, int QueuePort, int TablePort, int ProcessId)
{
    /// <summary>Azurite's well-known development account; its key is public and documented, not a secret.</summary>
    public const string AccountName = "devstoreaccount1";

    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>A connection string with explicit loopback endpoints.</summary>
    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{BlobPort}/{AccountName};" +
        $"QueueEndpoint=http://127.0.0.1:{QueuePort}/{AccountName};" +
        $"TableEndpoint=http://127.0.0.1:{TablePort}/{AccountName};";
}

/// <summary>Starts and stops Azurite, the storage emulator the simulation and the tests run on.</summary>
/// <remarks>
/// Two modes: <see cref="StartChildAsync"/> owns a child process on fresh free ports and kills it on dispose
/// (tests); <see cref="EnsureDaemonAsync"/> keeps one persistent Azurite per workspace, recorded in
/// <c>azurite.json</c>, and reuses it across commands (the <c>fl</c> CLI). Ports are always probed free first,
/// because other software may hold the default ports 10000–10002.
/// </remarks>
public static class Azurite
{
    /// <summary>Finds the Azurite launcher installed by <c>scripts/setup.sh</c>.</summary>
    public static string FindExecutable(string repositoryRoot)
    {
        var path = Path.Combine(repositoryRoot, "tools", "azurite", "node_modules", ".bin", "azurite");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Azurite is not installed at {path}. Run scripts/setup.sh azurite.", path);
        }

        return path;
    }

    /// <summary>A TCP port free on loopback right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts Azurite as a child process on free ports; dispose the result to stop it.</summary>
    /// <param name="executable">Path from <see cref="FindExecutable"/>.</param>
    /// <param name="dataDirectory">Persistence folder, or null for in-memory persistence.</param>
    /// <param name="ports">Ports to reuse (e.g. after a restart), or null for fresh ones.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<AzuriteChild> StartChildAsync(string executable, string? dataDirectory, AzuriteEndpoint? ports = null, CancellationToken cancellationToken = default)
    {
        // A free port can be taken by another process between the probe and Azurite's bind (tests start several at once):
        // such an Azurite exits at once, so a start is accepted only if the process is still there after it answered.
        for (var attempt = 1; ; attempt++)
        {
            var child = await TryStartChildAsync(executable, dataDirectory, ports, cancellationToken).ConfigureAwait(false);
            if (child is not null || ports is not null || attempt == 3)
            {
                return child ?? throw new InvalidOperationException("Azurite exited right after it started: its ports were taken.");
            }
        }
    }

    private static async Task<AzuriteChild?> TryStartChildAsync(string executable, string? dataDirectory, AzuriteEndpoint? ports, CancellationToken cancellationToken)
    {
        var blob = ports?.BlobPort ?? FreePort();
        var queue = ports?.QueuePort ?? FreePort();
        var table = ports?.TablePort ?? FreePort();
        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in Arguments(blob, queue, table, dataDirectory, silent: true))
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("Azurite did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var endpoint = new AzuriteEndpoint(blob, queue, table, process.Id);
        try
        {
            await WaitReadyAsync(endpoint, process, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            await Task.Delay(300, cancellationToken).ConfigureAwait(false);
            if (process.HasExited)
            {
                process.Dispose();
                return null;
            }
        }
        catch
        {
            Kill(process);
            process.Dispose();
            throw;
        }

        return new AzuriteChild(process, endpoint);
    }

    /// <summary>Returns the workspace's Azurite, starting it detached if it is not running.</summary>
    /// <param name="executable">Path from <see cref="FindExecutable"/>.</param>
    /// <param name="stateDirectory">Workspace state folder; holds <c>azurite.json</c>, <c>azurite/</c> data and <c>azurite.log</c>.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<AzuriteEndpoint> EnsureDaemonAsync(string executable, string stateDirectory, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(stateDirectory);
        var recordPath = Path.Combine(stateDirectory, "azurite.json");
        var recorded = ReadRecord(recordPath);
        if (recorded is not null && IsAlive(recorded.ProcessId) && await RespondsAsync(recorded.BlobPort, cancellationToken).ConfigureAwait(false))
        {
            return recorded;
        }

        for (var attempt = 1; ; attempt++)
        {
            if (await TryStartDaemonAsync(executable, stateDirectory, attempt == 1 ? recorded : null, cancellationToken).ConfigureAwait(false) is { } started)
            {
                await File.WriteAllTextAsync(recordPath, JsonSerializer.Serialize(started), cancellationToken).ConfigureAwait(false);
                return started;
            }

            if (attempt == 3)
            {
                throw new InvalidOperationException("Azurite exited right after it started: its ports were taken.");
            }
        }
    }

    // Null when the daemon died right after answering: another process held one of its ports (see StartChildAsync).
    private static async Task<AzuriteEndpoint?> TryStartDaemonAsync(string executable, string stateDirectory, AzuriteEndpoint? recorded, CancellationToken cancellationToken)
    {
        // Keep the previous ports when they are free, so recorded blob URIs stay valid.
        var blob = recorded is not null && IsFree(recorded.BlobPort) ? recorded.BlobPort : FreePort();
        var queue = recorded is not null && IsFree(recorded.QueuePort) ? recorded.QueuePort : FreePort();
        var table = recorded is not null && IsFree(recorded.TablePort) ? recorded.TablePort : FreePort();
        var data = Path.Combine(stateDirectory, "azurite");
        Directory.CreateDirectory(data);
        var log = Path.Combine(stateDirectory, "azurite.log");

        // setsid puts Azurite in its own session: Ctrl+C in the terminal does not stop it, and it holds none of our pipes.
        var command = Quote(executable) + " " + string.Join(' ', Arguments(blob, queue, table, data, silent: false).Select(Quote)) +
                      " >" + Quote(log) + " 2>&1 </dev/null & echo $!";
        var psi = new ProcessStartInfo("setsid") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        using var launcher = Process.Start(psi) ?? throw new InvalidOperationException("Could not launch Azurite.");
        var pidText = await launcher.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        await launcher.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        var pid = int.TryParse(pidText.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) ? p : 0;
        var endpoint = new AzuriteEndpoint(blob, queue, table, pid);
        await WaitReadyAsync(endpoint, null, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        await Task.Delay(300, cancellationToken).ConfigureAwait(false);
        return IsAlive(pid) ? endpoint : null;
    }

    /// <summary>Stops the workspace's Azurite, if running. Returns whether one was stopped.</summary>
    public static bool StopDaemon(string stateDirectory)
    {
        var record = ReadRecord(Path.Combine(stateDirectory, "azurite.json"));
        if (record is null || !IsAlive(record.ProcessId))
        {
            return false;
        }

        using var process = Process.GetProcessById(record.ProcessId);
        Kill(process);
        return true;
    }

    /// <summary>The recorded daemon endpoint, if any (running or not).</summary>
    public static AzuriteEndpoint? ReadRecord(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<AzuriteEndpoint>(File.ReadAllText(path)) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // silent: no access log (a line per request). A child's output is read and dropped, so its log would only cost CPU;
    // the workspace daemon keeps it in azurite.log.
    private static IEnumerable<string> Arguments(int blob, int queue, int table, string? dataDirectory, bool silent)
    {
        if (silent)
        {
            yield return "--silent";
        }

        yield return "--blobHost";
        yield return "127.0.0.1";
        yield return "--queueHost";
        yield return "127.0.0.1";
        yield return "--tableHost";
        yield return "127.0.0.1";
        yield return "--blobPort";
        yield return blob.ToString(CultureInfo.InvariantCulture);
        yield return "--queuePort";
        yield return queue.ToString(CultureInfo.InvariantCulture);
        yield return "--tablePort";
        yield return table.ToString(CultureInfo.InvariantCulture);
        yield return "--skipApiVersionCheck";
        yield return "--loose";
        yield return "--disableTelemetry";
        if (dataDirectory is null)
        {
            yield return "--inMemoryPersistence";
        }
        else
        {
            yield return "--location";
            yield return dataDirectory;
        }
    }

    private static async Task WaitReadyAsync(AzuriteEndpoint endpoint, Process? process, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (process is { HasExited: true })
            {
                throw new InvalidOperationException($"Azurite exited with code {process.ExitCode} before it was ready.");
            }

            if (await RespondsAsync(endpoint.BlobPort, cancellationToken).ConfigureAwait(false)
                && await RespondsAsync(endpoint.QueuePort, cancellationToken).ConfigureAwait(false)
                && await RespondsAsync(endpoint.TablePort, cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        throw new TimeoutException($"Azurite did not answer on ports {endpoint.BlobPort}/{endpoint.QueuePort}/{endpoint.TablePort} within {timeout.TotalSeconds:0} s.");
    }

    private static async Task<bool> RespondsAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, port, cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return false;
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static bool IsAlive(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    internal static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>An Azurite child process; disposing it kills it.</summary>
public sealed class AzuriteChild(Process process, AzuriteEndpoint endpoint) : IDisposable
{
    /// <summary>Where it listens.</summary>
    public AzuriteEndpoint Endpoint => endpoint;

    /// <summary>Stops Azurite gracefully (SIGTERM, so that it saves its state) and waits for it to exit.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (process.HasExited)
        {
            return;
        }

        using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!)
        {
            await kill.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Kills the process (as a crash would).</summary>
    public void Dispose()
    {
        Azurite.Kill(process);
        process.Dispose();
    }
}
