using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Services;

/// <summary>
/// The aggregator of an analysis: reads the silos' partials from their outboxes with the orchestrator's own grant,
/// checks each against its recorded SHA-256, merges them, and returns aggregates only: to the orchestrator, what it
/// needs to plan the next pass; at the end, the result (small cells suppressed) and the manifest, in the checkpoint
/// container. No per-silo value leaves this service.
/// </summary>
/// <remarks>
/// With differential privacy the merge returns nothing to the orchestrator, and the commit adds the noise, once, to the
/// merged statistics (<see cref="DpRelease"/>) before anything is stored: one execution releases one noisy result. A
/// retried commit finds its execution's result and keeps it rather than draw new noise, which would be a second release.
/// </remarks>
public sealed partial class AnalysisService(ICheckpointStore checkpoints, IUpdateStore outboxes, AnalysisNoise noise, ILogger<AnalysisService> logger)
{
    /// <summary>The last blob an analysis's audit log can have (the blob names' five digits): read through it to read the whole log.</summary>
    public const int MaxAuditBlob = 99_999;

    /// <summary>
    /// Merges one pass: each numeric column's present count over every row (and, eyes-on, its global range), and the
    /// quantile searches narrowed with the pass's summed counts. The counts at the thresholds do not leave this service.
    /// </summary>
    public async Task<AnalysisPassSummary> MergePassAsync(MergeAnalysisPassRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (merged, coverage, refused) = await ReadMergedAsync(request.Partials, request.Execution, request.Pass, request.Secure, request.MinSilos, cancellationToken).ConfigureAwait(false);
        if (merged is null)
        {
            // Secure aggregation, checking an attempt: nothing is unmasked yet, and nothing is recorded.
            return new AnalysisPassSummary(new Dictionary<string, ColumnRange>(), [], null, refused);
        }

        await AuditPassAsync(request, cancellationToken).ConfigureAwait(false);
        if (request.DifferentialPrivacy)
        {
            LogMerged(logger, request.AnalysisId, request.Pass, request.Partials.Count);
            return new AnalysisPassSummary(new Dictionary<string, ColumnRange>(), []);
        }

        // No range eyes-off; none under secure aggregation either, where the min and max are not sums.
        var eyesOn = request.Privacy != PrivacyModes.EyesOff && request.Secure is null;
        var columns = AnalysisReport.Overall(merged).Features
            .Where(f => f.Value.Moments is not null)
            .ToDictionary(
                f => f.Key,
                f => new ColumnRange(f.Value.Moments!.Count, eyesOn && f.Value.Moments.Count > 0 ? f.Value.Moments.Min : null, eyesOn && f.Value.Moments.Count > 0 ? f.Value.Moments.Max : null),
                StringComparer.Ordinal);

        // The union of the searches' thresholds per column, as the orchestrator asked the silos for them.
        var union = ColumnSearch.Thresholds(request.Searches);
        var searches = request.Searches.Select(s =>
        {
            var mine = s.Search.Thresholds();
            var at = s.Group is null
                ? merged.CountsAtOrBelow[s.Column]
                : merged.Groups.GetValueOrDefault(s.Group)?.Features.GetValueOrDefault(s.Column)?.CountsAtOrBelow ?? new long[union[s.Column].Length];
            var counts = mine.Select(t => at[Array.BinarySearch(union[s.Column], t)]).ToArray();
            return s with { Search = s.Search.Narrow(mine, counts, request.MinCount) };
        }).ToArray();
        LogMerged(logger, request.AnalysisId, request.Pass, request.Partials.Count);
        return new AnalysisPassSummary(columns, searches, GroupSearches(merged, coverage, request, columns));
    }

