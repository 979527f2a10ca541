using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.TestSupport.AzureMl;

/// <summary>What the emulator does to one job, beyond running it.</summary>
public enum JobFault
{
    /// <summary>Runs normally.</summary>
    None,

    /// <summary>Fails before its command runs, as a job whose image or compute is broken does.</summary>
    Fail,

    /// <summary>Stays queued (the compute never has capacity).</summary>
    StuckInQueue,

    /// <summary>Is cancelled on the compute while it runs (an operator, or a quota), as if from the portal.</summary>
    CanceledOnCompute,

    /// <summary>Is preempted once while running (low-priority capacity reclaimed): its process is killed, it goes back to the queue, and runs again from the start.</summary>
    Preempted,
}

/// <summary>One request the emulator served.</summary>
public sealed record EmulatedRequest(string Method, string Path, int Status, string? Token);

/// <summary>
/// A local Azure ML control plane for the Jobs API (<c>Microsoft.MachineLearningServices</c>, api-version 2024-04-01), for tests.
/// </summary>
/// <remarks>
/// <para>It serves the same routes over HTTPS, with ARM's conventions: bearer tokens checked on every request (expired ones get
/// 401), <c>x-ms-request-id</c>, ARM error documents, 201 on create and 200 on an existing job, cancel as a long-running
/// operation (202 with <c>Location</c> and <c>Retry-After</c>). Every path, query and body is validated against the official
/// specification kept in <c>AzureMl/spec</c> (<see cref="SwaggerSchema"/>); a request that breaks it gets a 400 naming each
/// violation, as the service does.</para>
/// <para>A created job walks Azure ML's status sequence (NotStarted, Starting, Preparing, Queued, Running, Finalizing,
/// Completed or Failed). Running it launches the real silo runner as a process: the job's <c>command</c> with its
/// <c>${{inputs.*}}</c> and <c>${{outputs.*}}</c> replaced by their URIs (delivery mode <c>Direct</c>), <c>fl</c> replaced by
/// <see cref="Runner"/>, and the job's user-assigned identity stood in for by that silo's credential file
/// (<see cref="Identities"/>). Its exit code decides Completed or Failed, as Azure ML's does.</para>
/// <para>Faults: per job (<see cref="Faults"/>: failed, stuck in the queue, cancelled on the compute, preempted), and for the
/// next requests (<see cref="ThrottleNext"/>: 429 with <c>Retry-After</c>; <see cref="UnavailableNext"/>: 503).</para>
/// </remarks>
public sealed partial class AzureMlEmulator : IAsyncDisposable
{
    /// <summary>The api-version the emulator implements.</summary>
    public const string ApiVersion = "2024-04-01";

