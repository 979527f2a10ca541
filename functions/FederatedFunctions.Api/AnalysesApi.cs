using System.Text.Json;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Api;

/// <summary>The analyses API: start a federated analysis, and read its status, then its result. Shared by the Functions app and <c>fl serve</c>.</summary>
/// <remarks>
/// <para>Like <see cref="RunsApi"/>, each handler takes a <see cref="DurableTaskClient"/> and plain request values and returns an
/// <see cref="ApiResponse"/>; the hosts only translate HTTP. A spec is refused as a run spec is (the same 413, 415 and
/// 400 problem documents, every violation with its JSON path and rule), and it runs the same
/// <see cref="AnalysisOrchestrator"/> as <c>fl analyze</c>, writing to the same container
/// (<see cref="AnalysisState.DefaultContainer"/>), so either reads the other's results.</para>
/// <para>An analysis id that has a result, or a live instance, is refused with 409: a result is never overwritten. An id
/// whose earlier execution failed or was terminated without a result may be started again; every execution's partials
/// carry their own token, so it never reads the earlier one's. Analysis ids share the orchestration instance ids with
/// training runs: an id that is a run's (instance or checkpoints) is refused too.</para>
/// </remarks>
public sealed partial class AnalysesApi(ICheckpointStore checkpoints, ISiloCatalog silos, TimeProvider time, ILogger<AnalysesApi> logger, Microsoft.Extensions.Options.IOptions<TrustOptions>? trust = null)
{
    private const string Noun = "analysis spec";

    /// <summary>Largest request body accepted, in bytes: the spec document limit, as for run specs.</summary>
    public static int MaxBodyBytes => SpecLimits.Default.MaxDocumentBytes;

    /// <summary><c>POST /api/analyses</c> as the HTTP hosts receive it: the body must be declared JSON (415 otherwise), then it is started as <see cref="StartAsync"/>.</summary>
    /// <param name="client">Durable client.</param>
    /// <param name="contentType">The request's <c>Content-Type</c> header, or null.</param>
    /// <param name="body">The request body, or null when it exceeded <see cref="MaxBodyBytes"/>.</param>
    /// <param name="urls">The host's management URLs.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public Task<ApiResponse> StartFromHttpAsync(DurableTaskClient client, string? contentType, ReadOnlyMemory<byte>? body, ManagementUrlFactory urls, CancellationToken cancellationToken) =>
        SpecRequests.RefuseNotJson(Noun, contentType) is { } refused
            ? Task.FromResult(refused)
            : StartAsync(client, body, urls, cancellationToken);

    /// <summary><c>POST /api/analyses</c>: validates the analysis spec, refuses an id in use, and starts the analysis.</summary>
    /// <param name="client">Durable client.</param>
    /// <param name="body">The request body (an analysis spec), or null when it exceeded <see cref="MaxBodyBytes"/>.</param>
    /// <param name="urls">The host's management URLs.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<ApiResponse> StartAsync(DurableTaskClient client, ReadOnlyMemory<byte>? body, ManagementUrlFactory urls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(urls);
        if (!SpecRequests.TryRead(body, Noun, MaxBodyBytes, AnalysisSpecParser.Parse, silos, s => s.Silos, out var spec, out var refused))
        {
            return refused;
        }

        var id = spec.AnalysisId ?? InstanceStarts.NewId(time, "analysis");

        // The silo runner that trains also computes an analysis's partials: eyes-off, it must be an approved one.
        if (TrainerApproval.Refuse(spec.Privacy.Mode, spec.Silos, silos, trust?.Value, "analyses", t => LogTrainerRefused(logger, id, t.Id, t.Sha256)) is { } unapproved)
        {
            return unapproved;
        }

        var state = new AnalysisState(id, spec with { AnalysisId = id }, AnalysisState.DefaultContainer);
        if (await RefuseTakenAsync(client, id, state.Container, cancellationToken).ConfigureAwait(false) is { } conflict)
        {
            return conflict;
        }

        if (await InstanceStarts.ScheduleOnceAsync(client, nameof(AnalysisOrchestrator), state, id, cancellationToken).ConfigureAwait(false) is { } raced)
        {
            return Running(id, raced);
        }