    // Per group the result will show, one search per asked quantile of each column with at least k values there, over
    // the global range (eyes-on) or every double (eyes-off): a withheld group's count never reaches history.
    private static ColumnSearch[] GroupSearches(AnalysisPartial merged, CellCoverage coverage, MergeAnalysisPassRequest request, IReadOnlyDictionary<string, ColumnRange> columns)
    {
        if (request.GroupQuantiles is not { Count: > 0 } asks)
        {
            return [];
        }

        var shown = AnalysisReport.ShownGroups(merged, request.MinCount, coverage);
        return merged.Groups.Where(g => shown.Contains(g.Key))
            .SelectMany(g => asks.SelectMany(ask =>
                g.Value.Features.GetValueOrDefault(ask.Column)?.Moments is { } m && CellSuppression.Reportable(m.Count, request.MinCount) && coverage.Covered(g.Key, ask.Column, CellCoverage.Values) && columns.GetValueOrDefault(ask.Column) is { } range
                    ? ask.Probabilities.Select(p => new ColumnSearch(ask.Column, QuantileSearch.Start(p, m.Count, range.Min ?? -double.MaxValue, range.Max ?? double.MaxValue), g.Key))
                    : []))
            .ToArray();
    }

    /// <summary>Builds the result from every pass, with small cells suppressed, and writes it with its manifest.</summary>
    public async Task<AnalysisOutcome> CommitAsync(CommitAnalysisRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var state = request.State;
        var minSilos = state.Spec.Privacy.MinSilos;
        var (first, firstCoverage, _) = await ReadMergedAsync(request.Passes[0], request.Execution, 1, request.Secure?[0], minSilos, cancellationToken).ConfigureAwait(false);
        var (ranged, rangedCoverage, _) = request.Passes.Count > 1
            ? await ReadMergedAsync(request.Passes[1], request.Execution, 2, request.Secure?[1], minSilos, cancellationToken).ConfigureAwait(false)
            : (null, CellCoverage.None, []);
        if (first is null)
        {
            throw new InvalidOperationException($"Analysis '{state.AnalysisId}': the commit was given pass 1's masked vectors without the self-mask seeds that unmask their sum.");
        }

        var silos = request.Passes[0].Select(p => p.SiloId).ToArray();
        var resultRef = state.Spec.Privacy.DifferentialPrivacy is null
            ? await checkpoints.PutDocumentAsync(
                state.Container,
                BlobLayout.AnalysisResult(state.AnalysisId),
                JsonSerializer.SerializeToUtf8Bytes(AnalysisReport.Build(state.AnalysisId, state.Spec, silos, first, ranged, request.Quantiles.Select(q => new QuantileEnd(q.Group, q.Column, q.Probability, q.Low, q.High)).ToArray(), request.MinCount, CellCoverage.Combine(firstCoverage, rangedCoverage)), AnalysisJson.Options),
                cancellationToken).ConfigureAwait(false)
            : await ReleaseOnceAsync(request, silos, first, cancellationToken).ConfigureAwait(false);
        var audit = await AuditHeadAsync(state, cancellationToken).ConfigureAwait(false);
        var manifest = new AnalysisManifest(state.AnalysisId, request.CreatedAt, silos, request.Passes, resultRef, request.MinCount, state.Spec, audit);
        var manifestRef = await checkpoints.PutDocumentAsync(state.Container, BlobLayout.AnalysisManifest(state.AnalysisId), JsonSerializer.SerializeToUtf8Bytes(manifest, AnalysisJson.Options), cancellationToken).ConfigureAwait(false);
        LogCommitted(logger, state.AnalysisId, silos.Length, request.Passes.Count);
        return new AnalysisOutcome(state.AnalysisId, resultRef, manifestRef, silos, request.Passes.Count);
    }

