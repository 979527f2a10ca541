namespace FederatedFunctions.Core.Specs;

/// <summary>One violation found in a run spec.</summary>
/// <param name="Path">JSON path of the offending field, e.g. <c>$.training.rounds</c> or <c>$.silos[2]</c>.</param>
/// <param name="Rule">Stable rule id, e.g. <c>range</c>, <c>required</c>, <c>pattern</c>, <c>unknown-field</c>.</param>
/// <param name="Message">Human-readable explanation naming the limit that was broken.</param>
public sealed record SpecError(string Path, string Rule, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{Path}: {Message} [{Rule}]";
}

/// <summary>Thrown when a spec is used without passing validation.</summary>
public sealed class InvalidRunSpecException(IReadOnlyList<SpecError> errors)
    : Exception("Invalid run spec: " + string.Join("; ", errors))
{
    /// <summary>Every violation found.</summary>
    public IReadOnlyList<SpecError> Errors { get; } = errors;
}
