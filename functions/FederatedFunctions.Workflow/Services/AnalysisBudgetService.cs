using System.Text.Json;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Settings of federated analyses, section <c>Analysis</c>: the datasets' privacy budgets.</summary>
/// <remarks>
/// A budget is host configuration (<c>Analysis:Budgets:{key}:Epsilon</c> and <c>:Path</c>), set by whoever governs the
/// data, never by the analyst's spec, which can only name a budget. See <c>docs/federated-analysis.md</c>.
/// </remarks>
public sealed class AnalysisOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Analysis";

    /// <summary>The datasets' privacy budgets, by key.</summary>
    public Dictionary<string, DatasetBudgetOptions> Budgets { get; init; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>One dataset's privacy budget.</summary>
public sealed class DatasetBudgetOptions
{
    /// <summary>The total ε every differentially private analysis of the dataset may spend, together.</summary>
    public double Epsilon { get; set; }

    /// <summary>The dataset: the blob path inside each silo's data container (an analysis's <c>data.path</c>) the budget covers.</summary>
    public string Path { get; set; } = string.Empty;
}

/// <summary>
/// Charges a differentially private analysis's ε to its dataset's budget, before any silo reads a row, in a ledger in the
/// checkpoint container (<see cref="BlobLayout.PrivacyLedger"/>).
/// </summary>
/// <remarks>
/// <para>Guaranteed: at-least-once safe (a charge is keyed by analysis id and execution: a retried activity finds its own
/// charge and is granted again without charging twice); concurrent charges to one budget never both pass its total (the
/// ledger is written with if-match on the version read, and a lost race reads again); a refused analysis is refused before
/// any silo step, so it touches no data. An exact analysis of data under a budget is refused, so that the budget cannot be
/// stepped around by leaving differential privacy out.</para>
/// <para>Not guaranteed: an analysis that fails after its charge keeps it (its noise was never released, but the charge is
/// conservative); a budget's path is compared as written, so the same rows under two paths are two datasets.</para>
/// </remarks>
public sealed partial class AnalysisBudgetService(ICheckpointStore checkpoints, AnalysisOptions options, ILogger<AnalysisBudgetService> logger)
{
    /// <summary>Read-modify-write attempts before contention is reported as a (retryable) failure.</summary>
    public const int MaxAttempts = 20;

    /// <summary>Charges the analysis, or refuses it.</summary>
    /// <exception cref="InvalidOperationException">The ledger was changed by others on every attempt.</exception>
    public async Task<BudgetCharge> ChargeAsync(ChargeBudgetRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);

        // A budget whose path could never equal a spec's (specs' paths have one spelling) would let exact analyses of
        // its data through: every analysis is refused until it is fixed.
        if (options.Budgets.FirstOrDefault(b => RunSpecValidator.BlobPathProblem(b.Value.Path ?? string.Empty) is not null || !(b.Value.Epsilon > 0)) is { Key: { } broken })
        {
            return new BudgetCharge(broken, 0, 0, 0, $"Analysis '{request.AnalysisId}' is refused: privacy budget '{broken}' is misconfigured (Analysis:Budgets:{broken}: Epsilon must be above 0, and Path a relative blob path without '.', '..' or empty segments, as specs spell it).");
        }

        if (request.DifferentialPrivacy is not { } dp)
        {
            var covering = options.Budgets.Where(b => b.Value.Path == request.DataPath).Select(b => b.Key).Order(StringComparer.Ordinal).ToArray();
            return covering.Length == 0
                ? new BudgetCharge(null, 0, 0, 0, null)
                : new BudgetCharge(covering[0], 0, 0, 0, $"Analysis '{request.AnalysisId}' is refused: data.path '{request.DataPath}' is under privacy budget '{covering[0]}' (Analysis:Budgets:{covering[0]}), so it may only be analysed with privacy.differentialPrivacy charged to that budget.");
        }

        if (!options.Budgets.TryGetValue(dp.Budget, out var budget))
        {
            return new BudgetCharge(dp.Budget, 0, 0, 0, $"Analysis '{request.AnalysisId}' is refused: privacy budget '{dp.Budget}' is not configured on this host (Analysis:Budgets:{dp.Budget}:Epsilon and :Path).");
        }

        if (budget.Path != request.DataPath)
        {
            return new BudgetCharge(dp.Budget, 0, 0, budget.Epsilon, $"Analysis '{request.AnalysisId}' is refused: privacy budget '{dp.Budget}' covers data.path '{budget.Path}', not '{request.DataPath}'.");
        }

        var charge = new PrivacyCharge($"{request.AnalysisId}/{request.Execution}", request.AnalysisId, dp.Mechanism, dp.Epsilon, dp.Delta, request.At);
        var path = BlobLayout.PrivacyLedger(dp.Budget);
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            var stored = await checkpoints.GetVersionedDocumentAsync(request.Container, path, cancellationToken).ConfigureAwait(false);
            var ledger = stored is null ? PrivacyLedger.Empty(dp.Budget) : JsonSerializer.Deserialize<PrivacyLedger>(stored.Content, AnalysisJson.Options)!;
            var decision = ledger.Charge(charge, budget.Epsilon);
            if (decision.Refusal is { } refusal)
            {
                LogRefused(logger, request.AnalysisId, dp.Budget, ledger.EpsilonSpent, dp.Epsilon, budget.Epsilon);
                return new BudgetCharge(dp.Budget, 0, ledger.EpsilonSpent, budget.Epsilon, refusal);
            }

            if (!decision.Changed || await checkpoints.TryPutDocumentAsync(request.Container, path, JsonSerializer.SerializeToUtf8Bytes(decision.Ledger, AnalysisJson.Options), stored?.Version, cancellationToken).ConfigureAwait(false) is not null)
            {
                LogCharged(logger, request.AnalysisId, dp.Budget, dp.Epsilon, decision.Ledger.EpsilonSpent, budget.Epsilon);
                return new BudgetCharge(dp.Budget, dp.Epsilon, decision.Ledger.EpsilonSpent, budget.Epsilon, null);
            }
        }

        throw new InvalidOperationException($"Privacy budget '{dp.Budget}': its ledger changed under every one of {MaxAttempts} attempts to charge analysis '{request.AnalysisId}'.");
    }

    [LoggerMessage(EventId = 2203, Level = LogLevel.Information, Message = "Analysis {AnalysisId}: charged epsilon {Epsilon} to budget {Budget}, {Spent} of {Total} spent")]
    private static partial void LogCharged(ILogger logger, string analysisId, string budget, double epsilon, double spent, double total);

    [LoggerMessage(EventId = 2204, Level = LogLevel.Warning, Message = "Analysis {AnalysisId}: refused by budget {Budget}, {Spent} of {Total} spent, {Epsilon} requested")]
    private static partial void LogRefused(ILogger logger, string analysisId, string budget, double spent, double epsilon, double total);
}
