using System.Text.Json;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>The <c>functions.metadata</c> the Worker SDK writes at build time is what the Functions host indexes: check every function in it.</summary>
public sealed class FunctionsMetadataTests
{
    private static readonly JsonElement[] Functions = Load();

    private static JsonElement[] Load()
    {
        // The app's own output folder, same configuration as this test assembly (bin/<Configuration>/net10.0).
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var path = Path.Combine(RepositoryPaths.Root, "functions", "FederatedFunctions.FunctionsApp", "bin", configuration, "net10.0", "functions.metadata");
        Assert.True(File.Exists(path), $"missing {path}");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray().ToArray();
    }

    private static JsonElement Trigger(string function)
    {
        var f = Functions.SingleOrDefault(f => f.GetProperty("name").GetString() == function);
        Assert.True(f.ValueKind == JsonValueKind.Object, $"function {function} is not in functions.metadata");
        return f.GetProperty("bindings").EnumerateArray().Single(b => b.GetProperty("type").GetString()!.EndsWith("Trigger", StringComparison.Ordinal));
    }

    [Fact]
    public void Metadata_ListsExactlyTheExpectedFunctions()
    {
        string[] expected =
        [
            .. WorkflowRegistration.Orchestrators.Concat(WorkflowRegistration.Activities).Select(WorkflowRegistration.TaskName),
            RunsHttpFunctions.StartRun, RunsHttpFunctions.ListRuns, RunsHttpFunctions.GetRun,
            RunsHttpFunctions.CancelRun, RunsHttpFunctions.ResumeRun, RunsHttpFunctions.GetRunAudit, RunsHttpFunctions.GetRunCheckpoints, RunsHttpFunctions.GetRunModel,
            AnalysesHttpFunctions.StartAnalysis, AnalysesHttpFunctions.ListAnalyses, AnalysesHttpFunctions.GetAnalysis,
            RecurringTrainingFunction.Name, DashboardFunction.Name,
        ];
        Assert.Equal(expected.Order(), Functions.Select(f => f.GetProperty("name").GetString()!).Order());
    }

    [Theory]
    [InlineData(RunsHttpFunctions.StartRun, "post", "runs")]
    [InlineData(RunsHttpFunctions.ListRuns, "get", "runs")]
    [InlineData(RunsHttpFunctions.GetRun, "get", "runs/{id}")]
    [InlineData(RunsHttpFunctions.CancelRun, "post", "runs/{id}/cancel")]
    [InlineData(RunsHttpFunctions.ResumeRun, "post", "runs/{id}/resume")]
    [InlineData(RunsHttpFunctions.GetRunAudit, "get", "runs/{id}/audit")]
    [InlineData(RunsHttpFunctions.GetRunCheckpoints, "get", "runs/{id}/checkpoints")]
    [InlineData(RunsHttpFunctions.GetRunModel, "get", "runs/{id}/checkpoints/{round}/model")]
    [InlineData(AnalysesHttpFunctions.StartAnalysis, "post", "analyses")]
    [InlineData(AnalysesHttpFunctions.ListAnalyses, "get", "analyses")]
    [InlineData(DashboardFunction.Name, "get", "dashboard")]
    [InlineData(AnalysesHttpFunctions.GetAnalysis, "get", "analyses/{id}")]
    public void HttpFunctions_HaveTheirRouteMethodAndFunctionLevelKeys(string function, string method, string route)
    {
        var trigger = Trigger(function);
        Assert.Equal("httpTrigger", trigger.GetProperty("type").GetString());
        Assert.Equal(route, trigger.GetProperty("route").GetString());
        Assert.Equal([method], trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal("Function", trigger.GetProperty("authLevel").GetString());
    }

    [Fact]
    public void OrchestrationAndActivities_UseDurableTriggers()
    {
        foreach (var orchestrator in WorkflowRegistration.Orchestrators.Select(WorkflowRegistration.TaskName))
        {
            Assert.Equal("orchestrationTrigger", Trigger(orchestrator).GetProperty("type").GetString());
        }

        foreach (var activity in WorkflowRegistration.Activities.Select(WorkflowRegistration.TaskName))
        {
            Assert.Equal("activityTrigger", Trigger(activity).GetProperty("type").GetString());
        }
    }

    [Fact]
    public void RecurringTraining_IsATimerOnTheScheduleSetting()
    {
        var trigger = Trigger(RecurringTrainingFunction.Name);
        Assert.Equal("timerTrigger", trigger.GetProperty("type").GetString());
        Assert.Equal("%RECURRING_SCHEDULE%", trigger.GetProperty("schedule").GetString());
    }
}
