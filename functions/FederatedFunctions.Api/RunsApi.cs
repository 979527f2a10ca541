using System.Globalization;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Api;

/// <summary>The runs API: one handler per operation, shared by the Functions app and <c>fl serve</c>.</summary>
/// <remarks>
/// Each handler takes a <see cref="DurableTaskClient"/> (the Functions app gets one per invocation from its
/// <c>DurableClient</c> binding; the local host has one) and plain request values, and returns an
/// <see cref="ApiResponse"/>. Hosts only translate HTTP to and from these, so the same request gives the same
/// status code and the same JSON on either host. Run ids are never reused: a run id that has an instance or
/// checkpoints is refused with 409, so a new run can never overwrite an old run's checkpoints.
/// </remarks>
public sealed partial class RunsApi(ICheckpointStore checkpoints, ISiloCatalog silos, TimeProvider time, ILogger<RunsApi> logger, Microsoft.Extensions.Options.IOptions<TrustOptions>? trust = null)
{
    /// <summary>Largest request body accepted, in bytes: the run spec document limit.</summary>
    public static int MaxBodyBytes => SpecLimits.Default.MaxDocumentBytes;

    /// <summary>Largest page size of <see cref="ListAsync"/>.</summary>
    public const int MaxPageSize = InstanceLists.MaxPageSize;

    private const string Noun = "run spec";

    private static readonly OrchestrationRuntimeStatus[] Active = InstanceStarts.Active;

    /// <summary><c>POST /api/runs</c> as the HTTP hosts receive it: the body must be declared JSON (415 otherwise, see <see cref="SpecRequests.RefuseNotJson"/>), then it is started as <see cref="StartAsync(DurableTaskClient, ReadOnlyMemory{byte}?, ManagementUrlFactory, CancellationToken)"/>.</summary>
    /// <param name="client">Durable client.</param>
    /// <param name="contentType">The request's <c>Content-Type</c> header, or null.</param>
    /// <param name="body">The request body, or null when it exceeded <see cref="MaxBodyBytes"/>.</param>
    /// <param name="urls">The host's management URLs.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public Task<ApiResponse> StartFromHttpAsync(DurableTaskClient client, string? contentType, ReadOnlyMemory<byte>? body, ManagementUrlFactory urls, CancellationToken cancellationToken) =>
        SpecRequests.RefuseNotJson(Noun, contentType) is { } refused
            ? Task.FromResult(refused)
            : StartAsync(client, body, urls, cancellationToken);

    /// <summary><c>POST /api/runs</c>: validates the spec and starts the run.</summary>
    /// <param name="client">Durable client.</param>
    /// <param name="body">The request body (a run spec), or null when it exceeded <see cref="MaxBodyBytes"/>.</param>
    /// <param name="urls">The host's management URLs.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public Task<ApiResponse> StartAsync(DurableTaskClient client, ReadOnlyMemory<byte>? body, ManagementUrlFactory urls, CancellationToken cancellationToken) =>
        StartAsync(client, body, urls, resumeFrom: null, cancellationToken);

