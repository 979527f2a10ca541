using FederatedFunctions.Core.Analysis;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>The shared assertion of the analysis spec tests: one edit of a valid spec is refused at a path, by a rule.</summary>
internal static class SpecAssert
{
    public static void RefusedAt(string valid, string from, string to, string path, string rule)
    {
        Assert.Contains(from, valid, StringComparison.Ordinal);
        var result = AnalysisSpecParser.Parse(valid.Replace(from, to, StringComparison.Ordinal));
        Assert.False(result.IsValid);
        Assert.True(result.Errors.Any(e => e.Path == path && e.Rule == rule), $"expected {path} {rule}; got " + string.Join("; ", result.Errors.Select(e => $"{e.Path} {e.Rule}: {e.Message}")));
    }
}
