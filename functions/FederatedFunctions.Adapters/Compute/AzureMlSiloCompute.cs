using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FederatedFunctions.Adapters.Compute.AzureMl;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.Extensions.Options;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>Settings of the Azure ML compute on this host: section <c>Compute:AzureMl</c>. None is secret.</summary>
public sealed class AzureMlHostOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Compute:AzureMl";

    /// <summary>The Azure Resource Manager endpoint.</summary>
    public string Endpoint { get; set; } = "https://management.azure.com";

    /// <summary>The token audience for ARM.</summary>
    public string Audience { get; set; } = "https://management.azure.com";

    /// <summary>Client id of the user-assigned identity the orchestrator submits jobs with; absent means the default credential chain (its system-assigned identity in Azure).</summary>
    public string? ManagedIdentityClientId { get; set; }
}

/// <summary>Azure ML clients for workspaces in other tenants, one per (tenant, application), signed in as <see cref="CrossTenantCredential"/>.</summary>
public sealed class AzureMlTenantClients(IOptions<AzureMlHostOptions> options)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Tenant, string Application), AzureMlJobsClient> clients = new();

    /// <summary>The client for <paramref name="tenantId"/>, as <paramref name="applicationClientId"/>.</summary>
    /// <exception cref="SiloRegistryException">The host names no user-assigned identity (<c>Compute:AzureMl:ManagedIdentityClientId</c>) to sign in with.</exception>
    public AzureMlJobsClient For(string tenantId, string applicationClientId) => clients.GetOrAdd((tenantId, applicationClientId), key =>
    {
        var host = options.Value;
        var credential = CrossTenantCredential.Create(key.Tenant, key.Application, host.ManagedIdentityClientId, $"Azure ML in tenant {key.Tenant}; the host's 'Compute:AzureMl:ManagedIdentityClientId'");
        return new AzureMlJobsClient(new Uri(host.Endpoint), credential, audience: host.Audience);
    });
}

/// <summary>
/// The <c>azureml</c> compute: each silo step is an Azure ML command job on the compute the data provider attached to Contoso's
/// workspace, running as the provider's user-assigned identity, with the silo runner's image.
/// </summary>
/// <remarks>
/// <para>The job's name is the step's deterministic job name, so a start finds the job it already created (a read first,
/// then a create). The job carries no secret: its inputs are the job document, the global model and the silo's data
/// container by URI (delivery mode <c>Direct</c>: the runner reads them with the job's identity), its output is the silo's
/// outbox container, and its identity is named by id. The runner writes the step's outcome to the outbox, where the
/// orchestrator collects it; Azure ML's own status says only whether the job ran.</para>
/// <para>Every Azure ML status maps to the orchestrator's view: <c>NotStarted</c>, <c>Starting</c>, <c>Provisioning</c>,
/// <c>Preparing</c> and <c>Queued</c> are queued; <c>Running</c>, <c>Finalizing</c> and <c>CancelRequested</c> are running;
/// <c>Completed</c>, <c>Failed</c> and <c>Canceled</c> are final; anything else (<c>NotResponding</c>, <c>Paused</c>,
/// <c>Unknown</c>, a status added later) is unknown and waited on, within the round's deadline.</para>
/// </remarks>
public sealed partial class AzureMlSiloCompute(ISiloRegistry registry, AzureMlJobsClient client, AzureMlTenantClients? tenants = null) : ISiloComputeKind
{
    /// <inheritdoc />
    public string Kind => SiloComputeKinds.AzureMl;

    /// <inheritdoc />
    public bool Inline => false;

    /// <inheritdoc />
    public int DefaultPollSeconds => 60;

