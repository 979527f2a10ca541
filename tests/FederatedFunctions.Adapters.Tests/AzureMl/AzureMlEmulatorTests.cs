using System.Text.Json.Nodes;
using FederatedFunctions.TestSupport;
using FederatedFunctions.TestSupport.AzureMl;

namespace FederatedFunctions.Adapters.Tests.AzureMl;

/// <summary>The emulator's validation is the official schema's: the published examples pass, and each kind of breach fails.</summary>
public sealed class AzureMlEmulatorTests : IAsyncLifetime
{
    private static readonly string Examples = Path.Combine(RepositoryPaths.Root, "tests", "FederatedFunctions.TestSupport", "AzureMl", "spec", "specification", "machinelearningservices", "resource-manager", "Microsoft.MachineLearningServices", "stable", "2024-04-01", "examples", "Job", "CommandJob");

    private AzureMlEmulator emulator = null!;

    public async Task InitializeAsync() => emulator = await AzureMlEmulator.StartAsync();

    public async Task DisposeAsync() => await emulator.DisposeAsync();

    private static JsonObject ExampleBody() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Examples, "createOrUpdate.json")))!["parameters"]!["body"]!;

    [Fact]
    public void Validate_TheSpecificationsOwnExamples_Pass()
    {
        Assert.Empty(emulator.ValidateJob(ExampleBody()));

        // A GET body (with its read-only fields) can be PUT back.
        var get = JsonNode.Parse(File.ReadAllText(Path.Combine(Examples, "get.json")))!["responses"]!["200"]!["body"];
        Assert.Empty(emulator.ValidateJob(get));
    }

    [Theory]
    [InlineData("command", null, "$.properties.command: required")]
    [InlineData("environmentId", null, "$.properties.environmentId: required")]
    [InlineData("command", "", "$.properties.command: shorter than 1")]
    [InlineData("jobType", "\"Batch\"", "$.properties.jobType: 'Batch' is not a known jobType")]
    [InlineData("somethingElse", "1", "$.properties.somethingElse: not a property of this object")]
    [InlineData("isArchived", "\"yes\"", "$.properties.isArchived: must be a boolean")]
    [InlineData("limits", """{ "jobLimitsType": "Command", "timeout": "5 minutes" }""", "$.properties.limits.timeout: '5 minutes' is not a valid duration")]
    [InlineData("identity", """{ "identityType": "Managed", "clientId": "not-a-guid" }""", "$.properties.identity.clientId: 'not-a-guid' is not a valid uuid")]
    [InlineData("identity", """{ "identityType": "AMLToken", "clientId": "00000000-0000-0000-0000-000000000000" }""", "$.properties.identity.clientId: not a property of this object")]
    [InlineData("inputs", """{ "data": { "jobInputType": "uri_folder", "mode": "Direct" } }""", "$.properties.inputs.data.uri: required")]
    [InlineData("inputs", """{ "data": { "jobInputType": "uri_folder", "uri": "https://a/b", "mode": "direct" } }""", "$.properties.inputs.data.mode: 'direct' is not one of")]
    [InlineData("outputs", """{ "out": { "jobOutputType": "literal", "uri": "https://a/b" } }""", "$.properties.outputs.out.jobOutputType: 'literal' is not a known jobOutputType")]
    [InlineData("resources", """{ "instanceCount": 3000000000 }""", "$.properties.resources.instanceCount: must be a 32-bit integer")]
    [InlineData("environmentVariables", """{ "A": 1 }""", "$.properties.environmentVariables.A: must be a string")]
    public void Validate_ABreachOfTheSchema_IsReportedAtItsPath(string property, string? json, string expected)
    {
        var body = ExampleBody();
        var properties = body["properties"]!.AsObject();
        properties.Remove(property);
        if (json is not null)
        {
            properties[property] = json.Length == 0 ? string.Empty : JsonNode.Parse(json);
        }

        if (property == "command" && json is "")
        {
            properties["command"] = string.Empty;
        }

        var errors = emulator.ValidateJob(body);
        Assert.Contains(errors, e => e.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_AnUnknownTopLevelField_IsRefused()
    {
        var body = ExampleBody();
        body["location"] = "westeurope";
        Assert.Contains("$.location: not a property of this object", emulator.ValidateJob(body));
    }
}
