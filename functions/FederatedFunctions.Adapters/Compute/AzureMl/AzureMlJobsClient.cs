using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace FederatedFunctions.Adapters.Compute.AzureMl;

/// <summary>Options of the Azure Resource Manager pipeline that talks to Azure ML.</summary>
public sealed class AzureMlClientOptions : ClientOptions
{
    /// <summary>Retries: throttling (429, honouring <c>Retry-After</c>), transient 5xx and network errors, exponential from 2 s to 60 s.</summary>
    public AzureMlClientOptions()
    {
        Retry.MaxRetries = 6;
        Retry.Mode = RetryMode.Exponential;
        Retry.Delay = TimeSpan.FromSeconds(2);
        Retry.MaxDelay = TimeSpan.FromSeconds(60);
        Retry.NetworkTimeout = TimeSpan.FromSeconds(60);
    }
}

/// <summary>A job as Azure ML reports it: its id, status, and the raw resource.</summary>
/// <param name="Name">The job's name (its id in the workspace).</param>
/// <param name="Status">Azure ML's <c>JobStatus</c>, e.g. <c>Queued</c>, <c>Running</c>, <c>Completed</c>.</param>
/// <param name="Resource">The <c>JobBaseResource</c> document.</param>
public sealed record AzureMlJob(string Name, string Status, JsonObject Resource);

/// <summary>
/// Azure ML command jobs over the ARM REST API (<c>Microsoft.MachineLearningServices/workspaces/jobs</c>, api-version
/// <see cref="ApiVersion"/>), through an <c>Azure.Core</c> pipeline: bearer tokens from <c>Azure.Identity</c> (refreshed
/// before they expire), and retries on throttling and transient errors.
/// </summary>
/// <remarks>
/// <c>Azure.ResourceManager.MachineLearning</c> is not available to this build, so the three calls the silo compute needs are
/// made here by hand against the public REST specification (<c>specification/machinelearningservices</c> in
/// <c>Azure/azure-rest-api-specs</c>, stable/2024-04-01): create (<c>PUT …/jobs/{id}</c>), read (<c>GET</c>) and cancel
/// (<c>POST …/cancel</c>, a long-running operation whose completion the caller observes by reading the job).
/// </remarks>
public sealed class AzureMlJobsClient
{
    /// <summary>The pinned api-version of the Azure ML control plane.</summary>
    public const string ApiVersion = "2024-04-01";

    private readonly HttpPipeline pipeline;
    private readonly Uri endpoint;

    /// <summary>Creates the client.</summary>
    /// <param name="endpoint">The ARM endpoint, <c>https://management.azure.com</c> in Azure's public cloud.</param>
    /// <param name="credential">The orchestrator's identity (its managed identity in Azure).</param>
    /// <param name="options">Pipeline options; a test gives its transport here.</param>
    /// <param name="audience">The token audience: ARM's, <c>https://management.azure.com</c>, in the public cloud.</param>
    public AzureMlJobsClient(Uri endpoint, TokenCredential credential, AzureMlClientOptions? options = null, string audience = "https://management.azure.com")
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(credential);
        this.endpoint = endpoint;
        var scope = audience.TrimEnd('/') + "/.default";
        pipeline = HttpPipelineBuilder.Build(options ?? new AzureMlClientOptions(), new BearerTokenAuthenticationPolicy(credential, scope));
    }

    /// <summary>The job, or null when the workspace has no job of that name.</summary>
    /// <exception cref="RequestFailedException">Any other error, after the retries; its message carries ARM's error code and message.</exception>
    public async Task<AzureMlJob?> GetAsync(AzureMlWorkspace workspace, string jobName, CancellationToken cancellationToken)
    {
        using var message = Message(RequestMethod.Get, workspace.JobPath(jobName));
        await pipeline.SendAsync(message, cancellationToken).ConfigureAwait(false);
        return message.Response.Status switch
        {
            200 => Parse(jobName, message.Response),
            404 => null,
            _ => throw Failure(message.Response),
        };
    }

    /// <summary>Creates a job (201), or returns the one that already has that name (200).</summary>
    public async Task<AzureMlJob> CreateAsync(AzureMlWorkspace workspace, string jobName, JsonObject resource, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(resource);
        using var message = Message(RequestMethod.Put, workspace.JobPath(jobName));
        message.Request.Headers.Add("Content-Type", "application/json");
        message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(resource));
        await pipeline.SendAsync(message, cancellationToken).ConfigureAwait(false);
        return message.Response.Status is 200 or 201 ? Parse(jobName, message.Response) : throw Failure(message.Response);
    }

    /// <summary>Asks Azure ML to cancel a job; false when the workspace has no such job.</summary>
    public async Task<bool> CancelAsync(AzureMlWorkspace workspace, string jobName, CancellationToken cancellationToken)
    {
        using var message = Message(RequestMethod.Post, workspace.JobPath(jobName) + "/cancel");
        await pipeline.SendAsync(message, cancellationToken).ConfigureAwait(false);
        return message.Response.Status switch
        {
            200 or 202 => true,
            404 => false,
            _ => throw Failure(message.Response),
        };
    }

    private HttpMessage Message(RequestMethod method, string path)
    {
        var message = pipeline.CreateMessage();
        message.Request.Method = method;
        var uri = new RequestUriBuilder();
        uri.Reset(endpoint);
        uri.AppendPath(path, escape: false);
        uri.AppendQuery("api-version", ApiVersion);
        message.Request.Uri = uri;
        message.Request.Headers.Add("Accept", "application/json");
        return message;
    }

    private static AzureMlJob Parse(string jobName, Response response)
    {
        var resource = JsonNode.Parse(response.Content.ToString()) as JsonObject
            ?? throw new RequestFailedException(response.Status, $"Azure ML returned a job that is not a JSON object for '{jobName}'.");
        var status = resource["properties"]?["status"]?.GetValue<string>() ?? "Unknown";
        return new AzureMlJob(jobName, status, resource);
    }

    private static RequestFailedException Failure(Response response)
    {
        string? code = null, text = null;
        try
        {
            var error = JsonNode.Parse(response.Content.ToString())?["error"];
            code = error?["code"]?.GetValue<string>();
            text = error?["message"]?.GetValue<string>();
        }
        catch (JsonException)
        {
            // Not an ARM error document: the status says enough.
        }

        return new RequestFailedException(response.Status, $"Azure ML answered {response.Status.ToString(CultureInfo.InvariantCulture)} {code ?? response.ReasonPhrase}: {text}", code, null);
    }
}

/// <summary>An Azure ML workspace, by its ARM coordinates.</summary>
public sealed record AzureMlWorkspace(string SubscriptionId, string ResourceGroup, string Workspace)
{
    /// <summary>The workspace's ARM id.</summary>
    public string Id => $"/subscriptions/{SubscriptionId}/resourceGroups/{ResourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/{Workspace}";

    /// <summary>The ARM path of a job.</summary>
    public string JobPath(string jobName) => $"{Id}/jobs/{Uri.EscapeDataString(jobName)}";

    /// <summary>The ARM id of one of the workspace's computes.</summary>
    public string ComputeId(string compute) => $"{Id}/computes/{compute}";
}
