using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Orchestration;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>A silo job's orchestration keeps a bounded history on the Azure Storage backend however many times it polls.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SiloJobHistoryTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    [Fact]
    public async Task SiloJob_ThreeGenerationsOfPolls_StoredHistoryStaysWithinOneGenerationsWorth()
    {
        var history = await LongJobProbe.RunAsync(azurite.ConnectionString, polls: 3 * SiloJobOrchestrator.PollsPerInstance);
        log.WriteLine($"{history.Polls} polls in {history.Seconds:0.0} s: at most {history.MaxRows} history rows, {history.FinalRows} at the end");

        Assert.Equal(3 * SiloJobOrchestrator.PollsPerInstance + 1, history.Polls);

        // A generation holds at most 20 polls of about eight rows each (a timer, an activity, and the episodes around them)
        // plus its start and end: 165 here. Without continue-as-new, 61 polls would leave about 490.
        Assert.InRange(history.MaxRows, 1, 10 * SiloJobOrchestrator.PollsPerInstance);
    }
}
