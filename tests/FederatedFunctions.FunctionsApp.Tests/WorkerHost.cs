using System.Collections.Concurrent;
using System.Reflection;
using FederatedFunctions.Workflow;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Converters;
using Microsoft.Azure.Functions.Worker.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>One <c>[Function]</c> method of the app, as reflection finds it.</summary>
public sealed record FunctionMethod(string Name, MethodInfo Method, string Trigger)
{
    public Type Class => Method.DeclaringType!;

    public ParameterInfo? TriggerParameter => Method.GetParameters().SingleOrDefault(p => p.GetCustomAttributes().Any(a => a.GetType().Name == Trigger + "Attribute"));
}

/// <summary>
/// The Functions worker host exactly as <c>Program.cs</c> builds it (<see cref="FunctionsAppHost.CreateBuilder"/>), not started,
/// plus what the worker runs at start-up only when the app is the entry assembly (under <c>dotnet test</c> it is the test host):
/// the extensions' start-up code (the Durable extension's client provider and data converter) and the generated executor.
/// Functions are activated through the worker's own <see cref="IFunctionActivator"/>, with a new service scope per
/// invocation as the worker does.
/// </summary>
public sealed class WorkerHost : IDisposable
{
    private WorkerHost(IHost host) => Host = host;

    public IHost Host { get; }

    public IServiceProvider Services => Host.Services;

    /// <summary>Every <c>[Function]</c> method the app assembly declares.</summary>
    public static IReadOnlyList<FunctionMethod> Functions { get; } = FindFunctions();

    /// <summary>Invocations per function name, across every use of every worker host.</summary>
    public static ConcurrentDictionary<string, int> Invocations { get; } = new(StringComparer.Ordinal);

    /// <summary>Builds the host from <paramref name="settings"/>; <paramref name="configureServices"/> adds to its services (a log recorder).</summary>
    public static WorkerHost Build(IDictionary<string, string?> settings, Action<IServiceCollection>? configureServices = null)
    {
        var builder = FunctionsAppHost.CreateBuilder([]);
        builder.ConfigureAppConfiguration(c => c.AddInMemoryCollection(settings));
        if (configureServices is not null)
        {
            builder.ConfigureServices(configureServices);
        }

        builder.ConfigureServices(services =>
        {
            var app = (IFunctionsWorkerApplicationBuilder)services.Single(d => d.ServiceType == typeof(IFunctionsWorkerApplicationBuilder)).ImplementationInstance!;
            var info = typeof(FunctionsAppHost).Assembly.GetCustomAttribute<WorkerExtensionStartupCodeExecutorInfoAttribute>()
                ?? throw new InvalidOperationException("The app assembly has no extension start-up code: the Worker SDK generator did not run.");
            ((WorkerExtensionStartup)Activator.CreateInstance(info.StartupCodeExecutorType)!).Configure(app);
        });
        foreach (var startup in typeof(FunctionsAppHost).Assembly.GetTypes().Where(t => typeof(IAutoConfigureStartup).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false }))
        {
            ((IAutoConfigureStartup)Activator.CreateInstance(startup)!).Configure(builder);
        }

