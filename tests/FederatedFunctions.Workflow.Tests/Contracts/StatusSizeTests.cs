using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Converters;

namespace FederatedFunctions.Workflow.Tests.Contracts;

public sealed class StatusSizeTests
{
    [Fact]
    public void RunStatus_FullWindowAtTheSiloLimit_StaysFarBelowTheCustomStatusCap()
    {
        // Summaries carry counts, not silo lists, so the size does not grow with the number of silos.
        var recent = Enumerable.Range(1, RunStatus.RecentWindow)
            .Select(r => new RoundSummary(r, 256, 256, long.MaxValue, 1.0 / 3, 2.0 / 3, 1.0 / 7, 12345.678, 1.0 / 9))
            .ToArray();
        var json = JsonDataConverter.Default.Serialize(new RunStatus("committing", 9999, 10000, recent))!;

        // A quarter of the 16 KB cap, whatever the number of silos.
        Assert.True(json.Length < 4096, $"{json.Length} characters");
    }
}
