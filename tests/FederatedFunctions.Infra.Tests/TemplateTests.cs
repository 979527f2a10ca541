namespace FederatedFunctions.Infra.Tests;

/// <summary>Every template and parameter file under infra/ compiles and passes the linter, with no warning.</summary>
public sealed class TemplateTests
{
    public static TheoryData<string> Templates() => new(Bicep.Files("bicep"));

    public static TheoryData<string> ParameterFiles() => new(Bicep.Files("bicepparam"));

    [Theory]
    [MemberData(nameof(Templates))]
    public void Template_BuildsAndLintsWithoutAWarning(string file) => AssertClean("build", file);

    [Theory]
    [MemberData(nameof(ParameterFiles))]
    public void ParameterFile_BuildsAndLintsWithoutAWarning(string file) => AssertClean("build-params", file);

    // Compiles and lints: both succeed and print nothing (no warning, no info).
    private static void AssertClean(string build, string file)
    {
        var compiled = Bicep.Run(build, file, "--stdout");
        Assert.True(compiled.Code == 0, compiled.Stderr);
        Assert.Equal(string.Empty, compiled.Stderr.Trim());
        var lint = Bicep.Run("lint", file);
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
    public void Lint_AWarningInATemplate_FailsTheLint()
    {
        // The linter is really run with the project's configuration: an unused parameter is an error here.
        var probe = Path.Combine(Bicep.InfraDirectory, "modules", $"probe-{Guid.NewGuid():N}.bicep");
        File.WriteAllText(probe, "@description('unused')\nparam unused string\n");
        try
        {
            var lint = Bicep.Run("lint", probe);
            Assert.NotEqual(0, lint.Code);
            Assert.Contains("no-unused-params", lint.Stdout + lint.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
