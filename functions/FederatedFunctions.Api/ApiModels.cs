using System.Text.Json;
using System.Text.Json.Serialization;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Api;

/// <summary>What a handler returns: a status code and a body; each host turns it into its own HTTP response.</summary>
/// <param name="Status">HTTP status code.</param>
/// <param name="Body">Serialized with <see cref="ApiJson.Options"/>; null for no body.</param>
/// <param name="Location">Value of the <c>Location</c> header, if any.</param>
public sealed record ApiResponse(int Status, object? Body, string? Location = null)
{
    /// <summary>Media type of <see cref="Body"/>: <c>application/problem+json</c> for problems, a file's own type for a <see cref="FileBody"/>, else <c>application/json</c>.</summary>
    public string ContentType => Body switch
    {
        ProblemDocument => "application/problem+json",
        FileBody file => file.ContentType,
        _ => "application/json",
    };

    /// <summary>The body as both hosts write it: its bytes, its <c>Content-Type</c> header, and any further headers.</summary>
    /// <exception cref="InvalidOperationException">The response has no body.</exception>
    public EncodedBody Encode() => Body switch
    {
        null => throw new InvalidOperationException("The response has no body."),
        FileBody file => new(file.Bytes, file.ContentType, [.. file.Headers ?? new Dictionary<string, string>(), .. file.ContentDisposition is { } d ? [new KeyValuePair<string, string>("Content-Disposition", d)] : Array.Empty<KeyValuePair<string, string>>()]),
        _ => new(JsonSerializer.SerializeToUtf8Bytes(Body, Body.GetType(), ApiJson.Options), ContentType + "; charset=utf-8", []),
    };

    /// <summary>A problem response.</summary>
    public static ApiResponse Problem(int status, string type, string title, string? detail = null, IReadOnlyList<ProblemError>? errors = null) =>
        new(status, new ProblemDocument($"urn:federatedfunctions:problem:{type}", title, status, detail, errors));
}

/// <summary>A response body ready to write.</summary>
/// <param name="Bytes">The body.</param>
/// <param name="ContentType">Its <c>Content-Type</c> header.</param>
/// <param name="Headers">Further headers.</param>
public sealed record EncodedBody(ReadOnlyMemory<byte> Bytes, string ContentType, IReadOnlyList<KeyValuePair<string, string>> Headers);

/// <summary>A body sent as it is, not as JSON: a downloaded checkpoint, or the dashboard page.</summary>
/// <param name="Bytes">The bytes.</param>
/// <param name="ContentType">Their media type.</param>
/// <param name="FileName">For a download, the file name the client should save it as (<c>Content-Disposition: attachment</c>); null to show it inline.</param>
/// <param name="Headers">Further response headers (the dashboard's Content-Security-Policy).</param>
public sealed record FileBody(ReadOnlyMemory<byte> Bytes, string ContentType, string? FileName = null, IReadOnlyDictionary<string, string>? Headers = null)
{
    /// <summary>The <c>Content-Disposition</c> header value, or null.</summary>
    public string? ContentDisposition => FileName is null ? null : $"attachment; filename=\"{FileName}\"";
}

/// <summary>An RFC 9457 problem document.</summary>
/// <param name="Type">Problem type URI.</param>
/// <param name="Title">Short summary.</param>
/// <param name="Status">HTTP status code.</param>
/// <param name="Detail">Explanation of this occurrence.</param>
/// <param name="Errors">For invalid specs: every violation, each with its JSON path.</param>
public sealed record ProblemDocument(string Type, string Title, int Status, string? Detail, IReadOnlyList<ProblemError>? Errors);

/// <summary>One violation in a problem document.</summary>
/// <param name="Path">JSON path of the field.</param>
/// <param name="Rule">Rule id.</param>
/// <param name="Message">What is wrong.</param>
public sealed record ProblemError(string Path, string Rule, string Message)
{
    /// <summary>From a spec error.</summary>
    public static ProblemError From(SpecError e) => new(e.Path, e.Rule, e.Message);
}

/// <summary>The Durable management URLs of a run, in the shape the Durable Functions HTTP API uses.</summary>
public sealed record ManagementUrls(string Id, string StatusQueryGetUri, string TerminatePostUri, string PurgeHistoryDeleteUri)
{
    /// <summary>Relative links to the runs API itself, for starts that have no HTTP request to answer (timer, CLI).</summary>
    public static ManagementUrls ApiRoutes(string id) => new(id, $"/api/runs/{id}", $"/api/runs/{id}/cancel", string.Empty);
}

/// <summary>Builds the management URLs of an instance; each host has its own.</summary>
public delegate ManagementUrls ManagementUrlFactory(string instanceId);

/// <summary>Body of <c>202 Accepted</c> from <c>POST /api/runs</c>.</summary>
/// <param name="RunId">The run id (given or generated).</param>
/// <param name="StatusUri">The run's resource, <c>/api/runs/{id}</c>.</param>
/// <param name="Management">Durable management URLs.</param>
/// <param name="ResumedFrom">The checkpoint the run starts from, when resumed.</param>
public sealed record RunAccepted(string RunId, string StatusUri, ManagementUrls Management, ModelOrigin? ResumedFrom = null);

