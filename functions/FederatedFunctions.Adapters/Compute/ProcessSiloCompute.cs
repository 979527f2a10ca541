using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>Settings of the <c>process</c> compute: section <c>Compute:Process</c>.</summary>
public sealed class ProcessComputeOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Compute:Process";

    /// <summary>The silo runner's command and leading arguments, e.g. <c>["/usr/bin/dotnet", "/app/fl.dll"]</c>; <c>silo run …</c> follows.</summary>
    public List<string> Runner { get; set; } = [];

    /// <summary>Where each job keeps its process record, status and log: one folder per job name.</summary>
    public string JobsDirectory { get; set; } = Path.Combine(Path.GetTempPath(), "fl-silo-jobs");

    /// <summary>How long a job may be submitted without a process before it counts as failed (a host that died while starting it).</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// The <c>process</c> compute: each silo step runs as a separate OS process, the silo runner (<c>fl silo run</c>), started with
/// the silo's own credential file, which only the runner opens. The orchestrator's process holds no silo credential.
/// </summary>
/// <remarks>
/// <para>A job is a folder named after the job under <see cref="ProcessComputeOptions.JobsDirectory"/>. Submission creates
/// its <c>submitted</c> marker first-writer-wins, so a re-executed start finds the job instead of starting a second process.
/// The runner is detached from the host: its standard streams go to the job's log, so it outlives a host that restarts, and
/// the next read finds it by its process id and start time.</para>
/// <para>The runner writes <c>status.json</c> when it starts and when it exits. A process that is gone without an exit
/// status (killed, out of memory) is a failed job; so is a job that never got a process within the start timeout.</para>
/// </remarks>
public sealed class ProcessSiloCompute(ISiloRegistry registry, IOptions<ProcessComputeOptions> options) : ISiloComputeKind
{
    private const string Submitted = "submitted", ProcessRecord = "process.json", Status = "status.json", Cancelled = "cancelled", Log = "runner.log";

    /// <inheritdoc />
    public string Kind => SiloComputeKinds.Process;

    /// <inheritdoc />
    public bool Inline => false;

    /// <inheritdoc />
    public int DefaultPollSeconds => 1;

    /// <inheritdoc />
    public void Validate(string siloId, SiloEndpoint entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (string.IsNullOrWhiteSpace(entry.Compute.CredentialFile))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:CredentialFile' is required with a 'process' compute: the runner reads the silo's credential from it.");
        }