    /// <summary>The standardization a training run's analysis computed: each feature's federated mean and standard deviation.</summary>
    /// <exception cref="InvalidOperationException">The result is missing, or a feature's statistics were withheld.</exception>
    public async Task<Core.Specs.FeatureStandardization> ReadStandardizationAsync(ReadStandardizationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var result = await ReadResultAsync(checkpoints, request.Container, request.AnalysisId, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Analysis '{request.AnalysisId}' has no result in container '{request.Container}'.");
        return StandardizationAnalysis.From(result, request.Features);
    }

    /// <summary>Reads an analysis's manifest back, or null when it has none.</summary>
    public static async Task<AnalysisManifest?> ReadManifestAsync(ICheckpointStore checkpoints, string container, string analysisId, CancellationToken cancellationToken) =>
        await (checkpoints ?? throw new ArgumentNullException(nameof(checkpoints))).GetDocumentAsync(container, BlobLayout.AnalysisManifest(analysisId), cancellationToken).ConfigureAwait(false) is { } bytes
            ? JsonSerializer.Deserialize<AnalysisManifest>(bytes, AnalysisJson.Options)
            : null;

    /// <summary>Reads an analysis's result back, or null when it has none.</summary>
    public static async Task<AnalysisResult?> ReadResultAsync(ICheckpointStore checkpoints, string container, string analysisId, CancellationToken cancellationToken) =>
        await (checkpoints ?? throw new ArgumentNullException(nameof(checkpoints))).GetDocumentAsync(container, BlobLayout.AnalysisResult(analysisId), cancellationToken).ConfigureAwait(false) is { } bytes
            ? JsonSerializer.Deserialize<AnalysisResult>(bytes, AnalysisJson.Options)
            : null;

    // The pass's entries, appended to the analysis's log as its next blob and chained from its head, unless a retry of
    // this merge already did. Merges of one analysis id never run at once (passes are sequential, and an id is refused
    // while it runs), so reading the log and then appending is safe.
    private async Task AuditPassAsync(MergeAnalysisPassRequest request, CancellationToken cancellationToken)
    {
        if (request.Audit is not { } audit)
        {
            return;
        }

        var entries = AuditLog.Parse(await checkpoints.ReadAuditAsync(audit.Container, request.AnalysisId, MaxAuditBlob, cancellationToken).ConfigureAwait(false));
        var marker = AnalysisAudit.PassMarker(request.Execution, request.Pass);
        if (entries.Any(e => e.Policy.Checks.StartsWith(marker, StringComparison.Ordinal)))
        {
            return;
        }

        var index = entries.Count == 0 ? 1 : entries[^1].Round + 1;
        var (lines, _) = AuditLog.Chain(Head(entries), AnalysisAudit.PassDrafts(request, audit, index));
        await checkpoints.PutAuditAsync(audit.Container, request.AnalysisId, index, lines, cancellationToken).ConfigureAwait(false);
    }

    // The head of the analysis's audit log, which the manifest anchors.
    private async Task<AuditHead?> AuditHeadAsync(AnalysisState state, CancellationToken cancellationToken) =>
        Head(AuditLog.Parse(await checkpoints.ReadAuditAsync(state.Container, state.AnalysisId, MaxAuditBlob, cancellationToken).ConfigureAwait(false)));

    private static AuditHead? Head(IReadOnlyList<AuditEntry> entries) =>
        entries.Count == 0 ? null : new AuditHead(entries[^1].Sequence, entries[^1].Hash);

    // The noisy result of this execution: the one already stored by an earlier attempt of this commit, or a new one,
    // written only if no other attempt wrote one in between (if-match on the version read).
    private async Task<BlobRef> ReleaseOnceAsync(CommitAnalysisRequest request, IReadOnlyList<string> silos, AnalysisPartial first, CancellationToken cancellationToken)
    {
        var (state, path) = (request.State, BlobLayout.AnalysisResult(request.State.AnalysisId));
        for (var attempt = 1; attempt <= AnalysisBudgetService.MaxAttempts; attempt++)
        {
            var stored = await checkpoints.GetVersionedDocumentAsync(state.Container, path, cancellationToken).ConfigureAwait(false);
            if (stored is not null && JsonSerializer.Deserialize<AnalysisResult>(stored.Content, AnalysisJson.Options)?.DifferentialPrivacy?.Execution == request.Execution)
            {
                return await checkpoints.PutDocumentAsync(state.Container, path, stored.Content, cancellationToken).ConfigureAwait(false);
            }

            var result = DpRelease.Build(state.AnalysisId, state.Spec, silos, first, request.MinCount, request.Execution, noise.Create());
            if (await checkpoints.TryPutDocumentAsync(state.Container, path, JsonSerializer.SerializeToUtf8Bytes(result, AnalysisJson.Options), stored?.Version, cancellationToken).ConfigureAwait(false) is { } written)
            {
                return written;
            }
        }

        throw new InvalidOperationException($"Analysis '{state.AnalysisId}': its result changed under every one of {AnalysisBudgetService.MaxAttempts} attempts to write it.");
    }

    // A pass's merged partial and the coverage of its cells: from the silos' partials; or, under secure aggregation, from
    // the sum of their masked vectors, once every silo of the attempt revealed its self-mask (before that, the vectors are
    // only checked: no merged partial, and the silos whose vectors are refused).
    private async Task<(AnalysisPartial? Merged, CellCoverage Coverage, IReadOnlyList<RejectedUpdate> Refused)> ReadMergedAsync(
        IReadOnlyList<SiloAnalysisRef> refs, string execution, int pass, SecurePass? secure, int minSilos, CancellationToken cancellationToken)
    {
        if (secure is null)
        {
            var partials = await ReadAsync(refs, execution, pass, cancellationToken).ConfigureAwait(false);
            return (AnalysisMerge.Merge(partials), CellCoverage.Of(partials, minSilos), []);
        }

        var masked = await MaskedSums.SumAsync(
            outboxes, new MaskingContext(secure.MaskingRun, pass, secure.Attempt), secure.KeyExchange, refs.Select(r => (r.SiloId, r.Partial)), checked((int)SecureAnalysisVector.Length(secure.Query)), secure.Reveals, "masked partial", cancellationToken).ConfigureAwait(false);
        if (masked.Refused.FirstOrDefault(r => r.Reason == "not-revealed") is { } unrevealed)
        {
            throw new InvalidOperationException($"Analysis pass {pass}, secure aggregation attempt {secure.Attempt}: silo '{unrevealed.SiloId}' revealed no self-mask.");
        }

        if (masked.Sum is not { } sum)
        {
            return (null, CellCoverage.None, masked.Refused);
        }

        try
        {
            var (merged, coverage) = SecureAnalysisVector.Decode(secure.Query, pass, sum, masked.Contributors.Count, minSilos);
            return (merged, coverage, []);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"Analysis pass {pass}, secure aggregation attempt {secure.Attempt}: the sum of the masked partials does not decode ({ex.Message}).", ex);
        }
    }