    /// <summary>Starts a run from a spec document, optionally from another run's checkpoint.</summary>
    public async Task<ApiResponse> StartAsync(DurableTaskClient client, ReadOnlyMemory<byte>? body, ManagementUrlFactory urls, ModelOrigin? resumeFrom, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(urls);
        if (!SpecRequests.TryRead(body, Noun, MaxBodyBytes, RunSpecParser.Parse, silos, s => s.Silos, out var spec, out var refused))
        {
            return refused;
        }

        var runId = spec.RunId ?? NewRunId("run");
        spec = spec with { RunId = runId };

        var existing = await client.GetInstanceAsync(runId, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false);
        if (existing is not null && existing.Name != nameof(TrainingOrchestrator))
        {
            return IdInUse(runId, $"Instance '{runId}' is a {existing.Name}, not a training run; run ids are not reused. Choose another runId.");
        }

        if (await AnalysisService.ReadResultAsync(checkpoints, spec.Checkpoints.Container, runId, cancellationToken).ConfigureAwait(false) is not null)
        {
            return IdInUse(runId, $"Container '{spec.Checkpoints.Container}' holds the result of an analysis '{runId}'; a run under that id would write beside it. Choose another runId.");
        }

        if (existing is not null)
        {
            return Active.Contains(existing.RuntimeStatus)
                ? ApiResponse.Problem(409, "run-exists", "A run with this id is already running.", $"Run '{runId}' is {existing.RuntimeStatus}.")
                : ApiResponse.Problem(409, "run-exists", "A run with this id already exists.", $"Run '{runId}' is {existing.RuntimeStatus}; run ids are not reused. Choose another runId.");
        }

        if (await checkpoints.GetLatestAsync(spec.Checkpoints.Container, runId, cancellationToken).ConfigureAwait(false) is not null)
        {
            return ApiResponse.Problem(409, "run-exists", "A run with this id already has checkpoints.", $"Container '{spec.Checkpoints.Container}' already holds checkpoints of '{runId}'; run ids are not reused.");
        }

        if (RefuseUnapprovedTrainer(spec) is { } refusal)
        {
            return refusal;
        }

        var continueNumbering = false;
        if (spec.ResumeFrom is { } from)
        {
            if (resumeFrom is not null)
            {
                return InvalidSpec(new SpecError("$.resumeFrom", "not-allowed", "resumeFrom cannot be set here: this start already continues from another run (recurring training)."));
            }

            var (origin, error) = await ResolveOriginAsync(spec, from, cancellationToken).ConfigureAwait(false);
            if (origin is null)
            {
                return InvalidSpec(error!);
            }

            resumeFrom = origin;
            continueNumbering = true;
        }

        // Pretrained weights are the start of a fresh run; a recurring run's later starts continue from the previous run instead.
        var fromPretrained = resumeFrom is null && spec.Model.Pretrained is not null;
        if (fromPretrained && spec.Model.Pretrained is { } pretrained)
        {
            var (origin, error) = await ResolvePretrainedAsync(spec, pretrained, cancellationToken).ConfigureAwait(false);
            if (origin is null)
            {
                return InvalidSpec(error!);
            }

            resumeFrom = origin;
        }

        if (resumeFrom is not null && !fromPretrained && spec.Data is { Standardize: true, Standardization: null })
        {
            // A warm start trains the origin's weights further, so it keeps the origin's scaling; new statistics would not match them.
            // Pretrained weights come from outside any run: the run computes its own standardization.
            var originStandardization = (await checkpoints.GetManifestAsync(spec.Checkpoints.Container, resumeFrom.RunId, 0, cancellationToken).ConfigureAwait(false))?.Standardization;
            if (originStandardization is null)
            {
                return InvalidSpec(new SpecError("$.data.standardize", "conflict", $"The run starts from run '{resumeFrom.RunId}', which was not standardized: its weights would not match standardized features. Start without data.standardize, or from a standardized run."));
            }

            spec = spec with { Data = spec.Data with { Standardization = originStandardization } };
        }

        BlobRef? script = null;
        if (spec.Model.Script is { } file)
        {
            (script, var error) = await ResolveScriptAsync(spec, file, cancellationToken).ConfigureAwait(false);
            if (script is null)
            {
                return InvalidSpec(error!);
            }
        }

        return await ScheduleAsync(client, runId, TrainingState.Start(runId, spec, resumeFrom, continueNumbering, script), urls, resumeFrom, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>POST /api/runs/{id}/resume?container=</c>: starts a run whose orchestration was lost, failed or was cancelled
    /// again from its latest committed checkpoint, with the spec it was started with.
    /// </summary>
    /// <remarks>
    /// The spec and the latest pointer are read from the run's checkpoint container, not from the task hub, so this
    /// works when the orchestration's history is gone. Round numbers and per-round seeds continue, so with
    /// deterministic silos the resumed run computes the same models the lost one would have. The resumed run gets a
    /// fresh epoch (<see cref="Epochs"/>) for its silo job names: on remote computes the round in flight is trained
    /// again on new jobs, never taken from the jobs the cancelled or failed start left behind.
    /// </remarks>
    /// <param name="client">Durable client.</param>
    /// <param name="runId">The run.</param>
    /// <param name="container">Its checkpoint container; null means the spec default, <c>checkpoints</c>.</param>
    /// <param name="urls">The host's management URLs.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<ApiResponse> ResumeAsync(DurableTaskClient client, string runId, string? container, ManagementUrlFactory urls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(urls);
        container ??= new CheckpointSpec().Container;
        if (!RunSpecValidator.IsValidRunId(runId))
        {
            return NotFound(runId);
        }

        if (!RunSpecValidator.IsValidContainerName(container))
        {
            return InvalidQuery("container", "pattern", $"container must be an Azure container name; got {SpecPath.Quote(container)}.");
        }

        var existing = await client.GetInstanceAsync(runId, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false);
        if (existing is not null && existing.Name != nameof(TrainingOrchestrator))
        {
            return NotFound(runId);
        }

        if (existing is not null && Active.Contains(existing.RuntimeStatus))
        {
            return ApiResponse.Problem(409, "run-running", "The run is running.", $"Run '{runId}' is {existing.RuntimeStatus}; there is nothing to resume.");
        }

        if (existing is { RuntimeStatus: OrchestrationRuntimeStatus.Completed })
        {
            return ApiResponse.Problem(409, "run-completed", "The run has completed.", $"Run '{runId}' completed; there is nothing to resume.");
        }

        var specBytes = await checkpoints.GetSpecAsync(container, runId, cancellationToken).ConfigureAwait(false);
        var latest = await checkpoints.GetLatestAsync(container, runId, cancellationToken).ConfigureAwait(false);
        if (specBytes is null || latest is null)
        {
            return ApiResponse.Problem(404, "no-checkpoint", "Nothing to resume from.", $"Container '{container}' holds no {(specBytes is null ? "stored spec" : "committed round")} of run '{runId}'; start it again instead.");
        }

        var parsed = RunSpecParser.Parse(specBytes);
        if (!parsed.IsValid)
        {
            return ApiResponse.Problem(409, "stored-spec-invalid", "The run's stored spec is no longer valid.", string.Join(" ", parsed.Errors.Select(e => e.ToString())));
        }

        if (latest.Round >= parsed.Spec!.Training.Rounds)
        {
            return ApiResponse.Problem(409, "run-completed", "The run has completed.", $"Run '{runId}' committed its last round ({latest.Round}); there is nothing to resume.");
        }

        if (SpecRequests.Unregistered(parsed.Spec.Silos, silos) is { Length: > 0 } unregistered)
        {
            return ApiResponse.Problem(409, "silo-not-registered", "The run names silos this host no longer knows.", $"Run '{runId}' was started with silos that are not in the silo registry now; register them again to resume.", unregistered);
        }

        if (RefuseUnapprovedTrainer(parsed.Spec) is { } refused)
        {
            return refused;
        }

        var manifest = await checkpoints.GetManifestAsync(container, runId, latest.Round, cancellationToken).ConfigureAwait(false);
        await checkpoints.SetCancelledAsync(container, runId, cancelled: false, cancellationToken).ConfigureAwait(false);
        LogResumed(logger, runId, latest.Round);
        return await ScheduleAsync(client, runId, TrainingState.Resume(runId, parsed.Spec, latest, manifest?.Audit, Epochs.New(), manifest?.StrategyState, manifest?.Script), urls, null, cancellationToken).ConfigureAwait(false);
    }

    // The pretrained file, checked against its declared SHA-256 and format, copied beside the run so that what it started
    // from stays with it whatever happens to the original.
    private async Task<(ModelOrigin? Origin, SpecError? Error)> ResolvePretrainedAsync(RunSpec spec, PretrainedSpec pretrained, CancellationToken cancellationToken)
    {
        var container = spec.Checkpoints.Container;
        var (bytes, refused) = await ReadDeclaredAsync(container, pretrained, "$.model.pretrained", cancellationToken).ConfigureAwait(false);
        if (bytes is null)
        {
            return (null, refused);
        }

        try
        {
            _ = Safetensors.Parse(bytes);
        }
        catch (SafetensorsFormatException ex)
        {
            return (null, new SpecError("$.model.pretrained.path", "format", $"{SpecPath.Quote(pretrained.Path)} is not a safetensors file: {ex.Message}"));
        }

        var copy = await checkpoints.PutDocumentAsync(container, BlobLayout.Pretrained(spec.RunId!), bytes, cancellationToken).ConfigureAwait(false);
        return (new ModelOrigin("pretrained:" + pretrained.Path, 0, copy), null);
    }

    // A file a spec names by path and SHA-256 (model.pretrained, model.script), read from the checkpoint container and
    // checked against that hash; the refusal names the spec's field.
    private async Task<(byte[]? Bytes, SpecError? Refused)> ReadDeclaredAsync(string container, PretrainedSpec file, string field, CancellationToken cancellationToken)
    {
        var bytes = await checkpoints.GetDocumentAsync(container, file.Path, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
        {
            return (null, new SpecError(field + ".path", "not-found", $"Container '{container}' holds no {SpecPath.Quote(file.Path)}; put the file there with 'fl model put'."));
        }

        var sha = Hashing.Sha256Hex(bytes);
        return sha == file.Sha256
            ? (bytes, null)
            : (null, new SpecError(field + ".sha256", "mismatch", $"{SpecPath.Quote(file.Path)} has SHA-256 {sha}, not the {file.Sha256} the spec names: it is not the file the spec was written for."));
    }

    // A torchscript run's module file, checked against its declared SHA-256 and for the zip container torch.jit.save
    // writes, copied beside the run: every silo loads that copy, whatever happens to the original.
    private async Task<(BlobRef? Script, SpecError? Error)> ResolveScriptAsync(RunSpec spec, PretrainedSpec file, CancellationToken cancellationToken)
    {
        var container = spec.Checkpoints.Container;
        var (bytes, refused) = await ReadDeclaredAsync(container, file, "$.model.script", cancellationToken).ConfigureAwait(false);
        if (bytes is null)
        {
            return (null, refused);
        }

        if (!TorchScriptFiles.LooksLikeTorchScript(bytes))
        {
            return (null, new SpecError("$.model.script.path", "format", $"{SpecPath.Quote(file.Path)} is not a TorchScript file (a zip archive with a data.pkl, as torch.jit.save writes)."));
        }

        return (await checkpoints.PutDocumentAsync(container, BlobLayout.Script(spec.RunId!), bytes, cancellationToken).ConfigureAwait(false), null);
    }

    private async Task<(ModelOrigin? Origin, SpecError? Error)> ResolveOriginAsync(RunSpec spec, ResumeFromSpec from, CancellationToken cancellationToken)
    {
        var container = spec.Checkpoints.Container;
        var latest = await checkpoints.GetLatestAsync(container, from.RunId, cancellationToken).ConfigureAwait(false);
        if (latest is null)
        {
            return (null, new SpecError("$.resumeFrom.runId", "not-found", $"Container '{container}' holds no committed round of run {SpecPath.Quote(from.RunId)}."));
        }

        var round = from.Round ?? latest.Round;
        if (round > latest.Round)
        {
            return (null, new SpecError("$.resumeFrom.round", "not-found", $"Run {SpecPath.Quote(from.RunId)} has committed rounds up to {latest.Round}; got {round}."));
        }

        if (round >= spec.Training.Rounds)
        {
            return (null, new SpecError("$.training.rounds", "range", $"training.rounds must be more than the round resumed from ({round}), because round numbering continues; got {spec.Training.Rounds}."));
        }

        var manifest = round == latest.Round ? null : await checkpoints.GetManifestAsync(container, from.RunId, round, cancellationToken).ConfigureAwait(false);
        if (round != latest.Round && manifest is null)
        {
            return (null, new SpecError("$.resumeFrom.round", "not-found", $"Run {SpecPath.Quote(from.RunId)} has no committed round {round}."));
        }

        return (new ModelOrigin(from.RunId, round, manifest?.Model ?? latest.Model), null);
    }

    // Eyes-off runs may use only trainers whose identity and hash the orchestrator's configuration approves.
    private ApiResponse? RefuseUnapprovedTrainer(RunSpec spec) =>
        TrainerApproval.Refuse(spec.Privacy.Mode, spec.Silos, silos, trust?.Value, "runs", t => LogTrainerRefused(logger, spec.RunId ?? string.Empty, t.Id, t.Sha256))
        ?? TrainerApproval.RefuseScript(spec.Model.Script?.Sha256, trust?.Value, t => LogTrainerRefused(logger, spec.RunId ?? string.Empty, t.Id, t.Sha256));

    /// <summary>A 400 for a bad query parameter; the problem's error names it as <c>query.{name}</c>.</summary>
    public static ApiResponse InvalidQuery(string parameter, string rule, string message) =>
        ApiResponse.Problem(400, "invalid-query", "Invalid query.", message, [new ProblemError("query." + parameter, rule, message)]);

    private static ApiResponse InvalidSpec(SpecError error) => SpecRequests.Invalid(Noun, [error]);

    private async Task<ApiResponse> ScheduleAsync(DurableTaskClient client, string runId, TrainingState state, ManagementUrlFactory urls, ModelOrigin? resumeFrom, CancellationToken cancellationToken)
    {
        var spec = state.Spec;
        if (await InstanceStarts.ScheduleOnceAsync(client, nameof(TrainingOrchestrator), state, runId, cancellationToken).ConfigureAwait(false) is { } raced)
        {
            return ApiResponse.Problem(409, "run-exists", "A run with this id is already running.", $"Run '{runId}' is {raced}.");
        }

        LogStarted(logger, runId, spec.Silos.Count, spec.Training.Rounds);
        var statusUri = $"/api/runs/{runId}";
        return new ApiResponse(202, new RunAccepted(runId, statusUri, urls(runId), resumeFrom), statusUri);
    }

    /// <summary><c>GET /api/runs?status=&amp;pageSize=&amp;continuationToken=</c>: one page of training runs.</summary>
    public Task<ApiResponse> ListAsync(DurableTaskClient client, string? status, string? pageSize, string? continuationToken, CancellationToken cancellationToken) =>
        InstanceLists.ListAsync(
            client,
            nameof(TrainingOrchestrator),
            status,
            pageSize,
            continuationToken,
            m =>
            {
                var s = ReadStatus(m);
                return new RunListItem(m.InstanceId, m.RuntimeStatus.ToString(), m.CreatedAt, m.LastUpdatedAt, s?.Phase, s?.Round, s?.TotalRounds);
            },
            (items, token) => new RunPage(items, token),
            cancellationToken);

    /// <summary><c>GET /api/runs/{id}</c>: status, round, per-round metrics and checkpoints.</summary>
    public async Task<ApiResponse> GetAsync(DurableTaskClient client, string runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var (meta, container) = await FindAsync(client, runId, cancellationToken).ConfigureAwait(false);
        if (meta is null)
        {
            return NotFound(runId);
        }

        var (manifests, latest) = await ReadCheckpointsAsync(container, runId, cancellationToken).ConfigureAwait(false);
        var status = ReadStatus(meta);
        var rounds = manifests.Where(m => m.Round > 0)
            .Select(RoundView.From)
            .ToArray();
        TrainingOutcome? outcome = meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? meta.ReadOutputAs<TrainingOutcome>() : null;
        return new ApiResponse(200, new RunDetails(
            runId,
            meta.RuntimeStatus.ToString(),
            meta.CreatedAt,
            meta.LastUpdatedAt,
            status?.Phase,
            status?.Round,
            status?.TotalRounds ?? meta.ReadInputAs<TrainingState>()?.Spec.Training.Rounds,
            rounds,
            Views(manifests, latest),
            RunFailures.SafeMessage(meta),
            outcome));
    }

    /// <summary><c>POST /api/runs/{id}/cancel</c>: terminates the run; its checkpoints stay.</summary>
    public async Task<ApiResponse> CancelAsync(DurableTaskClient client, string runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var (meta, container) = await FindAsync(client, runId, cancellationToken).ConfigureAwait(false);
        if (meta is null)
        {
            return NotFound(runId);
        }

        if (!Active.Contains(meta.RuntimeStatus))
        {
            return ApiResponse.Problem(409, "run-not-running", "The run is not running.", $"Run '{runId}' is {meta.RuntimeStatus}.");
        }

        // In this order, so that a host dying at any point leaves no job running for nothing. The marker first: every
        // job submitted after it, and every job orchestration at its next poll, sees it and cancels its job. Then the
        // sweep, a durable orchestration that cancels on their computes the jobs in flight, with every later attempt a
        // retry may have moved on to. Only then the run, and the job orchestrations, are terminated.
        await checkpoints.SetCancelledAsync(container, runId, cancelled: true, cancellationToken).ConfigureAwait(false);
        var inFlight = await SiloJobOrchestrationsAsync(client, runId, cancellationToken).ConfigureAwait(false);
        if (inFlight.Count > 0)
        {
            await client.ScheduleNewOrchestrationInstanceAsync(
                nameof(CancelSiloJobsOrchestrator),
                new CancelSiloJobsInput(runId, inFlight.SelectMany(i => i.Input.Job.ThisAndLaterAttempts(i.Input.Retry)).ToArray()),
                new StartOrchestrationOptions(CancelSiloJobsOrchestrator.InstanceId(runId, time.GetUtcNow().ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture))),
                cancellationToken).ConfigureAwait(false);
        }

        await client.TerminateInstanceAsync(runId, new TerminateInstanceOptions("cancelled through the API"), cancellationToken).ConfigureAwait(false);
        foreach (var (instanceId, _) in inFlight)
        {
            await client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions("the run was cancelled"), cancellationToken).ConfigureAwait(false);
        }

        var kept = (await checkpoints.ListAsync(container, runId, cancellationToken).ConfigureAwait(false)).Count;
        LogCancelled(logger, runId, kept, inFlight.Count);
        return new ApiResponse(202, new RunCancelled(runId, "Terminating", kept, inFlight.Count), $"/api/runs/{runId}");
    }