        return new WorkerHost(builder.Build());
    }

    /// <summary>A function context as the worker makes one for an invocation: a new service scope, and the binding data.</summary>
    public (FakeFunctionContext Context, IServiceScope Scope) NewInvocation(string? instanceId = null)
    {
        var scope = Services.CreateScope();
        var context = new FakeFunctionContext { InstanceServices = scope.ServiceProvider };
        if (instanceId is not null)
        {
            context.Data["instanceId"] = instanceId;
        }

        return (context, scope);
    }

    /// <summary>Activates a function class through the worker's activator.</summary>
    public object Activate(Type functionClass, FunctionContext context) =>
        Services.GetRequiredService<IFunctionActivator>().CreateInstance(functionClass, context)
        ?? throw new InvalidOperationException($"The activator returned null for {functionClass}.");

    /// <summary>Activates <typeparamref name="T"/> for one invocation.</summary>
    public (T Functions, FakeFunctionContext Context, IServiceScope Scope) Activate<T>(string? instanceId = null)
    {
        var (context, scope) = NewInvocation(instanceId);
        return ((T)Activate(typeof(T), context), context, scope);
    }

    /// <summary>The data converter the app's Durable extension configures (the worker's serializer).</summary>
    public DataConverter DataConverter => Services.GetRequiredService<IOptions<DurableTaskClientOptions>>().Value.DataConverter;

    /// <summary>
    /// The <c>[DurableClient]</c> binding as the worker performs it: the Durable extension's own input converter, given the
    /// JSON the Functions host sends, connected to the gRPC endpoint at <paramref name="rpcPort"/>.
    /// </summary>
    public async Task<DurableTaskClient> BindDurableClientAsync(int rpcPort, string taskHub, string systemKey)
    {
        var converterType = typeof(DurableClientAttribute).Assembly.GetType("Microsoft.Azure.Functions.Worker.Extensions.DurableTask.DurableTaskClientConverter", throwOnError: true)!;
        var converter = (IInputConverter)ActivatorUtilities.CreateInstance(Services, converterType);
        var json = $$"""
            {"taskHubName":"{{taskHub}}","connectionName":"AzureWebJobsStorage","rpcBaseUrl":"http://localhost:{{rpcPort}}","requiredQueryStringParameters":"code={{systemKey}}","httpBaseUrl":"http://localhost:7071/runtime/webhooks/durabletask","maxGrpcMessageSizeInBytes":2147483647,"grpcHttpClientTimeout":"\"00:01:40\""}
            """;
        var (context, _) = NewInvocation();
        var result = await converter.ConvertAsync(new FakeConverterContext(typeof(DurableTaskClient), json, context));
        return result.Status == ConversionStatus.Succeeded
            ? (DurableTaskClient)result.Value!
            : throw new InvalidOperationException($"The DurableClient binding failed: {result.Status}", result.Error);
    }

    /// <summary>
    /// Registers every orchestration and activity function of the app with a Durable Task worker, so that a run executes
    /// through the app's own trigger methods: each activity call activates its class for the invocation and calls the method.
    /// </summary>
    public DurableTaskRegistry AddFunctionTasks(DurableTaskRegistry registry)
    {
        foreach (var f in Functions)
        {
            switch (f.Trigger)
            {
                case "OrchestrationTrigger":
                    registry.AddOrchestrator(f.Name, () => new FunctionOrchestrator(f));
                    break;
                case "ActivityTrigger":
                    registry.AddActivity(f.Name, _ => new FunctionActivity(this, f));
                    break;
            }
        }

        return registry;
    }

    public void Dispose() => Host.Dispose();

    private static IReadOnlyList<FunctionMethod> FindFunctions()
    {
        var triggers = new[] { "OrchestrationTrigger", "ActivityTrigger", "HttpTrigger", "TimerTrigger" };
        return typeof(FunctionsAppHost).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<FunctionAttribute>()))
            .Where(x => x.Attribute is not null)
            .Select(x => new FunctionMethod(
                x.Attribute!.Name,
                x.Method,
                x.Method.GetParameters().SelectMany(p => p.GetCustomAttributes()).Select(a => a.GetType().Name.Replace("Attribute", string.Empty, StringComparison.Ordinal)).Single(triggers.Contains)))
            .ToArray();
    }

    // A method that throws before its first await surfaces here, not in its task: rethrow what it threw.
    private static object? Invoke(MethodInfo method, object? instance, object?[] args)
    {
        try
        {
            return method.Invoke(instance, args);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerException).Throw();
            throw;
        }
    }

    private static async Task<object?> AwaitResult(object? returned)
    {
        if (returned is not Task task)
        {
            return returned;
        }

        await task.ConfigureAwait(false);
        return task.GetType().IsGenericType ? task.GetType().GetProperty("Result")!.GetValue(task) : null;
    }

    private static Type ResultType(MethodInfo method) =>
        method.ReturnType.IsGenericType && method.ReturnType.GetGenericTypeDefinition() == typeof(Task<>) ? method.ReturnType.GetGenericArguments()[0] : typeof(object);

    private sealed class FunctionOrchestrator(FunctionMethod function) : ITaskOrchestrator
    {
        // Under the Functions extension, GetInput<T> converts the raw input; a Durable Task worker hands over an input already
        // deserialized to InputType. The workflow class of the same name says what that type is.
        public Type InputType => WorkflowRegistration.Orchestrators.Single(o => WorkflowRegistration.TaskName(o) == function.Name).BaseType!.GetGenericArguments()[0];

        public Type OutputType => ResultType(function.Method);

        public async Task<object?> RunAsync(TaskOrchestrationContext context, object? input)
        {
            Invocations.AddOrUpdate(function.Name, 1, (_, n) => n + 1);
            var args = function.Method.GetParameters().Select(p => p.ParameterType == typeof(TaskOrchestrationContext) ? (object)context : null).ToArray();
            // No ConfigureAwait(false) here: an orchestrator's continuations must stay on the orchestration's own scheduler.
            var returned = (Task)Invoke(function.Method, function.Method.IsStatic ? null : throw new InvalidOperationException("Orchestrator functions are static."), args)!;
            await returned;
            return returned.GetType().IsGenericType ? returned.GetType().GetProperty("Result")!.GetValue(returned) : null;
        }
    }

    private sealed class FunctionActivity(WorkerHost host, FunctionMethod function) : ITaskActivity
    {
        public Type InputType => function.TriggerParameter!.ParameterType;

        public Type OutputType => ResultType(function.Method);

        public async Task<object?> RunAsync(TaskActivityContext context, object? input)
        {
            Invocations.AddOrUpdate(function.Name, 1, (_, n) => n + 1);
            var (functionContext, scope) = host.NewInvocation(context.InstanceId);
            using (scope)
            {
                var instance = function.Method.IsStatic ? null : host.Activate(function.Class, functionContext);
                var args = function.Method.GetParameters()
                    .Select(p => p == function.TriggerParameter ? input : p.ParameterType == typeof(FunctionContext) ? functionContext : throw new InvalidOperationException($"{function.Name}: unexpected parameter {p.Name}"))
                    .ToArray();
                return await AwaitResult(Invoke(function.Method, instance, args)).ConfigureAwait(false);
            }
        }
    }
}