/// <summary>One run in a list.</summary>
public sealed record RunListItem(string RunId, string RuntimeStatus, DateTimeOffset CreatedAt, DateTimeOffset LastUpdatedAt, string? Phase, int? Round, int? TotalRounds);

/// <summary>A page of runs.</summary>
/// <param name="Runs">This page.</param>
/// <param name="ContinuationToken">Pass it back as <c>continuationToken</c> for the next page; null on the last page.</param>
public sealed record RunPage(IReadOnlyList<RunListItem> Runs, string? ContinuationToken);

/// <summary>Body of <c>GET /api/runs/{id}</c>.</summary>
/// <param name="RunId">Run id.</param>
/// <param name="RuntimeStatus">Durable runtime status (Pending, Running, Completed, Failed, Terminated, ...).</param>
/// <param name="CreatedAt">When the instance was created.</param>
/// <param name="LastUpdatedAt">When it last changed.</param>
/// <param name="Phase">What the run is doing, from its custom status.</param>
/// <param name="Round">Current (or last) round.</param>
/// <param name="TotalRounds">Rounds the run will do.</param>
/// <param name="Rounds">Per-round metrics of every committed round, from the manifests.</param>
/// <param name="Checkpoints">Every committed checkpoint.</param>
/// <param name="Failure">Failure message, when failed.</param>
/// <param name="Outcome">The result, when completed.</param>
public sealed record RunDetails(
    string RunId,
    string RuntimeStatus,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    string? Phase,
    int? Round,
    int? TotalRounds,
    IReadOnlyList<RoundView> Rounds,
    IReadOnlyList<CheckpointView> Checkpoints,
    string? Failure,
    TrainingOutcome? Outcome);

/// <summary>One committed round's metrics, from its manifest.</summary>
/// <param name="Round">The round.</param>
/// <param name="Participants">Silos whose update entered the aggregate.</param>
/// <param name="Rejected">Updates refused, each with its reason (late, failed, or refused by a check).</param>
/// <param name="Metrics">The round's aggregated metrics.</param>
/// <param name="CommittedAt">When it was committed.</param>
/// <param name="Sampled">Silos the participation policy asked this round.</param>
/// <param name="EvaluationFailures">Silos whose evaluation of the new model failed.</param>
/// <param name="Privacy">The round's privacy mode and, under differential privacy, the ε spent so far.</param>
/// <param name="Updates">Each accepted update as the manifest records it: silo, update hash and, eyes-on only, its example count and aggregation weight (eyes-off manifests hold neither).</param>
public sealed record RoundView(int Round, IReadOnlyList<string> Participants, IReadOnlyList<RejectedUpdate> Rejected, RoundMetrics Metrics, DateTimeOffset CommittedAt, IReadOnlyList<string> Sampled, IReadOnlyList<RejectedUpdate> EvaluationFailures, RoundPrivacy? Privacy, IReadOnlyList<Participant> Updates)
{
    /// <summary>The view of a committed round.</summary>
    public static RoundView From(RoundManifest m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new(m.Round, m.Participants.Select(p => p.SiloId).ToArray(), m.Rejected, m.Metrics, m.CreatedAt, m.Sampled, m.EvaluationFailures, m.Privacy, m.Participants);
    }
}

/// <summary>One committed checkpoint.</summary>
public sealed record CheckpointView(int Round, BlobRef Model, bool Latest);

/// <summary>Body of <c>GET /api/runs/{id}/checkpoints</c>.</summary>
public sealed record CheckpointList(string RunId, int? Latest, IReadOnlyList<CheckpointView> Checkpoints);

/// <summary>Body of <c>202</c> from <c>POST /api/runs/{id}/cancel</c>.</summary>
/// <param name="RunId">The run.</param>
/// <param name="RuntimeStatus">Where it is going: <c>Terminating</c>.</param>
/// <param name="CheckpointsKept">Committed checkpoints, which stay.</param>
/// <param name="SiloJobsCancelled">Silo jobs that were in flight on remote computes, now being cancelled there.</param>
public sealed record RunCancelled(string RunId, string RuntimeStatus, int CheckpointsKept, int SiloJobsCancelled = 0);

/// <summary>JSON settings of every API body, identical in both hosts.</summary>
public static class ApiJson
{
    /// <summary>camelCase, enums as strings, nulls omitted.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        o.Converters.Add(new JsonStringEnumConverter());
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}

/// <summary>The orchestrator's trust settings, section <c>Trust</c>.</summary>
public sealed class TrustOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Trust";

    /// <summary>Trainers an eyes-off run may use; any other is refused before any silo work starts.</summary>
    public IList<ApprovedTrainer> ApprovedTrainers { get; init; } = [];

    /// <summary>SHA-256 of the TorchScript modules (<c>model.script</c>) a run may train, in any privacy mode: the module is code the orchestrator and the silos run.</summary>
    public IList<string> ApprovedScripts { get; init; } = [];
}

/// <summary>One approved trainer: its name and the SHA-256 of its binary.</summary>
public sealed class ApprovedTrainer
{
    /// <summary>Trainer name, e.g. <c>federatedfunctions-local-trainer</c>.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Lowercase hex SHA-256 of the trainer's binary.</summary>
    public string Sha256 { get; set; } = string.Empty;
}