        if (options.Value.Runner.Count == 0)
        {
            throw new SiloRegistryException($"Silo '{siloId}': this host has no silo runner configured for the 'process' compute ({ProcessComputeOptions.Section}:Runner).");
        }
    }

    /// <inheritdoc />
    public TrainerIdentity Trainer(string siloId, SiloEndpoint entry) => LocalTrainerIdentity.Value;

    /// <inheritdoc />
    public async Task<SiloJobStatus> StartAsync(SiloJob job, BlobRef? request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        var dir = JobDirectory(job);
        Directory.CreateDirectory(dir);
        try
        {
            await using var marker = new FileStream(Path.Combine(dir, Submitted), FileMode.CreateNew, FileAccess.Write);
        }
        catch (IOException)
        {
            // Submitted before (a re-executed start, or a host that restarted): that job is the one.
            return await GetAsync(job, cancellationToken).ConfigureAwait(false);
        }

        var silo = job.Step.SiloId;
        var entry = registry.Entry(silo);
        string[] args =
        [
            .. options.Value.Runner,
            "silo", "run",
            "--silo", silo,
            "--job", request.Uri, "--job-sha256", request.Sha256, "--job-bytes", request.Bytes.ToString(CultureInfo.InvariantCulture),
            "--data", SiloRegistry.ContainerUri(silo, entry, entry.Container).AbsoluteUri,
            "--outbox", SiloRegistry.ContainerUri(silo, entry, entry.OutboxContainerName).AbsoluteUri,
            "--credential-file", Path.GetFullPath(entry.Compute.CredentialFile!),
            "--status-file", Path.Combine(dir, Status),
        ];

        // Detached: no pipe to this host, so the runner outlives it; exec keeps the shell's process id.
        var start = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            ArgumentList = { "-c", $"exec {string.Join(' ', args.Select(Quote))} > {Quote(Path.Combine(dir, Log))} 2>&1 < /dev/null" },
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start the silo runner for job {job.Name}.");
        var record = new ProcessInfo(process.Id, process.StartTime.ToUniversalTime().Ticks);
        await File.WriteAllTextAsync(Path.Combine(dir, ProcessRecord), JsonSerializer.Serialize(record), cancellationToken).ConfigureAwait(false);
        return new SiloJobStatus(job.Name, SiloJobState.Running, $"process:started({process.Id.ToString(CultureInfo.InvariantCulture)})");
    }

    /// <inheritdoc />
    public async Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var dir = JobDirectory(job);
        var submitted = new FileInfo(Path.Combine(dir, Submitted));
        if (!submitted.Exists)
        {
            return new SiloJobStatus(job.Name, SiloJobState.Failed, "process:not-found", Detail: "no such job on this host");
        }

        if (File.Exists(Path.Combine(dir, Cancelled)))
        {
            return new SiloJobStatus(job.Name, SiloJobState.Canceled, "process:cancelled");
        }

        if (await ReadExitCodeAsync(dir, cancellationToken).ConfigureAwait(false) is { } exit)
        {
            return Exited(job, exit);
        }

        if (await ReadAsync<ProcessInfo>(Path.Combine(dir, ProcessRecord), cancellationToken).ConfigureAwait(false) is not { } info)
        {
            return DateTime.UtcNow - submitted.CreationTimeUtc < options.Value.StartTimeout
                ? new SiloJobStatus(job.Name, SiloJobState.Queued, "process:starting")
                : new SiloJobStatus(job.Name, SiloJobState.Failed, "process:never-started", Detail: $"no runner process within {options.Value.StartTimeout.TotalSeconds} s of submission");
        }

        if (IsAlive(info))
        {
            return new SiloJobStatus(job.Name, SiloJobState.Running, $"process:running({info.Pid.ToString(CultureInfo.InvariantCulture)})");
        }

        // It may have exited between the two reads.
        return await ReadExitCodeAsync(dir, cancellationToken).ConfigureAwait(false) is { } late
            ? Exited(job, late)
            : new SiloJobStatus(job.Name, SiloJobState.Failed, "process:died", Detail: $"the runner (pid {info.Pid.ToString(CultureInfo.InvariantCulture)}) ended without an exit status: killed or crashed");
    }

    /// <inheritdoc />
    public async Task CancelAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var dir = JobDirectory(job);
        if (!Directory.Exists(dir) || await ReadExitCodeAsync(dir, cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        await File.WriteAllTextAsync(Path.Combine(dir, Cancelled), DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        if (await ReadAsync<ProcessInfo>(Path.Combine(dir, ProcessRecord), cancellationToken).ConfigureAwait(false) is { } info && IsAlive(info))
        {
            try
            {
                using var process = Process.GetProcessById(info.Pid);
                process.Kill(entireProcessTree: true);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Gone already.
            }
        }
    }

    private static SiloJobStatus Exited(SiloJob job, int code) => code == 0
        ? new SiloJobStatus(job.Name, SiloJobState.Completed, "process:exited(0)")
        : new SiloJobStatus(job.Name, SiloJobState.Failed, $"process:exited({code.ToString(CultureInfo.InvariantCulture)})", Detail: $"the runner exited with code {code.ToString(CultureInfo.InvariantCulture)}");

    private string JobDirectory(SiloJob job) => Path.Combine(Path.GetFullPath(options.Value.JobsDirectory), job.Name);

    private static bool IsAlive(ProcessInfo info)
    {
        try
        {
            using var process = Process.GetProcessById(info.Pid);
            return !process.HasExited && process.StartTime.ToUniversalTime().Ticks == info.StartTicks;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    private static async Task<int?> ReadExitCodeAsync(string dir, CancellationToken cancellationToken) =>
        await ReadAsync<RunnerStatus>(Path.Combine(dir, Status), cancellationToken).ConfigureAwait(false) is { State: RunnerStatus.Exited, ExitCode: { } code } ? code : null;

    private static async Task<T?> ReadAsync<T>(string path, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    private static string Quote(string arg) => "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private sealed record ProcessInfo(int Pid, long StartTicks);
}

/// <summary>The status file a silo runner writes when it starts and when it exits (<c>fl silo run --status-file</c>).</summary>
/// <param name="State"><see cref="Running"/> or <see cref="Exited"/>.</param>
/// <param name="ExitCode">The exit code, once exited.</param>
public sealed record RunnerStatus(string State, int? ExitCode = null)
{
    /// <summary>The runner has started.</summary>
    public const string Running = "running";

    /// <summary>The runner has finished.</summary>
    public const string Exited = "exited";
}
