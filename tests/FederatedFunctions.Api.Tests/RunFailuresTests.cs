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
}
