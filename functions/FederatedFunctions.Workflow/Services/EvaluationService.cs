using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Aggregates a round's evaluation: the eyes-off silos' reports, or, under secure aggregation, the sum of their masked evaluations.</summary>
/// <remarks>
/// <para>Eyes-off without secure aggregation (<see cref="SummarizeAsync"/>): each report is read from its silo's outbox only
/// (<see cref="IUpdateStore"/>) and checked against the size and SHA-256 the silo returned. This activity reads every
/// silo's report; the summary is returned only when at least <see cref="SummarizeEvaluationRequest.MinSilos"/> reports
/// are valid, since an aggregate over fewer silos would reveal one silo's metrics. Its example total is 0 (withheld).</para>
/// <para>Under secure aggregation (<see cref="SumAsync"/>): each silo's masked evaluation is checked as a masked update is,
/// and only the unmasked sum over the attempt's silos is decoded (<see cref="SecureEvaluationVector"/>): no silo's
/// examples, loss or correct answers are ever readable here.</para>
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

    /// <summary>Checks one attempt's masked evaluations (no reveals) or unmasks their sum into the round's metrics.</summary>
    /// <returns>
    /// Checking: no summary, and the silos whose masked evaluations are refused. Unmasking: summed, with the mean loss and
    /// accuracy over the attempt's silos when at least <see cref="SecureEvaluationRequest.MinSilos"/> of them scored an
    /// example (the example total withheld eyes-off); or, when the sum does not decode, not summed, every silo refused.
    /// </returns>
    public async Task<SecureEvaluationResult> SumAsync(SecureEvaluationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var masked = await MaskedSums.SumAsync(
            reports, new MaskingContext(request.MaskingRun, request.Round, request.Attempt), request.KeyExchange, request.Masked.Select(m => (m.SiloId, m.Masked)), SecureEvaluationVector.Length, request.Reveals, "masked evaluation", cancellationToken).ConfigureAwait(false);
        if (masked.Sum is not { } sum)
        {
            return new SecureEvaluationResult(false, null, masked.Refused);
        }

        SecureEvaluationTotals totals;
        try
        {
            totals = SecureEvaluationVector.Decode(sum, masked.Contributors.Count);
        }
        catch (ArgumentException ex)
        {
            return new SecureEvaluationResult(false, null, masked.Contributors.Select(s => new RejectedUpdate(s, "sum-does-not-decode", $"the unmasked sum of attempt {request.Attempt} does not decode ({ex.Message})")).ToArray());
        }

        return new SecureEvaluationResult(true, totals.Release(request.MinSilos, request.Privacy == Core.Specs.PrivacyModes.EyesOff), []);
    }

    private static readonly JsonSerializerOptions ReportJson = new(JsonSerializerDefaults.Web);
}
