using System.Text;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>The outcome of <see cref="AnalysisSpecParser.Parse(string, SpecLimits?)"/>: the spec, every error, or both.</summary>
/// <param name="Spec">The parsed spec, or null when the document did not map onto one.</param>
/// <param name="Errors">Every error found; empty when the spec is valid.</param>
public sealed record AnalysisSpecParseResult(AnalysisSpec? Spec, IReadOnlyList<SpecError> Errors)
{
    /// <summary>True when a spec was parsed and no error was found.</summary>
    public bool IsValid => Spec is not null && Errors.Count == 0;
}

/// <summary>Parses an analysis spec with the strict rules of run specs (<see cref="RunSpecJson"/>), then validates it.</summary>
public static class AnalysisSpecParser
{
    /// <summary>Parses and validates a spec held in a string; never throws for bad input.</summary>
    public static AnalysisSpecParseResult Parse(string json, SpecLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        limits ??= SpecLimits.Default;

        // Every char is at least one UTF-8 byte: an over-long string is refused before it is encoded.
        if (json.Length > limits.MaxDocumentBytes)
        {
            return new(null, [RunSpecParser.TooLargeError(json.Length, limits, "at least ")]);
        }

        var bytes = Encoding.UTF8.GetBytes(json);
        if (bytes.Length > limits.MaxDocumentBytes)
        {
            return new(null, [RunSpecParser.TooLargeError(bytes.Length, limits, string.Empty)]);
        }

        var (spec, errors) = RunSpecParser.ParseDocument<AnalysisSpec>(bytes, "an analysis spec", s => AnalysisSpecValidator.Validate(s, limits));
        return new(spec, errors);
    }
}
