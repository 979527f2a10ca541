using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Aggregates the evaluation reports that eyes-off silos keep in their outboxes.</summary>
/// <remarks>
/// Each report is read from its silo's outbox only (<see cref="IUpdateStore"/>) and checked against the size and
/// SHA-256 the silo returned. The summary is returned only when at least <see cref="SummarizeEvaluationRequest.MinSilos"/>
/// reports are valid: an aggregate over fewer silos would reveal one silo's metrics. Its example total is 0 (withheld).
/// </remarks>
public sealed class EvaluationService(IUpdateStore reports)
{
    /// <summary>The example-weighted evaluation of the round, or null when too few silos reported.</summary>
    public async Task<EvaluateSummary?> SummarizeAsync(SummarizeEvaluationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var outcomes = new List<EvaluateOutcome>();
        foreach (var report in request.Reports.Where(r => r.Report is not null).OrderBy(r => r.SiloId, StringComparer.Ordinal))
        {
            ReadOnlyMemory<byte> bytes;
            try
            {
                bytes = await reports.ReadUpdateAsync(report.SiloId, report.Report!, cancellationToken).ConfigureAwait(false);
            }
            catch (UpdateUnavailableException)
            {
                continue;
            }

            if (bytes.Length != report.Report!.Bytes || Hashing.Sha256Hex(bytes.Span) != report.Report.Sha256)
            {
                continue;
            }

            EvaluateOutcome? outcome;
            try
            {
                outcome = JsonSerializer.Deserialize<EvaluateOutcome>(bytes.Span, ReportJson);
            }
            catch (JsonException)
            {
                // A malformed report is one silo's problem: it is left out, and its parser message never leaves here.
                continue;
            }

            if (outcome is { Examples: > 0 and <= AggregationService.MaxExamples } && outcome.SiloId == report.SiloId && outcome.Correct >= 0 && outcome.Correct <= outcome.Examples && double.IsFinite(outcome.Loss))
            {
                outcomes.Add(outcome);
            }
        }

        // The example total is withheld (0), for the reason the aggregator withholds the training total.
        return outcomes.Count < Math.Max(1, request.MinSilos)
            ? null
            : StrategyCatalog.Create(new Core.Specs.StrategySpec { Name = request.Strategy }).AggregateEvaluate(outcomes) with { Examples = 0 };
    }

    private static readonly JsonSerializerOptions ReportJson = new(JsonSerializerDefaults.Web);
}
