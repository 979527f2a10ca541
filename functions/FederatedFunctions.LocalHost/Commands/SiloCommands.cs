using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Adapters;
using FederatedFunctions.Adapters.Compute;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.LocalHost.Hosting;
using FederatedFunctions.Silo;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Commands;

/// <summary>
/// <c>fl silo</c>: the silo runner. It executes one silo job from its job document, with the silo's own credential, and is
/// what a silo's compute starts: a separate process (<c>process</c>), or the container image of an Azure ML job.
/// </summary>
public static class SiloCommands
{
    /// <summary>Exit code of an invocation with bad arguments.</summary>
    public const int Usage = 64;

    /// <summary>Builds <c>fl silo</c> and its subcommands: <c>run</c> (any step) and one per step kind, which refuses a job of another kind.</summary>
    public static Command Build(CommandContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var silo = new Command("silo", "The silo runner: executes one silo job from its job document with the silo's own credential.\nExample: fl silo run --silo silo-1 --job URI --job-sha256 HEX --job-bytes N --data URI --outbox URI --credential-file F");
        silo.Subcommands.Add(Run(ctx, "run", null, "Runs the job, whatever its step."));
        foreach (var kind in new[] { SiloStepKinds.Train, SiloStepKinds.Evaluate, SiloStepKinds.Key, SiloStepKinds.Mask, SiloStepKinds.Reveal })
        {
            silo.Subcommands.Add(Run(ctx, kind, kind, $"Runs the job, which must be a step of kind '{kind}'."));
        }

        silo.Subcommands.Add(Onboard(ctx));
        return silo;
    }