    private const string JobPath = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}/jobs/{id}";
    private const string CancelPath = JobPath + "/cancel";

    private readonly WebApplication app;
    private readonly X509Certificate2 certificate;
    private readonly SwaggerSchema schema;
    private readonly ConcurrentDictionary<string, EmulatedJob> jobs = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource stopping = new();
    private int throttle;
    private int unavailable;

    private AzureMlEmulator(WebApplication app, X509Certificate2 certificate, SwaggerSchema schema)
    {
        this.app = app;
        this.certificate = certificate;
        this.schema = schema;
    }

    /// <summary>The emulator's ARM endpoint, e.g. <c>https://127.0.0.1:41234</c>.</summary>
    public Uri Endpoint { get; private set; } = null!;

    /// <summary>A transport that trusts the emulator's self-signed certificate, and only it.</summary>
    public HttpPipelineTransport Transport => new HttpClientTransport(new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString(),
    });

    /// <summary>Tokens the emulator accepts until they expire.</summary>
    public EmulatorCredential Credential { get; } = new();

    /// <summary>The silo runner's command, which stands in for the image's <c>fl</c>.</summary>
    public IReadOnlyList<string> Runner { get; set; } = [];

    /// <summary>User-assigned identities by client id, each standing for a silo's credential file.</summary>
    public ConcurrentDictionary<string, string> Identities { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Faults by job name; absent means none.</summary>
    public ConcurrentDictionary<string, JobFault> Faults { get; } = new(StringComparer.Ordinal);

    /// <summary>How long a job stays in each status before the next (Running lasts as long as its process).</summary>
    public TimeSpan StatusDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Every request served, in order.</summary>
    public ConcurrentQueue<EmulatedRequest> Requests { get; } = new();

    /// <summary>Every job created (a 201), in order; a second PUT of the same name is not a creation.</summary>
    public ConcurrentQueue<string> Created { get; } = new();

    /// <summary>The statuses each job went through.</summary>
    public IReadOnlyList<string> History(string jobName) => Named(jobName) is { } job ? job.Statuses() : [];

    /// <summary>The resource of a job as created, or null.</summary>
    public JsonObject? Resource(string jobName) => Named(jobName)?.Resource;

    private EmulatedJob? Named(string jobName) => jobs.Values.FirstOrDefault(j => j.Name == jobName);

    /// <summary>The next <paramref name="count"/> requests get 429 Too Many Requests with <c>Retry-After: 1</c>.</summary>
    public void ThrottleNext(int count) => Interlocked.Exchange(ref throttle, count);

    /// <summary>The next <paramref name="count"/> requests get 503 Service Unavailable.</summary>
    public void UnavailableNext(int count) => Interlocked.Exchange(ref unavailable, count);

    /// <summary>Validates a request body the way the emulator does (for tests of the validator itself).</summary>
    public IReadOnlyList<string> ValidateJob(JsonNode? body) => schema.Validate(body, "JobBaseResource");

    /// <summary>Starts the emulator on a free loopback port.</summary>
    public static async Task<AzureMlEmulator> StartAsync()
    {
        var specification = Path.Combine(RepositoryPaths.Root, "tests", "FederatedFunctions.TestSupport", "AzureMl", "spec", "specification", "machinelearningservices", "resource-manager", "Microsoft.MachineLearningServices", "stable", ApiVersion, "mfe.json");
        var schema = new SwaggerSchema(specification);
        var certificate = SelfSigned();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate)));
        var app = builder.Build();
        var emulator = new AzureMlEmulator(app, certificate, schema);
        app.Use(emulator.ArmConventionsAsync);
        app.MapPut(JobPath, emulator.PutAsync);
        app.MapGet(JobPath, emulator.GetAsync);
        app.MapPost(CancelPath, emulator.CancelAsync);
        await app.StartAsync().ConfigureAwait(false);
        emulator.Endpoint = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return emulator;
    }

    // Throttling, outages, authentication, the request id and the api-version, before any route.
    private async Task ArmConventionsAsync(HttpContext http, RequestDelegate next)
    {
        http.Response.Headers["x-ms-request-id"] = Guid.NewGuid().ToString();
        var token = http.Request.Headers.Authorization.ToString() is { Length: > 7 } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : null;
        if (Interlocked.Decrement(ref throttle) >= 0)
        {
            http.Response.Headers.RetryAfter = "1";
            await ErrorAsync(http, 429, "TooManyRequests", "The request is being throttled.", token).ConfigureAwait(false);
            return;
        }

        if (Interlocked.Decrement(ref unavailable) >= 0)
        {
            await ErrorAsync(http, 503, "ServiceUnavailable", "The service is temporarily unavailable.", token).ConfigureAwait(false);
            return;
        }

        var expired = false;
        if (token is null || !Credential.IsValid(token, out expired))
        {
            http.Response.Headers.WWWAuthenticate = "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\"";
            await ErrorAsync(http, 401, token is null ? "AuthenticationFailed" : expired ? "ExpiredAuthenticationToken" : "InvalidAuthenticationToken", "The access token is missing, invalid or expired.", token).ConfigureAwait(false);
            return;
        }

        var version = http.Request.Query["api-version"].ToString();
        if (version != ApiVersion)
        {
            await ErrorAsync(http, 400, "InvalidApiVersionParameter", $"The api-version '{version}' is invalid. The supported version is '{ApiVersion}'.", token).ConfigureAwait(false);
            return;
        }

        await next(http).ConfigureAwait(false);
        Requests.Enqueue(new EmulatedRequest(http.Request.Method, http.Request.Path, http.Response.StatusCode, token));
    }

    private async Task PutAsync(HttpContext http, string subscriptionId, string resourceGroupName, string workspaceName, string id)
    {
        if (await ParameterErrorsAsync(http, JobPath, "put", subscriptionId, resourceGroupName, workspaceName, id).ConfigureAwait(false))
        {
            return;
        }

        if (!(http.Request.ContentType ?? string.Empty).StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            await ErrorAsync(http, 415, "UnsupportedMediaType", "The request content type must be application/json.", null).ConfigureAwait(false);
            return;
        }

        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(http.Request.Body).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            await ErrorAsync(http, 400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: " + ex.Message, null).ConfigureAwait(false);
            return;
        }

        var errors = schema.Validate(body, "JobBaseResource");
        if (errors.Count > 0)
        {
            await ErrorAsync(http, 400, "UserError", "The job definition is invalid.", null, errors).ConfigureAwait(false);
            return;
        }

        var key = Key(subscriptionId, resourceGroupName, workspaceName, id);
        var resource = (JsonObject)body!;
        var job = new EmulatedJob(id, Arm(subscriptionId, resourceGroupName, workspaceName, id), resource);
        if (!jobs.TryAdd(key, job))
        {
            // ARM semantics: a PUT of an existing job is an update of its mutable fields; the job itself runs once.
            await WriteAsync(http, 200, jobs[key].View()).ConfigureAwait(false);
            return;
        }

        Created.Enqueue(id);
        job.Set("NotStarted");
        _ = Task.Run(() => RunAsync(job, Faults.TryGetValue(id, out var fault) ? fault : JobFault.None));
        await WriteAsync(http, 201, job.View()).ConfigureAwait(false);
    }

    private async Task GetAsync(HttpContext http, string subscriptionId, string resourceGroupName, string workspaceName, string id)
    {
        if (await ParameterErrorsAsync(http, JobPath, "get", subscriptionId, resourceGroupName, workspaceName, id).ConfigureAwait(false))
        {
            return;
        }

        if (!jobs.TryGetValue(Key(subscriptionId, resourceGroupName, workspaceName, id), out var job))
        {
            await ErrorAsync(http, 404, "UserError", $"Could not find the job '{id}' in workspace '{workspaceName}'.", null).ConfigureAwait(false);
            return;
        }

        await WriteAsync(http, 200, job.View()).ConfigureAwait(false);
    }

    private async Task CancelAsync(HttpContext http, string subscriptionId, string resourceGroupName, string workspaceName, string id)
    {
        if (await ParameterErrorsAsync(http, CancelPath, "post", subscriptionId, resourceGroupName, workspaceName, id).ConfigureAwait(false))
        {
            return;
        }

        if (!jobs.TryGetValue(Key(subscriptionId, resourceGroupName, workspaceName, id), out var job))
        {
            await ErrorAsync(http, 404, "UserError", $"Could not find the job '{id}' in workspace '{workspaceName}'.", null).ConfigureAwait(false);
            return;
        }

        // A long-running operation: accepted now, observed by reading the job.
        http.Response.Headers.Location = new Uri(Endpoint, job.ArmId + "?api-version=" + ApiVersion).AbsoluteUri;
        http.Response.Headers.RetryAfter = "10";
        if (job.IsTerminal)
        {
            http.Response.StatusCode = 200;
            return;
        }

        job.Set("CancelRequested");
        job.Kill();
        job.Set("Canceled");
        http.Response.StatusCode = 202;
    }

    // The status sequence of a job, and its process.
    private async Task RunAsync(EmulatedJob job, JobFault fault)
    {
        var ct = stopping.Token;
        try
        {
            foreach (var status in new[] { "Starting", "Preparing", "Queued" })
            {
                await Task.Delay(StatusDelay, ct).ConfigureAwait(false);
                if (!job.Set(status))
                {
                    return;
                }
            }

            if (fault == JobFault.StuckInQueue)
            {
                return;
            }

            if (fault == JobFault.Fail)
            {
                await Task.Delay(StatusDelay, ct).ConfigureAwait(false);
                job.Set("Failed");
                return;
            }

            for (var run = 1; ; run++)
            {
                await Task.Delay(StatusDelay, ct).ConfigureAwait(false);
                if (!job.Set("Running"))
                {
                    return;
                }

                var process = Launch(job);
                if (process is null)
                {
                    job.Set("Failed");
                    return;
                }

                if ((fault == JobFault.Preempted && run == 1) || fault == JobFault.CanceledOnCompute)
                {
                    await Task.Delay(StatusDelay * 2, ct).ConfigureAwait(false);
                    job.Kill();
                    if (fault == JobFault.CanceledOnCompute)
                    {
                        job.Set("Canceled");
                        return;
                    }

                    // Preempted: the capacity is reclaimed, the job goes back to the queue and starts over.
                    job.Set("Queued");
                    continue;
                }

                await process.WaitForExitAsync(ct).ConfigureAwait(false);
                if (job.IsTerminal)
                {
                    return;
                }

                job.Set("Finalizing");
                await Task.Delay(StatusDelay, ct).ConfigureAwait(false);
                job.Set(process.ExitCode == 0 ? "Completed" : "Failed");
                return;
            }
        }
        catch (OperationCanceledException)
        {
            // The emulator is stopping.
        }
    }

    private Process? Launch(EmulatedJob job)
    {
        var properties = job.Resource["properties"]!.AsObject();
        var command = Placeholder().Replace(properties["command"]!.GetValue<string>(), m =>
            properties[m.Groups[1].Value]?[m.Groups[2].Value]?["uri"]?.GetValue<string>() ?? m.Value);
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var start = new ProcessStartInfo(words[0] == "fl" ? Runner[0] : words[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (words[0] == "fl" ? Runner.Skip(1) : []).Concat(words.Skip(1)))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in properties["environmentVariables"]?.AsObject() ?? [])
        {
            start.Environment[name] = value?.GetValue<string>();
        }

        // The job's user-assigned identity: on the emulator, that silo's credential file.
        var clientId = properties["identity"]?["clientId"]?.GetValue<string>();
        if (clientId is null || !Identities.TryGetValue(clientId, out var credentials))
        {
            job.Log("the job's identity is not attached to the compute");
            return null;
        }

        start.Environment["FL_SILO_CREDENTIAL_FILE"] = credentials;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => job.Log(e.Data);
        process.ErrorDataReceived += (_, e) => job.Log(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        job.Process = process;
        return process;
    }

    /// <summary>The process running a job, if any (for tests that kill it).</summary>
    public Process? ProcessOf(string jobName) => Named(jobName)?.Process;

    /// <summary>What a job's process wrote.</summary>
    public string LogOf(string jobName) => Named(jobName)?.Output ?? string.Empty;

    private async Task<bool> ParameterErrorsAsync(HttpContext http, string path, string method, string subscriptionId, string resourceGroupName, string workspaceName, string id)
    {
        var errors = schema.ValidateParameters(
            path,
            method,
            new Dictionary<string, string> { ["subscriptionId"] = subscriptionId, ["resourceGroupName"] = resourceGroupName, ["workspaceName"] = workspaceName, ["id"] = id },
            http.Request.Query.ToDictionary(q => q.Key, q => (string?)q.Value.ToString()));
        if (errors.Count == 0)
        {
            return false;
        }

        await ErrorAsync(http, 400, "InvalidParameter", "A request parameter is invalid.", null, errors).ConfigureAwait(false);
        return true;
    }

    private async Task ErrorAsync(HttpContext http, int status, string code, string message, string? token, IReadOnlyList<string>? details = null)
    {
        var error = new JsonObject { ["code"] = code, ["message"] = message };
        if (details is not null)
        {
            error["details"] = new JsonArray(details.Select(d => (JsonNode)new JsonObject { ["code"] = "ValidationError", ["message"] = d }).ToArray());
        }

        await WriteAsync(http, status, new JsonObject { ["error"] = error }).ConfigureAwait(false);
        if (status is 401 or 429 or 503)
        {
            Requests.Enqueue(new EmulatedRequest(http.Request.Method, http.Request.Path, status, token));
        }
    }

    private static async Task WriteAsync(HttpContext http, int status, JsonObject body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        await http.Response.WriteAsync(body.ToJsonString()).ConfigureAwait(false);
    }

    private static string Key(string subscription, string group, string workspace, string id) => $"{subscription}/{group.ToLowerInvariant()}/{workspace.ToLowerInvariant()}/{id}";

    private static string Arm(string subscription, string group, string workspace, string id) =>
        $"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}/jobs/{id}";

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    [GeneratedRegex(@"\$\{\{(inputs|outputs)\.([A-Za-z0-9_]+)\}\}")]
    private static partial Regex Placeholder();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        foreach (var job in jobs.Values)
        {
            job.Kill();
        }

        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        certificate.Dispose();
        stopping.Dispose();
    }

    private sealed class EmulatedJob(string name, string armId, JsonObject resource)
    {
        private readonly Lock gate = new();
        private readonly System.Text.StringBuilder output = new();

        public string Name => name;

        public string ArmId => armId;

        public JsonObject Resource => resource;

        private List<string> History { get; } = [];

        public IReadOnlyList<string> Statuses()
        {
            lock (gate)
            {
                return [.. History];
            }
        }

        public Process? Process { get; set; }

        public string Output
        {
            get
            {
                lock (gate)
                {
                    return output.ToString();
                }
            }
        }

        public bool IsTerminal
        {
            get
            {
                lock (gate)
                {
                    return History.Count > 0 && History[^1] is "Completed" or "Failed" or "Canceled";
                }
            }
        }

        // Moves to a status unless the job has already ended (a cancel wins over a later step).
        public bool Set(string status)
        {
            lock (gate)
            {
                if (History.Count > 0 && History[^1] is "Completed" or "Failed" or "Canceled")
                {
                    return false;
                }

                History.Add(status);
                return true;
            }
        }

        public void Log(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (gate)
            {
                output.AppendLine(line);
            }
        }

        public void Kill()
        {
            try
            {
                if (Process is { HasExited: false } p)
                {
                    p.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // Gone already.
            }
        }

        public JsonObject View()
        {
            var view = (JsonObject)resource.DeepClone();
            view["id"] = armId;
            view["name"] = name;
            view["type"] = "Microsoft.MachineLearningServices/workspaces/jobs";
            lock (gate)
            {
                view["properties"]!["status"] = History.Count == 0 ? "NotStarted" : History[^1];
            }

            view["systemData"] = new JsonObject
            {
                ["createdAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                ["createdBy"] = "federatedfunctions-orchestrator",
                ["createdByType"] = "ManagedIdentity",
            };
            return view;
        }
    }
}

/// <summary>The emulator's token issuer: tokens name their expiry, and the emulator refuses them after it.</summary>
public sealed class EmulatorCredential : TokenCredential
{
    private int issued;

    /// <summary>How long each token lasts.</summary>
    public TimeSpan Lifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Tokens issued so far.</summary>
    public int Issued => issued;

    /// <inheritdoc />
    public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
    {
        var expires = DateTimeOffset.UtcNow.Add(Lifetime);
        var n = Interlocked.Increment(ref issued);
        return new AccessToken($"emu.{expires.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}.{n.ToString(CultureInfo.InvariantCulture)}.{string.Join('+', requestContext.Scopes)}", expires);
    }

    /// <inheritdoc />
    public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
        ValueTask.FromResult(GetToken(requestContext, cancellationToken));

    /// <summary>Whether a token is one of these, for ARM's audience, and unexpired.</summary>
    public bool IsValid(string token, out bool expired)
    {
        expired = false;
        var parts = token.Split('.', 4);
        if (parts.Length != 4 || parts[0] != "emu" || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) || parts[3] != "https://management.azure.com/.default")
        {
            return false;
        }

        expired = DateTimeOffset.FromUnixTimeMilliseconds(ms) <= DateTimeOffset.UtcNow;
        return !expired;
    }
}
