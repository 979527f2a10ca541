namespace FederatedFunctions.Api;

/// <summary>Body of <c>202 Accepted</c> from <c>POST /api/analyses</c>.</summary>
/// <param name="AnalysisId">The analysis id (given or generated).</param>
/// <param name="RuntimeStatus">Where it is: <c>Pending</c>, just scheduled.</param>
/// <param name="StatusUri">The analysis's resource, <c>/api/analyses/{id}</c>: its status, then its result.</param>
/// <param name="Management">Durable management URLs of its orchestration.</param>
public sealed record AnalysisAccepted(string AnalysisId, string RuntimeStatus, string StatusUri, ManagementUrls Management);

/// <summary>Body of <c>GET /api/analyses/{id}</c> until the analysis has a result: its orchestration's status.</summary>
/// <remarks>Once it has completed, the same route answers with the result document itself instead.</remarks>
/// <param name="AnalysisId">The analysis id.</param>
/// <param name="RuntimeStatus">Durable runtime status (Pending, Running, Failed, Terminated, ...).</param>
/// <param name="CreatedAt">When the instance was created.</param>
/// <param name="LastUpdatedAt">When it last changed.</param>
/// <param name="Silos">The silos the spec names.</param>
/// <param name="Failure">Why it failed, when failed, with URL queries and credential values redacted.</param>
public sealed record AnalysisStatusView(string AnalysisId, string RuntimeStatus, DateTimeOffset CreatedAt, DateTimeOffset LastUpdatedAt, IReadOnlyList<string>? Silos, string? Failure);

/// <summary>One analysis in a list.</summary>
public sealed record AnalysisListItem(string AnalysisId, string RuntimeStatus, DateTimeOffset CreatedAt, DateTimeOffset LastUpdatedAt);

/// <summary>A page of analyses.</summary>
/// <param name="Analyses">This page.</param>
/// <param name="ContinuationToken">Pass it back as <c>continuationToken</c> for the next page; null on the last page.</param>
public sealed record AnalysisPage(IReadOnlyList<AnalysisListItem> Analyses, string? ContinuationToken);
