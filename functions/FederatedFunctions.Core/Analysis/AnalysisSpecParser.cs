using System.Text;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>The outcome of <see cref="AnalysisSpecParser.Parse(string, SpecLimits?)"/>: the spec, every error, or both.</summary>
/// <param name="Spec">The parsed spec, or null when the document did not map onto one.</param>
/// <param name="Errors">Every error found; empty when the spec is valid.</param>
public sealed record AnalysisSpecParseResult(AnalysisSpec? Spec, IReadOnlyList<SpecError> Errors) : ISpecParseResult<AnalysisSpec>
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

        return ParseCore(bytes, limits);
    }

    /// <summary>Parses and validates a spec held as UTF-8 bytes (an HTTP request body); never throws for bad input.</summary>
    public static AnalysisSpecParseResult Parse(ReadOnlySpan<byte> utf8Json, SpecLimits? limits = null)
    {
        limits ??= SpecLimits.Default;
        return utf8Json.Length > limits.MaxDocumentBytes
            ? new(null, [RunSpecParser.TooLargeError(utf8Json.Length, limits, string.Empty)])
            : ParseCore(utf8Json.ToArray(), limits);
    }

    private static AnalysisSpecParseResult ParseCore(ReadOnlyMemory<byte> utf8, SpecLimits limits)
    {
        var (spec, errors) = RunSpecParser.ParseDocument<AnalysisSpec>(utf8, "an analysis spec", s => AnalysisSpecValidator.Validate(s, limits));
        return new(spec, errors);
    }
}