        LogStarted(logger, id, state.Spec.Silos.Count, state.Spec.Features.Count);
        var statusUri = StatusUri(id);
        return new ApiResponse(202, new AnalysisAccepted(id, nameof(OrchestrationRuntimeStatus.Pending), statusUri, urls(id)), statusUri);
    }

    /// <summary>
    /// <c>GET /api/analyses/{id}</c>: the stored result once there is one (the document <c>fl analyze --json</c> prints);
    /// until then, and when it failed or was terminated, the orchestration's status.
    /// </summary>
    /// <remarks>The result is read from the checkpoint container, so it is still served once the instance's history is purged.</remarks>
    /// <param name="client">Durable client.</param>
    /// <param name="analysisId">The analysis.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<ApiResponse> GetAsync(DurableTaskClient client, string analysisId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (!RunSpecValidator.IsValidRunId(analysisId))
        {
            return NotFound(analysisId);
        }

        var meta = await client.GetInstanceAsync(analysisId, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        if (meta is not null && meta.Name != nameof(AnalysisOrchestrator))
        {
            meta = null;
        }

        var state = meta?.ReadInputAs<AnalysisState>();
        if (meta is null || !InstanceStarts.IsActive(meta.RuntimeStatus))
        {
            var result = await AnalysisService.ReadResultAsync(checkpoints, state?.Container ?? AnalysisState.DefaultContainer, analysisId, cancellationToken).ConfigureAwait(false);
            if (result is not null)
            {
                return new ApiResponse(200, JsonSerializer.SerializeToElement(result, AnalysisJson.Options));
            }
        }

        return meta is null
            ? NotFound(analysisId)
            : new ApiResponse(200, new AnalysisStatusView(analysisId, meta.RuntimeStatus.ToString(), meta.CreatedAt, meta.LastUpdatedAt, state?.Spec.Silos, RunFailures.SafeMessage(meta)));
    }

    /// <summary><c>GET /api/analyses?status=&amp;pageSize=&amp;continuationToken=</c>: one page of analyses, as <c>GET /api/runs</c> lists runs.</summary>
    public Task<ApiResponse> ListAsync(DurableTaskClient client, string? status, string? pageSize, string? continuationToken, CancellationToken cancellationToken) =>
        InstanceLists.ListAsync(
            client,
            nameof(AnalysisOrchestrator),
            status,
            pageSize,
            continuationToken,
            m => new AnalysisListItem(m.InstanceId, m.RuntimeStatus.ToString(), m.CreatedAt, m.LastUpdatedAt),
            (items, token) => new AnalysisPage(items, token),
            cancellationToken,
            fetchInputs: false);

    /// <summary>
    /// Why <paramref name="id"/> cannot start an analysis, as a 409 problem (running, already has a result, or a training
    /// run's id), or null when it can. <c>fl analyze</c> asks the same before it schedules.
    /// </summary>
    /// <param name="client">Durable client.</param>
    /// <param name="id">The analysis id.</param>
    /// <param name="container">The checkpoint container.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<ApiResponse?> RefuseTakenAsync(DurableTaskClient client, string id, string container, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var existing = await client.GetInstanceAsync(id, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false);
        if (existing is not null && existing.Name != nameof(AnalysisOrchestrator))
        {
            return IdInUse($"Instance '{id}' is a {existing.Name} ({existing.RuntimeStatus}); analyses and runs share instance ids. Choose another analysisId.");
        }

        if (existing is not null && InstanceStarts.IsActive(existing.RuntimeStatus))
        {
            return Running(id, existing.RuntimeStatus);
        }

        if (await AnalysisService.ReadResultAsync(checkpoints, container, id, cancellationToken).ConfigureAwait(false) is not null)
        {
            return ApiResponse.Problem(409, "analysis-exists", "An analysis with this id already has a result.", $"Analysis '{id}' has a result in container '{container}'; analysis ids are not reused. Read it with GET {StatusUri(id)}, or choose another analysisId.");
        }

        return await checkpoints.GetLatestAsync(container, id, cancellationToken).ConfigureAwait(false) is null
            ? null
            : IdInUse($"Container '{container}' holds checkpoints of a run '{id}'; analyses and runs share ids. Choose another analysisId.");
    }

    private static string StatusUri(string id) => $"/api/analyses/{id}";

    private static ApiResponse Running(string id, OrchestrationRuntimeStatus status) =>
        ApiResponse.Problem(409, "analysis-exists", "An analysis with this id is already running.", $"Analysis '{id}' is {status}.");

    private static ApiResponse IdInUse(string detail) =>
        ApiResponse.Problem(409, "id-in-use", "This id belongs to a training run.", detail);

    private static ApiResponse NotFound(string id) =>
        ApiResponse.Problem(404, "analysis-not-found", "No such analysis.", $"There is no analysis '{id}'.");

    [LoggerMessage(EventId = 3202, Level = LogLevel.Warning, Message = "Refused eyes-off analysis {AnalysisId}: trainer {Trainer} ({Sha256}) is not approved")]
    private static partial void LogTrainerRefused(ILogger logger, string analysisId, string trainer, string sha256);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Information, Message = "Started analysis {AnalysisId}: {Silos} silos, {Features} features")]
    private static partial void LogStarted(ILogger logger, string analysisId, int silos, int features);
}
