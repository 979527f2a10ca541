using System.Reflection;
using System.Text.Json;
using FederatedFunctions.FunctionsApp.Functions;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow;
using Microsoft.DurableTask;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>
/// The app's composition, checked against the one list of workflow tasks: a trigger function per task, a class in the
/// container per activity, and every function class activated by the worker's own activator from the host Program.cs builds.
/// </summary>
public sealed class FunctionsCompositionTests
{
    /// <summary>The least settings the worker host needs.</summary>
    internal static readonly Dictionary<string, string?> Settings = new()
    {
        ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
        ["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated",
    };

    [Fact]
    public void WorkflowLists_HoldEveryTaskClassOfTheWorkflowAssembly()
    {
        var declared = typeof(WorkflowRegistration).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false, IsClass: true } && (typeof(ITaskActivity).IsAssignableFrom(t) || typeof(ITaskOrchestrator).IsAssignableFrom(t)))
            .ToHashSet();
        Assert.Equal(declared.OrderBy(t => t.Name), WorkflowRegistration.Activities.Concat(WorkflowRegistration.Orchestrators).OrderBy(t => t.Name));
        Assert.All(declared, t => Assert.Equal(t.Name, WorkflowRegistration.TaskName(t)));
    }

    [Fact]
    public void EveryWorkflowTask_HasATriggerFunctionOfTheSameName()
    {
        var activities = WorkerHost.Functions.Where(f => f.Trigger == "ActivityTrigger").Select(f => f.Name).Order();
        var orchestrators = WorkerHost.Functions.Where(f => f.Trigger == "OrchestrationTrigger").Select(f => f.Name).Order();
        Assert.Equal(WorkflowRegistration.Activities.Select(WorkflowRegistration.TaskName).Order(), activities);
        Assert.Equal(WorkflowRegistration.Orchestrators.Select(WorkflowRegistration.TaskName).Order(), orchestrators);
    }

    [Fact]
    public void EveryActivityWrapper_TakesTheInputAndReturnsTheOutputOfItsActivity()
    {
        foreach (var activity in WorkflowRegistration.Activities)
        {
            var baseType = activity.BaseType!;
            Assert.True(baseType.IsGenericType && baseType.GetGenericTypeDefinition() == typeof(TaskActivity<,>), $"{activity.Name} is not a TaskActivity<,>");
            var function = WorkerHost.Functions.Single(f => f.Name == activity.Name);
            Assert.Equal(baseType.GetGenericArguments()[0], function.TriggerParameter!.ParameterType);
            Assert.Equal(typeof(Task<>).MakeGenericType(baseType.GetGenericArguments()[1]), function.Method.ReturnType);
        }
    }

    [Fact]
    public void WorkerHost_ActivatesEveryFunctionClass_ThroughTheWorkersActivator()
    {
        using var host = WorkerHost.Build(Settings);
        var classes = WorkerHost.Functions.Where(f => !f.Method.IsStatic).Select(f => f.Class).Distinct().ToArray();
        Assert.NotEmpty(classes);
        foreach (var type in classes)
        {
            var (context, scope) = host.NewInvocation("instance-1");
            using (scope)
            {
                Assert.IsType(type, host.Activate(type, context));
            }
        }
    }

    [Fact]
    public void WorkerHost_HasTheDurableExtensionsClientProviderAndDataConverter()
    {
        using var host = WorkerHost.Build(Settings);
        Assert.NotNull(host.Services.GetService(typeof(Microsoft.Azure.Functions.Worker.DurableClientAttribute).Assembly.GetType("Microsoft.Azure.Functions.Worker.Extensions.DurableTask.FunctionsDurableClientProvider", throwOnError: true)!));
        Assert.NotNull(host.DataConverter);
    }

    [Fact]
    public void FunctionsMetadata_ListsExactlyTheFunctionsTheAppDeclares()
    {
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var path = Path.Combine(RepositoryPaths.Root, "functions", "FederatedFunctions.FunctionsApp", "bin", configuration, "net10.0", "functions.metadata");
        var metadata = JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray()
            .ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("bindings").EnumerateArray().Single(b => b.GetProperty("type").GetString()!.EndsWith("Trigger", StringComparison.Ordinal)).GetProperty("type").GetString());
        Assert.Equal(WorkerHost.Functions.Select(f => f.Name).Order(), metadata.Keys.Order());
        foreach (var f in WorkerHost.Functions)
        {
            Assert.Equal(char.ToLowerInvariant(f.Trigger[0]) + f.Trigger[1..], metadata[f.Name]);
        }

        Assert.Contains(RecurringTrainingFunction.Name, metadata.Keys);
    }
}
