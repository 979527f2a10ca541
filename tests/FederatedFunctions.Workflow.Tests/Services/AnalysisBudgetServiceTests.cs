using System.Text.Json;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Services;
using Microsoft.Extensions.Logging.Abstractions;

namespace FederatedFunctions.Workflow.Tests.Services;

/// <summary>The budget charge as an activity runs it: at least once, possibly concurrently with others on the same budget.</summary>
public sealed class AnalysisBudgetServiceTests
{
    private readonly InMemoryCheckpointStore store = new(new InMemoryBlobs());

    private AnalysisBudgetService Service(double total) => new(
        store,
        new AnalysisOptions { Budgets = { ["adult"] = new DatasetBudgetOptions { Epsilon = total, Path = "data/adult.csv" } } },
        NullLogger<AnalysisBudgetService>.Instance);

    private static ChargeBudgetRequest Request(string id, double epsilon, string execution = "exec-1") => new(
        id, execution, "checkpoints", "data/adult.csv",
        new AnalysisDifferentialPrivacySpec { Mechanism = DpMechanisms.Laplace, Epsilon = epsilon, Budget = "adult" },
        DateTime.UnixEpoch);

    private async Task<PrivacyLedger> LedgerAsync() =>
        JsonSerializer.Deserialize<PrivacyLedger>((await store.GetDocumentAsync("checkpoints", BlobLayout.PrivacyLedger("adult"), default))!, AnalysisJson.Options)!;

    [Fact]
    public async Task ChargeAsync_RetriedForTheSameExecution_ChargesOnce()
    {
        var service = Service(total: 1);

        var first = await service.ChargeAsync(Request("a", 0.4), default);
        var retried = await service.ChargeAsync(Request("a", 0.4), default);

        Assert.Null(first.Refusal);
        Assert.Null(retried.Refusal);
        Assert.Equal(0.4, retried.EpsilonSpent);
        Assert.Single((await LedgerAsync()).Charges);
    }

    [Fact]
    public async Task ChargeAsync_TheSameAnalysisIdRunAgain_IsChargedAgain()
    {
        var service = Service(total: 1);

        await service.ChargeAsync(Request("a", 0.4), default);
        var again = await service.ChargeAsync(Request("a", 0.4, execution: "exec-2"), default);

        Assert.Null(again.Refusal);
        Assert.Equal(0.8, (await LedgerAsync()).EpsilonSpent, 12);
    }

    [Fact]
    public async Task ChargeAsync_LedgerChangedBetweenReadAndWrite_RereadsAndChargesOnce()
    {
        var service = Service(total: 1);
        await service.ChargeAsync(Request("a", 0.2), default);
        store.Conflicts[BlobLayout.PrivacyLedger("adult")] = 3;

        var charge = await service.ChargeAsync(Request("b", 0.3), default);

        Assert.Null(charge.Refusal);
        Assert.Equal(0, store.Conflicts[BlobLayout.PrivacyLedger("adult")]);
        Assert.Equal(["a", "b"], (await LedgerAsync()).Charges.Select(c => c.AnalysisId));
    }

    [Fact]
    public async Task ChargeAsync_ConcurrentChargesThatTogetherExceedTheTotal_GrantOnlyWhatFits()
    {
        var service = Service(total: 1);

        var charges = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => service.ChargeAsync(Request($"c{i}", 0.3), default))));

        Assert.Equal(3, charges.Count(c => c.Refusal is null));
        Assert.Equal(0.9, (await LedgerAsync()).EpsilonSpent, 12);
    }

    [Fact]
    public async Task ChargeAsync_UnknownBudgetOrAnotherPath_IsRefusedWithoutALedger()
    {
        var service = Service(total: 1);

        var unknown = await service.ChargeAsync(Request("a", 0.1) with { DifferentialPrivacy = Request("a", 0.1).DifferentialPrivacy! with { Budget = "other" } }, default);
        var elsewhere = await service.ChargeAsync(Request("a", 0.1) with { DataPath = "data/other.csv" }, default);

        Assert.Contains("privacy budget 'other' is not configured", unknown.Refusal, StringComparison.Ordinal);
        Assert.Contains("covers data.path 'data/adult.csv', not 'data/other.csv'", elsewhere.Refusal, StringComparison.Ordinal);
        Assert.Null(await store.GetDocumentAsync("checkpoints", BlobLayout.PrivacyLedger("adult"), default));
    }

    [Theory]
    [InlineData("./data/adult.csv", 1.0)]
    [InlineData("data//adult.csv", 1.0)]
    [InlineData("data/adult.csv", 0.0)]
    public async Task ChargeAsync_AMisconfiguredBudget_RefusesEveryAnalysis_ExactOnesToo(string path, double epsilon)
    {
        var service = new AnalysisBudgetService(
            store,
            new AnalysisOptions { Budgets = { ["adult"] = new DatasetBudgetOptions { Epsilon = epsilon, Path = path } } },
            NullLogger<AnalysisBudgetService>.Instance);

        var exact = await service.ChargeAsync(Request("a", 0.1) with { DifferentialPrivacy = null }, default);

        Assert.Contains("privacy budget 'adult' is misconfigured", exact.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChargeAsync_AConfiguredKeyInAnotherCase_IsTheSameBudgetAndLedger()
    {
        var service = new AnalysisBudgetService(
            store,
            new AnalysisOptions { Budgets = { ["Adult"] = new DatasetBudgetOptions { Epsilon = 1, Path = "data/adult.csv" } } },
            NullLogger<AnalysisBudgetService>.Instance);

        var charged = await service.ChargeAsync(Request("a", 0.4), default);

        Assert.Null(charged.Refusal);
        Assert.Equal(0.4, (await LedgerAsync()).EpsilonSpent);
    }
}
