using System.Text.Json;
using FederatedFunctions.Api;
using FederatedFunctions.Api.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>
/// The runs and analyses API on the local host (<c>fl serve</c>): the same routes, handlers and JSON as the Functions app,
/// plus the Durable management routes its 202 responses point to.
/// </summary>
/// <remarks>
/// It listens on loopback only and has no keys: it is for development, like <c>func start</c>, which does not check
/// function keys either. Each route only translates HTTP for <see cref="RunsApi"/> or <see cref="AnalysesApi"/>.
/// </remarks>
public sealed class LocalApiServer : IAsyncDisposable
{
    private const string Webhooks = "/runtime/webhooks/durabletask/instances";
    private readonly WebApplication app;

    private LocalApiServer(WebApplication app, string address)
    {
        this.app = app;
        Address = address;
    }

    /// <summary>The address it listens on, e.g. <c>http://127.0.0.1:7071</c>.</summary>
    public string Address { get; }

    /// <summary>Starts the server on <paramref name="url"/> (port 0 picks a free one).</summary>
    public static Task<LocalApiServer> StartAsync(LocalDurableHost host, string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        return StartAsync(host, host.Client, url, loggerFactory, cancellationToken);
    }

    /// <summary>Starts the server with <paramref name="client"/> in front of <paramref name="host"/>'s backend (tests give it one that reports chosen states).</summary>
    internal static async Task<LocalApiServer> StartAsync(LocalDurableHost host, DurableTaskClient client, string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(client);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || !System.Net.IPAddress.TryParse(uri.Host, out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"--urls must be an http:// address on a loopback IP such as 127.0.0.1 (the local API has no keys); got '{url}'.", nameof(url));
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, CommandLifetime>();
        builder.WebHost.UseUrls(url);
        var app = builder.Build();

        // Every 4xx is a problem document, including those routing makes itself: an unknown route (404) and a known
        // route with the wrong method (405).
        app.UseStatusCodePages(async context =>
        {
            var http = context.HttpContext;
            var status = http.Response.StatusCode;
            var problem = status switch
            {
                404 => ApiResponse.Problem(404, "route-not-found", "No such route.", $"{http.Request.Method} {http.Request.Path} is not a route of this API; see docs/api.md."),
                405 => ApiResponse.Problem(405, "method-not-allowed", "Method not allowed.", $"{http.Request.Path} does not accept {http.Request.Method}; see docs/api.md."),
                _ => ApiResponse.Problem(status, "http-" + status.ToString(System.Globalization.CultureInfo.InvariantCulture), ReasonPhrase(status)),
            };
            await WriteBodyAsync(http, problem).ConfigureAwait(false);
        });
        // Loopback only, and only for this origin: a request naming another host (a DNS-rebinding page) is refused, and so is
        // a changing request sent by a page of another origin (a cross-site form or fetch).
        app.Use(async (http, next) =>
        {
            var name = http.Request.Host.Host;
            if (!(string.Equals(name, "localhost", StringComparison.OrdinalIgnoreCase) || (System.Net.IPAddress.TryParse(name.Trim('[', ']'), out var hostIp) && System.Net.IPAddress.IsLoopback(hostIp))))
            {
                await WriteBodyAsync(http, ApiResponse.Problem(403, "host-not-allowed", "Host not allowed.", "fl serve answers only requests addressed to a loopback host.")).ConfigureAwait(false);
                return;
            }

            var origin = http.Request.Headers.Origin.ToString();
            if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method) && origin.Length > 0
                && !string.Equals(origin, $"{http.Request.Scheme}://{http.Request.Host}", StringComparison.OrdinalIgnoreCase))
            {
                await WriteBodyAsync(http, ApiResponse.Problem(403, "cross-origin", "Cross-origin request refused.", $"A {http.Request.Method} from a page of {origin} is not accepted.")).ConfigureAwait(false);
                return;
            }

            await next(http).ConfigureAwait(false);
        });

        var api = host.Services.GetRequiredService<RunsApi>();

        app.MapPost("/api/runs", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadLimitedAsync(http.Request.Body, http.Request.ContentLength, RunsApi.MaxBodyBytes, http.RequestAborted).ConfigureAwait(false);
            return await WriteAsync(http, await api.StartFromHttpAsync(client, http.Request.ContentType, body, Urls(http), http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
        });
        app.MapGet("/api/runs", async (HttpContext http) =>
        {
            var q = http.Request.Query;
            return await WriteAsync(http, await api.ListAsync(client, q["status"], q["pageSize"], q["continuationToken"], http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
        });
        app.MapGet("/api/runs/{id}", async (HttpContext http, string id) =>
            await WriteAsync(http, await api.GetAsync(client, id, http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        app.MapPost("/api/runs/{id}/cancel", async (HttpContext http, string id) =>
            await WriteAsync(http, await api.CancelAsync(client, id, http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        app.MapPost("/api/runs/{id}/resume", async (HttpContext http, string id) =>
            await WriteAsync(http, await api.ResumeAsync(client, id, http.Request.Query["container"], Urls(http), http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        app.MapGet("/api/runs/{id}/audit", async (HttpContext http, string id) =>
            await WriteAsync(http, await api.AuditAsync(client, id, http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        app.MapGet("/api/runs/{id}/checkpoints", async (HttpContext http, string id) =>
            await WriteAsync(http, await api.CheckpointsAsync(client, id, http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        app.MapGet("/api/runs/{id}/checkpoints/{round}/model", async (HttpContext http, string id, string round) =>
            await WriteAsync(http, await api.ModelAsync(client, id, round, http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));
        app.MapGet("/api/dashboard", async (HttpContext http) => await WriteAsync(http, DashboardPage.Response()).ConfigureAwait(false));
        app.MapGet("/", () => Results.Redirect("/api/dashboard"));

        var analyses = host.Services.GetRequiredService<AnalysesApi>();
        app.MapPost("/api/analyses", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadLimitedAsync(http.Request.Body, http.Request.ContentLength, AnalysesApi.MaxBodyBytes, http.RequestAborted).ConfigureAwait(false);
            return await WriteAsync(http, await analyses.StartFromHttpAsync(client, http.Request.ContentType, body, Urls(http), http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
        });
        app.MapGet("/api/analyses", async (HttpContext http) =>
        {
            var q = http.Request.Query;
            return await WriteAsync(http, await analyses.ListAsync(client, q["status"], q["pageSize"], q["continuationToken"], http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
        });
        app.MapGet("/api/analyses/{id}", async (HttpContext http, string id) =>
            await WriteAsync(http, await analyses.GetAsync(client, id, http.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false));

        // The Durable management routes, in the shape of the Durable Functions HTTP API.
        app.MapGet(Webhooks + "/{id}", async (HttpContext http, string id) =>
        {
            var meta = await client.GetInstanceAsync(id, getInputsAndOutputs: true, http.RequestAborted).ConfigureAwait(false);
            return meta is null
                ? await WriteAsync(http, InstanceNotFound(id)).ConfigureAwait(false)
                : Results.Json(new
                {
                    name = meta.Name,
                    instanceId = meta.InstanceId,
                    runtimeStatus = meta.RuntimeStatus.ToString(),
                    customStatus = JsonOrText(meta.SerializedCustomStatus),
                    // A failed instance's output is its failure message (plain text on some backends), with URL queries and
                    // credential-looking values redacted as GET /api/runs/{id} does.
                    output = meta.RuntimeStatus == OrchestrationRuntimeStatus.Failed
                        ? JsonSerializer.SerializeToElement(RunFailures.SafeMessage(meta))
                        : JsonOrText(meta.SerializedOutput),
                    createdTime = meta.CreatedAt,
                    lastUpdatedTime = meta.LastUpdatedAt,
                });
        });
        // As the Durable Functions webhooks answer: 202 while it runs, 410 once it has ended (nothing to terminate).
        app.MapPost(Webhooks + "/{id}/terminate", async (HttpContext http, string id) =>
        {
            var meta = await client.GetInstanceAsync(id, http.RequestAborted).ConfigureAwait(false);
            if (meta is null)
            {
                return await WriteAsync(http, InstanceNotFound(id)).ConfigureAwait(false);
            }

            if (!InstanceStarts.IsActive(meta.RuntimeStatus))
            {
                return await WriteAsync(http, ApiResponse.Problem(410, "instance-ended", "The instance has ended.", $"Instance '{id}' is {meta.RuntimeStatus}; there is nothing to terminate.")).ConfigureAwait(false);
            }

            await client.TerminateInstanceAsync(id, (object?)http.Request.Query["reason"].ToString(), http.RequestAborted).ConfigureAwait(false);
            return Results.Json(new { instanceId = id, runtimeStatus = "Terminating" }, statusCode: 202);
        });

        // History can be purged only once the instance has ended: a running one is refused with 409, not reported missing.
        app.MapDelete(Webhooks + "/{id}", async (HttpContext http, string id) =>
        {
            var meta = await client.GetInstanceAsync(id, http.RequestAborted).ConfigureAwait(false);
            if (meta is not null && InstanceStarts.IsActive(meta.RuntimeStatus))
            {
                return await WriteAsync(http, ApiResponse.Problem(409, "instance-running", "The instance is still running.", $"Instance '{id}' is {meta.RuntimeStatus}; terminate it before purging its history.")).ConfigureAwait(false);
            }

            var result = await client.PurgeInstanceAsync(id, http.RequestAborted).ConfigureAwait(false);
            return result.PurgedInstanceCount == 0 ? await WriteAsync(http, InstanceNotFound(id)).ConfigureAwait(false) : Results.Ok(new { instancesDeleted = result.PurgedInstanceCount });
        });

        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new LocalApiServer(app, address);
    }

    // A serialized value as JSON; text that is not JSON as a JSON string; null as null.
    private static JsonElement? JsonOrText(string? serialized)
    {
        if (serialized is null)
        {
            return null;
        }

        try
        {
            return JsonElement.Parse(serialized);
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(serialized);
        }
    }

    private static ApiResponse InstanceNotFound(string id) =>
        ApiResponse.Problem(404, "instance-not-found", "No such instance.", $"There is no orchestration instance '{id}'.");

    private static string ReasonPhrase(int status) =>
        Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "HTTP " + status.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static ManagementUrlFactory Urls(HttpContext http)
    {
        var root = $"{http.Request.Scheme}://{http.Request.Host}";
        return id => new ManagementUrls(
            id,
            $"{root}{Webhooks}/{id}",
            $"{root}{Webhooks}/{id}/terminate?reason={{text}}",
            $"{root}{Webhooks}/{id}");
    }

    private static async Task<IResult> WriteAsync(HttpContext http, ApiResponse response)
    {
        if (response.Location is not null)
        {
            http.Response.Headers.Location = response.Location;
        }

        if (response.Body is null)
        {
            return Results.StatusCode(response.Status);
        }

        await WriteBodyAsync(http, response).ConfigureAwait(false);
        return Results.Empty;
    }

    private static async Task WriteBodyAsync(HttpContext http, ApiResponse response)
    {
        var body = response.Encode();
        http.Response.StatusCode = response.Status;
        http.Response.ContentType = body.ContentType;
        foreach (var (name, value) in body.Headers)
        {
            http.Response.Headers[name] = value;
        }

        await http.Response.Body.WriteAsync(body.Bytes, http.RequestAborted).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
    }
}