    // The run's silo job orchestrations still going (instance ids "{runId}:{step}[:{epoch}]"), with their inputs.
    // Terminating the run does not terminate them, and terminating them does not cancel their jobs.
    private static async Task<IReadOnlyList<(string InstanceId, SiloJobInput Input)>> SiloJobOrchestrationsAsync(DurableTaskClient client, string runId, CancellationToken cancellationToken)
    {
        var query = new OrchestrationQuery
        {
            InstanceIdPrefix = runId + ":",
            Statuses = [.. Active],
            FetchInputsAndOutputs = true,
            PageSize = 100,
        };
        var found = new List<(string, SiloJobInput)>();
        await foreach (var instance in client.GetAllInstancesAsync(query).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (instance.Name == nameof(SiloJobOrchestrator) && instance.ReadInputAs<SiloJobInput>() is { } input)
            {
                found.Add((instance.InstanceId, input));
            }
        }

        return found;
    }

    /// <summary><c>GET /api/runs/{id}/checkpoints</c>.</summary>
    public async Task<ApiResponse> CheckpointsAsync(DurableTaskClient client, string runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var (meta, container) = await FindAsync(client, runId, cancellationToken).ConfigureAwait(false);
        if (meta is null)
        {
            return NotFound(runId);
        }

        var (manifests, latest) = await ReadCheckpointsAsync(container, runId, cancellationToken).ConfigureAwait(false);
        return new ApiResponse(200, new CheckpointList(runId, latest?.Round, Views(manifests, latest)));
    }

