namespace FederatedFunctions.Core.Specs;

/// <summary>The outcome of <see cref="RunSpecParser.Parse(string, SpecLimits?)"/>: the spec, every error, or both.</summary>
/// <remarks>
/// <see cref="Spec"/> is null when the document could not be mapped onto a <see cref="RunSpec"/> at all
/// (too large, malformed, unknown field, wrong type). When it could, <see cref="Spec"/> is set even if
/// validation then failed, so a caller can show what was understood next to what is wrong.
/// Only <see cref="IsValid"/> says the spec may be used.
/// </remarks>
/// <param name="Spec">The parsed spec with defaults applied, or null if the document did not map onto one.</param>
/// <param name="Errors">Every error found; empty when the spec is valid.</param>
public sealed record RunSpecParseResult(RunSpec? Spec, IReadOnlyList<SpecError> Errors) : ISpecParseResult<RunSpec>
{
    /// <summary>True when a spec was parsed and no error was found: the only state in which it may be run.</summary>
    public bool IsValid => Spec is not null && Errors.Count == 0;
}
