using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

/// <summary>Why a run failed, as each durable backend records it.</summary>
public sealed class RunFailuresTests
{
    private static OrchestrationMetadata Meta(OrchestrationRuntimeStatus status, string? output = null, TaskFailureDetails? details = null) =>
        new("TrainingOrchestrator", "r") { RuntimeStatus = status, SerializedOutput = output, FailureDetails = details };

    [Fact]
    public void Message_FromFailureDetails_WhenTheBackendRecordsThem() =>
        Assert.Equal("boom", RunFailures.Message(Meta(OrchestrationRuntimeStatus.Failed, "ignored", new TaskFailureDetails("X", "boom", null, null, null))));

    [Theory]
    [InlineData("Task 'PlanSilosActivity' (#10) failed: silo 'a' is not registered.", "Task 'PlanSilosActivity' (#10) failed: silo 'a' is not registered.")]
    [InlineData("\"round 3 failed: \\\"a\\\" rejected\"", "round 3 failed: \"a\" rejected")]
    [InlineData("\"not json", "\"not json")]
    public void Message_FromTheOutput_WhenTheBackendKeepsItThere(string output, string expected) =>
        Assert.Equal(expected, RunFailures.Message(Meta(OrchestrationRuntimeStatus.Failed, output)));

    [Theory]
    [InlineData(OrchestrationRuntimeStatus.Completed, "{\"runId\":\"r\"}")]
    [InlineData(OrchestrationRuntimeStatus.Failed, null)]
    [InlineData(OrchestrationRuntimeStatus.Terminated, "\"cancelled\"")]
    public void Message_NoneForARunThatDidNotFailOrSaidNothing(OrchestrationRuntimeStatus status, string? output) =>
        Assert.Null(RunFailures.Message(Meta(status, output)));

    [Fact]
    public void SafeMessage_SasUrlAndConnectionStringInTheFailure_AreRedacted()
    {
        var message = "Task 'CommitAnalysisActivity' failed: 403 on https://acct.blob.core.example/checkpoints/a/result.json?sv=2024-05-04&sig=S3CRET%2Bsig then "
            + "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=QUtleQ==;EndpointSuffix=x password=hunter2";

        var safe = RunFailures.SafeMessage(Meta(OrchestrationRuntimeStatus.Failed, details: new TaskFailureDetails("X", message, null, null, null)))!;

        Assert.DoesNotContain("S3CRET", safe, StringComparison.Ordinal);
        Assert.DoesNotContain("QUtleQ==", safe, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", safe, StringComparison.Ordinal);
        Assert.Contains("https://acct.blob.core.example/checkpoints/a/result.json?[redacted]", safe, StringComparison.Ordinal);
        Assert.Contains("AccountKey=[redacted]", safe, StringComparison.Ordinal);
        Assert.StartsWith("Task 'CommitAnalysisActivity' failed: 403", safe, StringComparison.Ordinal);
    }
}
