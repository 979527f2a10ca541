using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Sas;
using FederatedFunctions.LocalHost.Commands;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary><c>fl silo onboard</c> on a silo's registry entry as a deployment outputs it, against real storage.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SiloOnboardCommandTests(AzuriteFixture azurite)
{
    private static async Task<(int Code, string Out, string Err)> InvokeAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await FlCommands.Build(new CommandContext(output, error)).Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private async Task<string> EntryFileAsync(TempDirectory dir, string id, JsonObject reader)
    {
        var data = azurite.Blobs.GetBlobContainerClient(id + "-data");
        var outbox = azurite.Blobs.GetBlobContainerClient(id + "-outbox");
        await data.CreateIfNotExistsAsync();
        await outbox.CreateIfNotExistsAsync();
        if (reader["SasToken"] is null && (string?)reader["Credential"] == "Sas")
        {
            var sas = new BlobSasBuilder { BlobContainerName = outbox.Name, Resource = "c", ExpiresOn = DateTimeOffset.UtcNow.AddHours(1) };
            sas.SetPermissions("rl");
            reader["SasToken"] = outbox.GenerateSasUri(sas).Query.TrimStart('?');
        }

        // The shape of silo.bicep's registryEntry output.
        var entry = new JsonObject
        {
            ["BlobServiceUri"] = azurite.Blobs.Uri.AbsoluteUri,
            ["Container"] = data.Name,
            ["OutboxContainer"] = outbox.Name,
            ["OutboxReader"] = reader,
            ["Compute"] = new JsonObject
            {
                ["Kind"] = "azureml",
                ["AzureMl"] = new JsonObject
                {
                    ["SubscriptionId"] = "55555555-5555-5555-5555-555555555555", ["ResourceGroup"] = "rg", ["Workspace"] = "mlw-fl", ["Compute"] = "fl0123",
                    ["IdentityResourceId"] = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id",
                    ["IdentityClientId"] = Guid.NewGuid().ToString(), ["Environment"] = "azureml:fl-silo-runner:1", ["ImageDigest"] = new string('a', 64),
                },
            },
        };
        var path = Path.Combine(dir.Path, id + ".json");
        await File.WriteAllTextAsync(path, entry.ToJsonString());
        return path;
    }

    [Fact]
    public async Task Onboard_ADeployedSilosEntry_PassesEveryCheckAndSaysSo()
    {
        using var dir = new TempDirectory();
        var file = await EntryFileAsync(dir, "cli-onb-ok", new JsonObject { ["Credential"] = "Sas" });

        var (code, output, error) = await InvokeAsync("silo", "onboard", "--silo", "cli-onb-ok", "--registry", file, "--json");

        Assert.True(code == 0, output + error);
        var report = JsonDocument.Parse(output).RootElement;
        Assert.True(report.GetProperty("passed").GetBoolean());
        Assert.Equal(5, report.GetProperty("checks").GetArrayLength());
    }

    [Fact]
    public async Task Onboard_AnOrchestratorGrantThatReadsTheData_FailsNamingTheCheck()
    {
        using var dir = new TempDirectory();
        var file = await EntryFileAsync(dir, "cli-onb-wide", new JsonObject { ["Credential"] = "ConnectionString", ["ConnectionString"] = azurite.ConnectionString });

        var (code, output, _) = await InvokeAsync("silo", "onboard", "--silo", "cli-onb-wide", "--registry", file);

        Assert.Equal(1, code);
        Assert.Contains("FAIL  orchestrator-cannot-read-data", output, StringComparison.Ordinal);
        Assert.Contains("FAIL  orchestrator-cannot-write-outbox", output, StringComparison.Ordinal);
        Assert.Contains("2 check(s) failed", output, StringComparison.Ordinal);
    }
}