    private async Task<AnalysisPartial[]> ReadAsync(IReadOnlyList<SiloAnalysisRef> refs, string execution, int pass, CancellationToken cancellationToken)
    {
        var partials = new AnalysisPartial[refs.Count];
        for (var i = 0; i < refs.Count; i++)
        {
            var (silo, blob) = (refs[i].SiloId, refs[i].Partial);
            var bytes = await outboxes.ReadUpdateAsync(silo, blob, cancellationToken).ConfigureAwait(false);
            if (bytes.Length != blob.Bytes || Hashing.Sha256Hex(bytes.Span) != blob.Sha256)
            {
                throw new InvalidDataException($"Silo '{silo}''s partial of pass {pass} does not match its recorded SHA-256 and size: it was changed after it was reported.");
            }

            var partial = JsonSerializer.Deserialize<AnalysisPartial>(bytes.Span, AnalysisJson.Options);
            partials[i] = partial is not null && partial.SiloId == silo && partial.Pass == pass && partial.Execution == execution
                ? partial
                : throw new InvalidDataException($"Silo '{silo}''s partial of pass {pass} is not that silo's partial of that pass of this execution.");
        }

        return partials;
    }

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Analysis {AnalysisId}: merged pass {Pass} of {Silos} silos")]
    private static partial void LogMerged(ILogger logger, string analysisId, int pass, int silos);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Information, Message = "Analysis {AnalysisId}: result written ({Silos} silos, {Passes} passes)")]
    private static partial void LogCommitted(ILogger logger, string analysisId, int silos, int passes);
}

/// <summary>An analysis's manifest: who took part, each pass's partials by reference and SHA-256, the result's reference.</summary>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="CreatedAt">When it ran.</param>
/// <param name="Silos">The silos that took part.</param>
/// <param name="Passes">Each pass's partials.</param>
/// <param name="Result">The result document.</param>
/// <param name="MinCount">The least rows per reported cell applied.</param>
/// <param name="Spec">The spec.</param>
/// <param name="Audit">The head of the analysis's audit log (one entry per partial), which <c>fl audit</c> verifies the log against.</param>
public sealed record AnalysisManifest(string AnalysisId, DateTime CreatedAt, IReadOnlyList<string> Silos, IReadOnlyList<IReadOnlyList<SiloAnalysisRef>> Passes, BlobRef Result, int MinCount, AnalysisSpec Spec, AuditHead? Audit);