    /// <inheritdoc />
    public void Validate(string siloId, SiloEndpoint entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var ml = entry.Compute.AzureMl ?? throw new SiloRegistryException($"Silo '{siloId}': 'Compute:AzureMl' is required with an 'azureml' compute.");
        Require(siloId, "SubscriptionId", ml.SubscriptionId);
        Require(siloId, "ResourceGroup", ml.ResourceGroup);
        Require(siloId, "Compute", ml.Compute);
        Require(siloId, "Environment", ml.Environment);
        if (!WorkspaceName().IsMatch(ml.Workspace ?? string.Empty))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:AzureMl:Workspace' must be an Azure ML workspace name (3-33 letters, digits, '_' and '-'); got '{ml.Workspace}'.");
        }

        if (!Guid.TryParse(ml.IdentityClientId, out _))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:AzureMl:IdentityClientId' must be the client id (a GUID) of the user-assigned identity the silo's jobs run as.");
        }

        if ((ml.TenantId ?? ml.ApplicationClientId) is not null && !(Guid.TryParse(ml.TenantId, out _) && Guid.TryParse(ml.ApplicationClientId, out _)))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:AzureMl:TenantId' and 'Compute:AzureMl:ApplicationClientId' go together, as GUIDs: the silo's tenant and Contoso's multi-tenant application.");
        }

        if (ml.ImageDigest is not { Length: 64 } digest || !digest.All(Uri.IsHexDigit))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:AzureMl:ImageDigest' must be the 64 hex digits of the silo runner image's SHA-256 digest, the trainer eyes-off runs approve.");
        }
    }

    /// <inheritdoc />
    public TrainerIdentity Trainer(string siloId, SiloEndpoint entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var ml = entry.Compute.AzureMl!;
        return new TrainerIdentity("azureml-environment:" + ml.Environment, ml.ImageDigest!.ToLowerInvariant());
    }

    /// <inheritdoc />
    public async Task<SiloJobStatus> StartAsync(SiloJob job, BlobRef? request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        var (entry, workspace, client) = Resolve(job.Step.SiloId);
        var existing = await client.GetAsync(workspace, job.Name, cancellationToken).ConfigureAwait(false);
        var created = existing ?? await client.CreateAsync(workspace, job.Name, Definition(job, request, entry, workspace), cancellationToken).ConfigureAwait(false);
        return Status(job, created.Status);
    }

    /// <inheritdoc />
    public async Task<SiloJobStatus> GetAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var (_, workspace, client) = Resolve(job.Step.SiloId);
        var found = await client.GetAsync(workspace, job.Name, cancellationToken).ConfigureAwait(false);
        return found is null
            ? new SiloJobStatus(job.Name, SiloJobState.Failed, "azureml:NotFound", Detail: "the workspace has no such job")
            : Status(job, found.Status);
    }

    /// <inheritdoc />
    public async Task CancelAsync(SiloJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var (_, workspace, client) = Resolve(job.Step.SiloId);
        if (await client.GetAsync(workspace, job.Name, cancellationToken).ConfigureAwait(false) is { } found && Map(found.Status) is not (SiloJobState.Completed or SiloJobState.Failed or SiloJobState.Canceled))
        {
            await client.CancelAsync(workspace, job.Name, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The orchestrator's view of an Azure ML job status.</summary>
    public static SiloJobState Map(string status) => status switch
    {
        "NotStarted" or "Starting" or "Provisioning" or "Preparing" or "Queued" => SiloJobState.Queued,
        "Running" or "Finalizing" or "CancelRequested" => SiloJobState.Running,
        "Completed" => SiloJobState.Completed,
        "Failed" => SiloJobState.Failed,
        "Canceled" => SiloJobState.Canceled,
        _ => SiloJobState.Unknown,
    };

    /// <summary>The command job that runs one silo step: the silo runner, its inputs by URI, the outbox, the identity; no secret.</summary>
    public static JsonObject Definition(SiloJob job, BlobRef request, SiloEndpoint entry, AzureMlWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(workspace);
        var ml = entry.Compute.AzureMl!;
        var silo = job.Step.SiloId;
        var inputs = new JsonObject
        {
            ["job"] = Input("uri_file", request.Uri, "The job document, in the orchestrator's storage."),
            ["data"] = Input("uri_folder", SiloRegistry.ContainerUri(silo, entry, entry.Container).AbsoluteUri, "The silo's data container."),
        };
        if ((job.Step.Train?.GlobalModel ?? job.Step.Evaluate?.Model ?? job.Step.Mask?.GlobalModel) is { } model)
        {
            inputs["model"] = Input("uri_file", model.Uri, "The round's global model, in the orchestrator's storage.");
        }

        var properties = new JsonObject
        {
            ["jobType"] = "Command",
            ["displayName"] = job.Step.Name,
            ["description"] = $"FederatedFunctions: {job.Step.Kind} step of run {job.Step.RunId}, round {job.Step.Round.ToString(CultureInfo.InvariantCulture)}, silo {silo}, attempt {job.Attempt.ToString(CultureInfo.InvariantCulture)}.",
            ["experimentName"] = ml.ExperimentName,
            ["computeId"] = workspace.ComputeId(ml.Compute!),
            ["environmentId"] = ml.Environment,
            ["command"] = $"fl silo run --silo {silo} --job ${{{{inputs.job}}}} --job-sha256 {request.Sha256} --job-bytes {request.Bytes.ToString(CultureInfo.InvariantCulture)} --data ${{{{inputs.data}}}} --outbox ${{{{outputs.outbox}}}}",
            ["inputs"] = inputs,
            ["outputs"] = new JsonObject
            {
                ["outbox"] = new JsonObject
                {
                    ["jobOutputType"] = "uri_folder",
                    ["uri"] = SiloRegistry.ContainerUri(silo, entry, entry.OutboxContainerName).AbsoluteUri,
                    ["mode"] = "Direct",
                    ["description"] = "The silo's outbox container.",
                },
            },
            ["identity"] = new JsonObject
            {
                ["identityType"] = "Managed",
                ["clientId"] = ml.IdentityClientId,
                ["resourceId"] = ml.IdentityResourceId,
            },
            ["environmentVariables"] = new JsonObject
            {
                ["AZURE_CLIENT_ID"] = ml.IdentityClientId,
            },
            ["tags"] = new JsonObject
            {
                ["federatedfunctions.run"] = job.Step.RunId,
                ["federatedfunctions.round"] = job.Step.Round.ToString(CultureInfo.InvariantCulture),
                ["federatedfunctions.silo"] = silo,
                ["federatedfunctions.step"] = job.Step.Kind,
            },
        };
        if (ml.Timeout is { } timeout)
        {
            properties["limits"] = new JsonObject { ["jobLimitsType"] = "Command", ["timeout"] = timeout };
        }

        return new JsonObject { ["properties"] = properties };
    }

    private static JsonObject Input(string type, string uri, string description) => new()
    {
        ["jobInputType"] = type,
        ["uri"] = uri,
        ["mode"] = "Direct",
        ["description"] = description,
    };

    private static SiloJobStatus Status(SiloJob job, string status)
    {
        var state = Map(status);
        return new SiloJobStatus(job.Name, state, "azureml:" + status, Detail: state == SiloJobState.Failed ? "the Azure ML job failed; its logs are in the workspace" : null);
    }

    // The silo's workspace, and the client that reaches it: the host's, or, for a workspace in another tenant, one signed in there.
    private (SiloEndpoint Entry, AzureMlWorkspace Workspace, AzureMlJobsClient Client) Resolve(string siloId)
    {
        var entry = registry.Entry(siloId);
        Validate(siloId, entry);
        var ml = entry.Compute.AzureMl!;
        var jobs = ml.TenantId is null
            ? client
            : (tenants ?? throw new InvalidOperationException("This host has no cross-tenant Azure ML clients.")).For(ml.TenantId, ml.ApplicationClientId!);
        return (entry, new AzureMlWorkspace(ml.SubscriptionId!, ml.ResourceGroup!, ml.Workspace!), jobs);
    }

    private static void Require(string siloId, string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new SiloRegistryException($"Silo '{siloId}': 'Compute:AzureMl:{field}' is required with an 'azureml' compute.");
        }
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")]
    private static partial Regex WorkspaceName();
}
