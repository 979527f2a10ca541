using System.Text.Json.Nodes;

namespace FederatedFunctions.Infra.Tests;

/// <summary>Every template and parameter file under infra/ compiles and passes the linter, with no warning.</summary>
public sealed class TemplateTests
{
    public static TheoryData<string> Templates() => new(Bicep.Files("bicep"));

    public static TheoryData<string> ParameterFiles() => new(Bicep.Files("bicepparam"));

    [Theory]
    [MemberData(nameof(Templates))]
    public void Template_BuildsAndLintsWithoutAWarning(string file)
    {
        var (success, diagnostics, _) = Bicep.Compile(file);
        AssertClean(file, success, diagnostics);
    }

    [Theory]
    [MemberData(nameof(ParameterFiles))]
    public void ParameterFile_BuildsAndLintsWithoutAWarning(string file)
    {
        var (success, diagnostics, _) = Bicep.CompileParams(file);
        AssertClean(file, success, diagnostics);
    }

    // Compiles, and no diagnostic at all: no error, no warning, no info, the linter's included.
    private static void AssertClean(string file, bool success, JsonArray diagnostics)
    {
        Assert.True(success, $"{file}: {diagnostics.ToJsonString()}");
        Assert.True(diagnostics.Count == 0, $"{file}: {diagnostics.ToJsonString()}");
    }

    [Fact]
    public void Cli_BuildAndBuildParams_GiveWhatTheJsonRpcServerGives()
    {
        // The templates are checked through the CLI's JSON-RPC server (one process); the CLI's own commands compile the
        // same way: the same template and parameters, and nothing printed.
        var build = Bicep.Run("build", "main.bicep", "--stdout");
        Assert.True(build.Code == 0 && build.Stderr.Trim().Length == 0, build.Stderr);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(build.Stdout), JsonNode.Parse(Bicep.Compile("main.bicep").Template!)), "bicep build and bicep/compile differ on main.bicep");
        var parameters = Bicep.Run("build-params", Path.Combine("setups", "sas", "silo.bicepparam"), "--stdout");
        Assert.True(parameters.Code == 0 && parameters.Stderr.Trim().Length == 0, parameters.Stderr);
        Assert.True(
            JsonNode.DeepEquals(JsonNode.Parse(JsonNode.Parse(parameters.Stdout)!["parametersJson"]!.GetValue<string>()), JsonNode.Parse(Bicep.CompileParams(Path.Combine("setups", "sas", "silo.bicepparam")).Parameters!)),
            "bicep build-params and bicep/compileParams differ on setups/sas/silo.bicepparam");
        var lint = Bicep.Run("lint", "main.bicep");
        Assert.True(lint.Code == 0, lint.Stdout + lint.Stderr);
        Assert.Equal(string.Empty, (lint.Stdout + lint.Stderr).Trim());
    }

    [Fact]
    public void EverySetUp_HasAnOrchestratorAndASiloParameterFile()
    {
        foreach (var setup in new[] { "sas", "single-tenant", "cross-tenant" })
        {
            Assert.Contains(Path.Combine("setups", setup, "orchestrator.bicepparam"), Bicep.Files("bicepparam"));
            Assert.Contains(Path.Combine("setups", setup, "silo.bicepparam"), Bicep.Files("bicepparam"));
            Assert.Equal(setup, (string?)Bicep.Parameters(Path.Combine("setups", setup, "silo.bicepparam"))["setup"]);
        }
    }

    [Fact]
    public void Lint_AWarningInATemplate_FailsTheLintAndTheCheck()
    {
        // The linter is really run with the project's configuration: an unused parameter is an error here, from the CLI's
        // lint command and from the JSON-RPC compile that the template checks use.
        var probe = Path.Combine(Bicep.InfraDirectory, "modules", $"probe-{Guid.NewGuid():N}.bicep");
        File.WriteAllText(probe, "@description('unused')\nparam unused string\n");
        try
        {
            var lint = Bicep.Run("lint", probe);
            Assert.NotEqual(0, lint.Code);
            Assert.Contains("no-unused-params", lint.Stdout + lint.Stderr, StringComparison.Ordinal);
            var (success, diagnostics, _) = Bicep.Compile(probe);
            Assert.False(success);
            Assert.Contains(diagnostics, d => (string?)d!["code"] == "no-unused-params" && (string?)d["level"] == "Error");
        }
        finally
        {
            File.Delete(probe);
        }
    }

    [Fact]
    public void Check_AWarningLevelDiagnostic_IsNotClean()
    {
        // A template that compiles with a warning only (BCP081: a resource type without types) is not clean: the check
        // counts every diagnostic, not only errors.
        var probe = Path.Combine(Bicep.InfraDirectory, "modules", $"probe-{Guid.NewGuid():N}.bicep");
        File.WriteAllText(probe, "resource r 'Microsoft.Foo/bars@2020-01-01' = {\n  name: 'x'\n}\n");
        try
        {
            var (success, diagnostics, _) = Bicep.Compile(probe);
            Assert.True(success, diagnostics.ToJsonString());
            Assert.Contains(diagnostics, d => (string?)d!["code"] == "BCP081" && (string?)d["level"] == "Warning");
            Assert.Throws<Xunit.Sdk.TrueException>(() => AssertClean(probe, success, diagnostics));
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