    /// <summary>
    /// <c>GET /api/runs/{id}/checkpoints/{round}/model</c>: a committed round's model as a safetensors file, read with the
    /// orchestrator's credential and sent only if its size and SHA-256 are the ones the round's manifest records.
    /// </summary>
    /// <param name="client">Durable client.</param>
    /// <param name="runId">The run.</param>
    /// <param name="round">A round number, or <c>latest</c>.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<ApiResponse> ModelAsync(DurableTaskClient client, string runId, string round, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        int? which = null;
        if (round != "latest")
        {
            if (!int.TryParse(round, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return ApiResponse.Problem(400, "invalid-route", "Invalid round.", $"The round must be a round number or 'latest'; got {SpecPath.Quote(round)}.", [new ProblemError("route.round", "pattern", "a round number or 'latest'")]);
            }

            which = n;
        }

        var (meta, container) = await FindAsync(client, runId, cancellationToken).ConfigureAwait(false);
        if (meta is null)
        {
            return NotFound(runId);
        }

        try
        {
            var model = await ModelDownload.GetAsync(checkpoints, container, runId, which, cancellationToken).ConfigureAwait(false);
            return new ApiResponse(200, new FileBody(model.Bytes, "application/octet-stream", $"{runId}-round-{model.Round:D5}.safetensors"));
        }
        catch (ModelNotFoundException ex)
        {
            return ApiResponse.Problem(404, "checkpoint-not-found", "No such checkpoint.", ex.Message);
        }
        catch (Exception ex) when (ex is IntegrityException or SafetensorsFormatException)
        {
            LogIntegrity(logger, runId, round, ex.Message);
            return ApiResponse.Problem(409, "checkpoint-integrity", "The stored checkpoint does not match its manifest.", $"Run '{runId}' round {round}: the model blob is not the one the manifest records, so it is not served. {ex.Message}");
        }
    }

