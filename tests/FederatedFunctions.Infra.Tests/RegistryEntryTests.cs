using System.Text.Json.Nodes;
using FederatedFunctions.Adapters;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.Infra.Tests;

/// <summary>
/// The registry entry a silo deployment outputs, evaluated from the compiled silo.bicep with each set-up's parameter
/// file, is one the Functions app's own configuration binding and registry accept: bound from app settings as the app
/// binds them (AddFederatedAdapters), placed by the silo catalog, its outbox reader built. It holds no secret.
/// </summary>
public sealed class RegistryEntryTests
{
    private const string BlobEndpoint = "https://stsiloexample.blob.core.windows.net/";
    private const string EnvironmentId = $"/subscriptions/{ArmExpressions.SubscriptionId}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw/environments/fl-silo-runner/versions/000000000000";
    private const string JobClientId = "12121212-1212-1212-1212-121212121212";

    // What the deployment itself would give: module outputs and the job identity's ids.
    private static JsonNode? Reference(string symbol, JsonObject template)
    {
        var resource = template["resources"]![symbol]!;
        if ((string?)resource["type"] == "Microsoft.Resources/deployments")
        {
            var outputs = resource["properties"]!["template"]!["outputs"]!.AsObject();
            return new JsonObject
            {
                ["outputs"] = new JsonObject(outputs.Select(o => KeyValuePair.Create<string, JsonNode?>(o.Key, new JsonObject
                {
                    ["value"] = o.Key switch
                    {
                        "blobEndpoint" => BlobEndpoint,
                        "computeName" => "fl0123456789abcd",
                        "environmentId" => EnvironmentId,
                        "name" => $"mlw-silo-{symbol}",
                        _ => $"{symbol}-{o.Key}",
                    },
                }))),
            };
        }

        return new JsonObject { ["clientId"] = JobClientId, ["principalId"] = "34343434-3434-3434-3434-343434343434" };
    }

    private static (JsonObject Entry, JsonObject Parameters, ArmExpressions Arm) Deploy(string setup)
    {
        var parameters = Bicep.Parameters(Path.Combine("setups", setup, "silo.bicepparam"));
        var arm = new ArmExpressions(Bicep.Build("silo.bicep"), parameters, Reference);
        return (arm.Output("registryEntry")!.AsObject(), parameters, arm);
    }

    // The entry as app settings (Silos__{id}__...), which is how the Functions host's configuration receives it.
    private static IEnumerable<KeyValuePair<string, string?>> Settings(string prefix, JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => Settings($"{prefix}:{p.Key}", p.Value)),
        null => [],
        _ => [KeyValuePair.Create(prefix, (string?)(node is JsonValue v && v.TryGetValue<string>(out var s) ? s : node.ToJsonString()))],
    };

    private static ServiceProvider App(string siloId, JsonObject entry, params (string Key, string Value)[] more)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(Settings($"Silos:{siloId}", entry))
            .AddInMemoryCollection(more.Select(m => KeyValuePair.Create(m.Key, (string?)m.Value)))
            .AddInMemoryCollection([KeyValuePair.Create("Storage:ConnectionString", (string?)"UseDevelopmentStorage=true"), KeyValuePair.Create("Compute:AzureMl:ManagedIdentityClientId", (string?)"44444444-4444-4444-4444-444444444444")])
            .Build();
        return new ServiceCollection().AddLogging().AddFederatedAdapters(configuration).BuildServiceProvider();
    }

    [Theory]
    [InlineData("sas", "Sas")]
    [InlineData("single-tenant", "ManagedIdentity")]
    [InlineData("cross-tenant", "FederatedApplication")]
    public void SiloDeploymentOutput_IsARegistryEntryTheFunctionsAppAccepts(string setup, string reader)
    {
        var (entry, parameters, arm) = Deploy(setup);
        var siloId = (string)parameters["siloId"]!;
        var json = entry.ToJsonString();
        Assert.DoesNotContain("SasToken", json, StringComparison.Ordinal);
        Assert.DoesNotContain("ConnectionString", json, StringComparison.Ordinal);
        Assert.DoesNotContain("sig=", json, StringComparison.Ordinal);
        Assert.Equal(reader, (string?)entry["OutboxReader"]!["Credential"]);

        // In the sas set-up the token arrives as a Key Vault reference the platform resolves; here, its resolved value.
        var sas = setup == "sas" ? new[] { ($"Silos:{siloId}:OutboxReader:SasToken", "sv=2025-01-05&si=fl-outbox-read&sr=c&sig=c2lnbmF0dXJl") } : [];
        using var app = App(siloId, entry, sas);
        var placement = app.GetRequiredService<ISiloCatalog>().Placement(siloId);
        Assert.Equal(("azureml", false, 60), (placement.Kind, placement.Inline, placement.PollSeconds));
        Assert.Equal((string)parameters["runnerImageDigest"]!, app.GetRequiredService<ISiloCatalog>().Trainer(siloId).Sha256);
        Assert.Equal(BlobEndpoint + "outbox", app.GetRequiredService<ISiloRegistry>().GetOutboxReader(siloId).Uri.AbsoluteUri);

        var ml = app.GetRequiredService<ISiloRegistry>().Entry(siloId).Compute.AzureMl!;
        Assert.Equal(JobClientId, ml.IdentityClientId);
        Assert.Equal(EnvironmentId, ml.Environment);
        Assert.Equal(setup == "sas" ? "55555555-5555-5555-5555-555555555555" : ArmExpressions.SubscriptionId, ml.SubscriptionId);
        Assert.Equal(setup == "sas" ? "mlw-fl-example" : "mlw-silo-siloWorkspace", ml.Workspace);
        Assert.Equal(setup == "cross-tenant" ? ArmExpressions.TenantId : null, ml.TenantId);
        Assert.Equal(setup == "sas" ? $"@Microsoft.KeyVault(VaultName=kv-fl-example;SecretName=silo-{siloId}-outbox-sas)" : string.Empty, (string?)arm.Output("outboxSasReference"));
    }

    [Fact]
    public void SiloDeploymentOutput_WithAFieldMissing_IsRefusedByTheAppNamingIt()
    {
        // The binding really validates: the same entry without its image digest is refused.
        var (entry, parameters, _) = Deploy("single-tenant");
        var siloId = (string)parameters["siloId"]!;
        entry["Compute"]!["AzureMl"]!.AsObject().Remove("ImageDigest");
        using var app = App(siloId, entry);
        var ex = Assert.Throws<SiloRegistryException>(() => app.GetRequiredService<ISiloCatalog>().Placement(siloId));
        Assert.Contains("'Compute:AzureMl:ImageDigest'", ex.Message, StringComparison.Ordinal);
    }
}