    private static Command Onboard(CommandContext ctx)
    {
        var siloId = new Option<string>("--silo") { Description = "The silo to check.", Required = true };
        var registryFile = new Option<FileInfo?>("--registry") { Description = "A registry file ({\"Silos\": {...}}) or one silo's entry (a silo deployment's registryEntry output); default: this workspace's registry." };
        var asSilo = new Option<bool>("--as-silo") { Description = "Also check the silo's own access, as its runner has it: --credential-file, or the managed identity (AZURE_CLIENT_ID) on the silo's compute." };
        var credentialFile = new Option<FileInfo?>("--credential-file") { Description = "The silo's credential file, with --as-silo." };
        var json = new Option<bool>("--json") { Description = "Print the checks as JSON." };
        var cmd = new Command(
            "onboard",
            "Checks a deployed silo from the outside against the permission matrix: the registry entry is complete; the orchestrator's grant reads the outbox, cannot write it and cannot read the data; with --as-silo, the silo's identity reads its data, writes its private area and its outbox, and cannot write its data elsewhere. Exit 0 when every check passes, 1 otherwise.\n" +
            "Example: fl silo onboard --silo hospital-a --registry entry.json")
        {
            siloId, registryFile, asSilo, credentialFile, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var id = pr.GetValue(siloId)!;
            var file = pr.GetValue(registryFile);
            if (file is { Exists: false })
            {
                await ctx.Error.WriteLineAsync($"error: registry file '{file.FullName}' does not exist").ConfigureAwait(false);
                return Usage;
            }

            var registryPath = file?.FullName ?? CommandContext.Workspace().SiloRegistryPath;
            var configuration = await OnboardingConfigurationAsync(registryPath, id, ct).ConfigureAwait(false);
            await using var services = new ServiceCollection().AddLogging().AddFederatedAdapters(configuration).BuildServiceProvider();
            SiloRunnerCredentials? silo = null;
            if (pr.GetValue(asSilo))
            {
                var credentials = pr.GetValue(credentialFile) is { } f ? await SiloRegistryFile.ReadCredentialsAsync(f.FullName, ct).ConfigureAwait(false) : null;
                silo = new SiloRunnerCredentials(credentials, Environment.GetEnvironmentVariable("AZURE_CLIENT_ID"));
            }

            var onboarding = new SiloOnboarding(
                services.GetRequiredService<ISiloRegistry>(),
                services.GetRequiredService<ISiloCatalog>());
            var checks = await onboarding.CheckAsync(id, silo, ct).ConfigureAwait(false);
            if (pr.GetValue(json))
            {
                await ctx.Output.WriteLineAsync(JsonSerializer.Serialize(new { silo = id, passed = checks.All(c => c.Passed), checks }, CommandContext.Json)).ConfigureAwait(false);
            }
            else
            {
                foreach (var check in checks)
                {
                    await ctx.Output.WriteLineAsync($"{(check.Passed ? "ok  " : "FAIL")}  {check.Name,-34}  {check.Detail}").ConfigureAwait(false);
                }

                await ctx.Output.WriteLineAsync(checks.All(c => c.Passed) ? $"silo {id}: every check passed" : $"silo {id}: {checks.Count(c => !c.Passed)} check(s) failed").ConfigureAwait(false);
            }

            return checks.All(c => c.Passed) ? 0 : 1;
        });
        return cmd;
    }

    // The registry as the orchestrator would have it. A bare entry (a deployment's output) becomes Silos:{id}. The
    // orchestrator's own storage is not touched by the checks; the placeholder only lets the adapters compose.
    private static async Task<IConfiguration> OnboardingConfigurationAsync(string path, string siloId, CancellationToken ct)
    {
        var builder = new ConfigurationBuilder();
        if (File.Exists(path))
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(path, ct).ConfigureAwait(false))?.AsObject();
            var document = node is not null && !node.ContainsKey("Silos") ? new System.Text.Json.Nodes.JsonObject { ["Silos"] = new System.Text.Json.Nodes.JsonObject { [siloId] = node.DeepClone() } } : node;
            builder.AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(document?.ToJsonString() ?? "{}")));
        }

        return builder
            .AddInMemoryCollection([KeyValuePair.Create("Storage:ConnectionString", (string?)"UseDevelopmentStorage=true")])
            .AddEnvironmentVariables("FL_")
            .Build();
    }

    private static Command Run(CommandContext ctx, string name, string? kind, string description)
    {
        var siloId = new Option<string>("--silo") { Description = "The silo this runner acts for.", Required = true };
        var job = new Option<string>("--job") { Description = "URI of the job document in the orchestrator's storage.", Required = true };
        var jobSha = new Option<string>("--job-sha256") { Description = "SHA-256 of the job document (lowercase hex).", Required = true };
        var jobBytes = new Option<long>("--job-bytes") { Description = "Size of the job document in bytes.", Required = true };
        var data = new Option<string>("--data") { Description = "URI of the silo's data container.", Required = true };
        var outbox = new Option<string>("--outbox") { Description = "URI of the silo's outbox container.", Required = true };
        var credentialFile = new Option<FileInfo?>("--credential-file") { Description = "The silo's credential file (or $FL_SILO_CREDENTIAL_FILE); without either, the runner authenticates as the job's managed identity (AZURE_CLIENT_ID)." };
        var statusFile = new Option<FileInfo?>("--status-file") { Description = "Where to write the runner's status when it starts and when it exits (the process compute reads it)." };
        var cmd = new Command(name, description + "\nExample: fl silo " + name + " --silo silo-1 --job URI --job-sha256 HEX --job-bytes N --data URI --outbox URI --credential-file F")
        {
            siloId, job, jobSha, jobBytes, data, outbox, credentialFile, statusFile,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var status = pr.GetValue(statusFile);
            await WriteStatusAsync(status, new RunnerStatus(RunnerStatus.Running), ct).ConfigureAwait(false);
            var file = pr.GetValue(credentialFile) ?? (Environment.GetEnvironmentVariable("FL_SILO_CREDENTIAL_FILE") is { Length: > 0 } path ? new FileInfo(path) : null);
            var code = await RunAsync(ctx, pr.GetValue(siloId)!, new BlobRef(pr.GetValue(job)!, pr.GetValue(jobSha)!, pr.GetValue(jobBytes)), pr.GetValue(data)!, pr.GetValue(outbox)!, file, kind, ct).ConfigureAwait(false);
            await WriteStatusAsync(status, new RunnerStatus(RunnerStatus.Exited, code), CancellationToken.None).ConfigureAwait(false);
            return code;
        });
        return cmd;
    }

    private static async Task<int> RunAsync(CommandContext ctx, string siloId, BlobRef request, string data, string outbox, FileInfo? credentialFile, string? kind, CancellationToken ct)
    {
        if (!Uri.TryCreate(data, UriKind.Absolute, out var dataUri) || !Uri.TryCreate(outbox, UriKind.Absolute, out var outboxUri) || !Uri.TryCreate(request.Uri, UriKind.Absolute, out _))
        {
            await ctx.Error.WriteLineAsync("error: --job, --data and --outbox must be absolute URIs").ConfigureAwait(false);
            return Usage;
        }

        SiloCredentialFile? file = null;
        if (credentialFile is not null)
        {
            if (!credentialFile.Exists)
            {
                await ctx.Error.WriteLineAsync($"error: credential file '{credentialFile.FullName}' does not exist").ConfigureAwait(false);
                return Usage;
            }

            file = await SiloRegistryFile.ReadCredentialsAsync(credentialFile.FullName, ct).ConfigureAwait(false);
            if (file.SiloId is { } owner && owner != siloId)
            {
                await ctx.Error.WriteLineAsync($"error: the credential file belongs to silo '{owner}', not '{siloId}'").ConfigureAwait(false);
                return Usage;
            }
        }

        var credentials = new SiloRunnerCredentials(file, Environment.GetEnvironmentVariable("AZURE_CLIENT_ID"));
        var storage = new BlobSiloStorage(siloId, credentials.Container(dataUri), credentials.Container(outboxUri), credentials.ReadOrchestratorBlobAsync);
        var runner = new SiloJobRunner(new SiloProtocol(new SiloDataCache()));
        var (code, outcome) = await runner.RunAsync(storage, request, kind, ct).ConfigureAwait(false);

        // One line for the job's log, never a value from the silo's data: the outcome's message is already reduced in eyes-off mode.
        var summary = outcome is null ? "no outcome (the job document was missing, altered, for another silo or another step)"
            : outcome.Result is not null ? "completed"
            : $"{outcome.Failure}: {outcome.Message}";
        await ctx.Output.WriteLineAsync($"silo {siloId}: job {outcome?.JobName ?? request.Uri}: {summary} (exit {code.ToString(CultureInfo.InvariantCulture)})").ConfigureAwait(false);
        return code;
    }

    private static async Task WriteStatusAsync(FileInfo? file, RunnerStatus status, CancellationToken ct)
    {
        if (file is null)
        {
            return;
        }

        var tmp = file.FullName + ".tmp";
        await File.WriteAllTextAsync(tmp, JsonSerializer.Serialize(status), ct).ConfigureAwait(false);
        File.Move(tmp, file.FullName, overwrite: true);
    }
}