    /// <summary><c>GET /api/runs/{id}/audit</c>: the run's audit entries and their verification.</summary>
    public async Task<ApiResponse> AuditAsync(DurableTaskClient client, string runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var (meta, container) = await FindAsync(client, runId, cancellationToken).ConfigureAwait(false);
        return meta is null ? NotFound(runId) : new ApiResponse(200, await AuditReader.ReadAsync(checkpoints, container, runId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>A fresh run id: <c>{prefix}-{yyyyMMdd-HHmmss}-{4 hex}</c>.</summary>
    public string NewRunId(string prefix) => InstanceStarts.NewId(time, prefix);

    private static ApiResponse IdInUse(string runId, string detail) =>
        ApiResponse.Problem(409, "id-in-use", "This id belongs to an analysis.", detail);

    private static ApiResponse NotFound(string runId) =>
        ApiResponse.Problem(404, "run-not-found", "No such run.", $"There is no run '{runId}'.");

    private async Task<(IReadOnlyList<RoundManifest> Manifests, LatestPointer? Latest)> ReadCheckpointsAsync(string container, string runId, CancellationToken cancellationToken) =>
        (await checkpoints.ListAsync(container, runId, cancellationToken).ConfigureAwait(false),
         await checkpoints.GetLatestAsync(container, runId, cancellationToken).ConfigureAwait(false));

    private static CheckpointView[] Views(IReadOnlyList<RoundManifest> manifests, LatestPointer? latest) =>
        manifests.Select(m => new CheckpointView(m.Round, m.Model, latest?.Round == m.Round)).ToArray();

    private static RunStatus? ReadStatus(OrchestrationMetadata meta)
    {
        try
        {
            return meta.SerializedCustomStatus is null ? null : meta.ReadCustomStatusAs<RunStatus>();
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static async Task<(OrchestrationMetadata? Meta, string Container)> FindAsync(DurableTaskClient client, string runId, CancellationToken cancellationToken)
    {
        if (!RunSpecValidator.IsValidRunId(runId))
        {
            return (null, string.Empty);
        }

        var meta = await client.GetInstanceAsync(runId, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        if (meta is null || meta.Name != nameof(TrainingOrchestrator))
        {
            return (null, string.Empty);
        }

        return (meta, meta.ReadInputAs<TrainingState>()?.Spec.Checkpoints.Container ?? new CheckpointSpec().Container);
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Started run {RunId}: {Silos} silos, {Rounds} rounds")]
    private static partial void LogStarted(ILogger logger, string runId, int silos, int rounds);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Refused eyes-off run {RunId}: trainer {Trainer} ({Sha256}) is not approved")]
    private static partial void LogTrainerRefused(ILogger logger, string runId, string trainer, string sha256);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Resuming run {RunId} after round {Round}")]
    private static partial void LogResumed(ILogger logger, string runId, int round);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Error, Message = "Refused to serve run {RunId} round {Round}: {Detail}")]
    private static partial void LogIntegrity(ILogger logger, string runId, string round, string detail);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Cancelled run {RunId}; {Checkpoints} checkpoints kept, {Jobs} silo jobs in flight cancelled")]
    private static partial void LogCancelled(ILogger logger, string runId, int checkpoints, int jobs);
}
