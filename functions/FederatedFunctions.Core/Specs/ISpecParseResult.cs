namespace FederatedFunctions.Core.Specs;

/// <summary>What parsing any spec document gives (a run spec, an analysis spec): the spec, every error, or both.</summary>
/// <remarks>One shape, so that a caller refuses every kind of spec the same way; only <see cref="IsValid"/> says the spec may be used.</remarks>
/// <typeparam name="TSpec">The spec's type.</typeparam>
public interface ISpecParseResult<out TSpec>
    where TSpec : class
{
    /// <summary>The parsed spec with defaults applied, or null if the document did not map onto one.</summary>
    TSpec? Spec { get; }

    /// <summary>Every error found; empty when the spec is valid.</summary>
    IReadOnlyList<SpecError> Errors { get; }

    /// <summary>True when a spec was parsed and no error was found.</summary>
    bool IsValid { get; }
}
