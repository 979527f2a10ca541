using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace FederatedFunctions.Infra.Tests;

/// <summary>
/// The permission matrix in main.bicep's header, checked role assignment by role assignment against the compiled
/// templates (main.bicep and silo.bicep, with every module): an assignment that is not a row fails, and so does one
/// whose role, principal, scope or eyes-on condition differs from its row, and a row no assignment makes.
/// </summary>
public sealed partial class PermissionMatrixTests
{
    /// <summary>The built-in roles by id: the test's own table, so that a wrong GUID in the templates is caught.</summary>
    private static readonly Dictionary<string, string> RoleNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"] = "Storage Blob Data Reader",
        ["ba92f5b4-2d11-453d-a403-e96b0029c9fe"] = "Storage Blob Data Contributor",
        ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b"] = "Storage Blob Data Owner",
        ["974c5e8b-45b9-4653-ba55-5f855dd0fb88"] = "Storage Queue Data Contributor",
        ["0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"] = "Storage Table Data Contributor",
        ["f6c7c914-8db3-469d-8ca1-694a8f32e121"] = "AzureML Data Scientist",
        ["4633458b-17de-408a-b874-0445c86b69e6"] = "Key Vault Secrets User",
        ["b86a8fe4-44ce-4948-aee5-eccb2c155cd7"] = "Key Vault Secrets Officer",
        ["3913510d-42f4-4e42-8a64-420c390055eb"] = "Monitoring Metrics Publisher",
        ["7f951dda-4ed3-4680-a7ca-43fe172d538d"] = "AcrPull",
    };

    /// <summary>The parameter each principal's id must come from.</summary>
    private static readonly Dictionary<string, string> PrincipalParameters = new(StringComparer.Ordinal)
    {
        ["orchestrator"] = "orchestratorPrincipalId",
        ["silo job"] = "jobPrincipalId",
        ["contoso people"] = "contosoPeopleGroupId",
    };

    /// <summary>What each resource's scope expression must name.</summary>
    private static readonly Dictionary<string, string> ResourceScopes = new(StringComparer.Ordinal)
    {
        ["orchestrator storage"] = "parameters('orchestratorStorageName')",
        ["checkpoints container"] = "parameters('checkpointsContainerName')",
        ["key vault"] = "parameters('keyVaultName')",
        ["app insights"] = "parameters('insightsName')",
        ["ml workspace"] = "parameters('workspaceName')",
        ["container registry"] = "parameters('registryName')",
        ["silo data container"] = "parameters('dataContainerName')",
        ["silo private area"] = "parameters('dataContainerName')",
        ["silo outbox container"] = "parameters('outboxContainerName')",
        ["silo ml workspace"] = "mlw-silo-",
    };

    private sealed record Row(string Principal, string Resource, string Role, bool EyesOn, bool EyesOff);

    private sealed record Assignment(string Template, string Module, string Principal, string Resource, string Role, string RoleExpression, string PrincipalExpression, string Scope, string Condition, string AbacCondition, IReadOnlyDictionary<string, string> Roles);

    private static IReadOnlyList<Row> Matrix()
    {
        var rows = new List<Row>();
        foreach (var line in File.ReadLines(Path.Combine(Bicep.InfraDirectory, "main.bicep")))
        {
            var m = MatrixLine().Match(line);
            var cells = m.Success ? m.Groups[1].Value.Split('|').Select(c => c.Trim()).ToArray() : [];
            if (cells.Length == 6 && cells[0] != "principal" && !cells[0].StartsWith('-'))
            {
                rows.Add(new Row(cells[0], cells[1], cells[2], cells[4] == "yes", cells[5] == "yes"));
            }
        }

        return rows;
    }

    private static IReadOnlyList<Assignment> Assignments()
    {
        var found = new List<Assignment>();
        foreach (var file in new[] { "main.bicep", "silo.bicep" })
        {
            foreach (var (module, resource, template) in Bicep.Resources(Bicep.Build(file)))
            {
                if ((string?)resource["type"] != "Microsoft.Authorization/roleAssignments")
                {
                    continue;
                }

                var properties = resource["properties"]!.AsObject();
                var description = (string?)properties["description"] ?? string.Empty;
                var triple = description.StartsWith("fl-matrix: ", StringComparison.Ordinal) ? description["fl-matrix: ".Length..].Split(" | ") : ["?", "?", "?"];
                var roles = (template["variables"]?["roles"] as JsonObject)?.ToDictionary(p => p.Key, p => (string)p.Value!) ?? [];
                found.Add(new Assignment(
                    file,
                    module,
                    triple.ElementAtOrDefault(0) ?? "?",
                    triple.ElementAtOrDefault(1) ?? "?",
                    triple.ElementAtOrDefault(2) ?? "?",
                    (string?)properties["roleDefinitionId"] ?? string.Empty,
                    (string?)properties["principalId"] ?? string.Empty,
                    (string?)resource["scope"] ?? string.Empty,
                    resource["condition"]?.ToString() ?? string.Empty,
                    Resolve(template, (string?)properties["condition"]),
                    roles));
            }
        }

        return found;
    }

    // A condition written as a variable compiles to a reference to it.
    private static string Resolve(JsonObject template, string? expression)
    {
        var m = expression is null ? null : VariableReference().Match(expression);
        return m is { Success: true } ? (string?)template["variables"]?[m.Groups[1].Value] ?? expression! : expression ?? string.Empty;
    }

    private static string RoleOf(Assignment a)
    {
        var byName = RoleVariable().Match(a.RoleExpression);
        var guid = byName.Success ? a.Roles.GetValueOrDefault(byName.Groups[1].Value) : GuidLiteral().Match(a.RoleExpression).Value;
        return guid is not null && RoleNames.TryGetValue(guid, out var name) ? name : $"unknown role ({a.RoleExpression})";
    }

    [Fact]
    public void Matrix_HasTheRowsOfTheThreeParties()
    {
        var rows = Matrix();
        Assert.True(rows.Count >= 15, $"the matrix in main.bicep has {rows.Count} rows");
        Assert.All(rows, r => Assert.Contains(r.Principal, PrincipalParameters.Keys));
        Assert.All(rows, r => Assert.Contains(r.Resource, ResourceScopes.Keys));
        Assert.All(rows, r => Assert.Contains(r.Role, RoleNames.Values));
        Assert.All(rows, r => Assert.True(r.EyesOn, $"{r} is not granted even in eyes-on"));
    }

    [Fact]
    public void EveryRoleAssignment_IsARowOfTheMatrix_WithItsRolePrincipalScopeAndMode()
    {
        var rows = Matrix();
        var assignments = Assignments();
        Assert.NotEmpty(assignments);
        foreach (var a in assignments)
        {
            var where = $"{a.Template}{a.Module}: '{a.Principal} | {a.Resource} | {a.Role}'";
            var row = rows.SingleOrDefault(r => (r.Principal, r.Resource, r.Role) == (a.Principal, a.Resource, a.Role));
            Assert.True(row is not null, $"{where} is not in the permission matrix");
            Assert.True(RoleOf(a) == row.Role, $"{where} assigns {RoleOf(a)}");
            Assert.True(a.PrincipalExpression == $"[parameters('{PrincipalParameters[row.Principal]}')]", $"{where} is granted to {a.PrincipalExpression}");
            Assert.True(a.Scope.Contains(ResourceScopes[row.Resource], StringComparison.Ordinal), $"{where} is scoped to {a.Scope}");
            var eyesOnOnly = a.Condition.Contains("variables('eyesOn')", StringComparison.Ordinal);
            Assert.True(eyesOnOnly == !row.EyesOff, $"{where}: eyes-off is {(row.EyesOff ? "yes" : "no")} in the matrix, but the assignment's condition is '{a.Condition}'");
            var privateOnly = a.AbacCondition.Contains("StringStartsWith 'private/'", StringComparison.Ordinal);
            Assert.True(privateOnly == (row.Resource == "silo private area"), $"{where}: ABAC condition '{a.AbacCondition}'");
        }
    }

    [Fact]
    public void EveryRowOfTheMatrix_IsMadeByAnAssignment()
    {
        var assignments = Assignments();
        foreach (var row in Matrix())
        {
            Assert.True(assignments.Any(a => (a.Principal, a.Resource, a.Role) == (row.Principal, row.Resource, row.Role)), $"no role assignment makes the row {row}");
        }
    }

    [Fact]
    public void Matrix_GivesTheOrchestratorNothingOnSiloData_AndNobodyOutsideTheSiloAnythingOfItInEyesOff()
    {
        var rows = Matrix();
        Assert.DoesNotContain(rows, r => r.Principal == "orchestrator" && r.Resource is "silo data container" or "silo private area");
        Assert.DoesNotContain(rows, r => r.Principal != "silo job" && r.Resource is "silo data container" or "silo private area" or "silo outbox container" && r.EyesOff && r.Principal != "orchestrator");
        Assert.All(rows.Where(r => r.Principal == "silo job" && r.Role != "Storage Blob Data Reader" && r.Role != "AcrPull"), r => Assert.True(r.Resource is "silo private area" or "silo outbox container", $"{r} lets a silo job write outside its private area and outbox"));
    }

    [GeneratedRegex(@"^//\s+\|(.+)\|\s*$")]
    private static partial Regex MatrixLine();

    [GeneratedRegex(@"^\[variables\('(\w+)'\)\]$")]
    private static partial Regex VariableReference();

    [GeneratedRegex(@"variables\('roles'\)\.(\w+)")]
    private static partial Regex RoleVariable();

    [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex GuidLiteral();
}
