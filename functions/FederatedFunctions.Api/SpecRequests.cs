using System.Diagnostics.CodeAnalysis;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Api;

/// <summary>Parses a spec document held as UTF-8 bytes, e.g. <see cref="RunSpecParser.Parse(ReadOnlySpan{byte}, SpecLimits?)"/>.</summary>
/// <typeparam name="TSpec">The spec's type.</typeparam>
internal delegate ISpecParseResult<TSpec> SpecParser<out TSpec>(ReadOnlySpan<byte> utf8Json, SpecLimits? limits)
    where TSpec : class;

/// <summary>The answers every spec-carrying <c>POST</c> shares (runs, analyses): 415, 413, 400 with every violation, and unregistered silos.</summary>
/// <remarks>
/// One place for them, so that a run spec and an analysis spec are refused with the same problem types, titles and
/// paths on both hosts.
/// </remarks>
internal static class SpecRequests
{
    /// <summary>A <c>415</c> (<c>unsupported-media-type</c>) for a body not declared JSON, or null when it is declared JSON.</summary>
    /// <remarks>
    /// Requiring <c>application/json</c> keeps a web page from starting work by cross-site request forgery: a browser sends
    /// a cross-site form or <c>text/plain</c> body without asking, but not a JSON one.
    /// </remarks>
    /// <param name="noun">What the body is, e.g. <c>run spec</c>.</param>
    /// <param name="contentType">The request's <c>Content-Type</c> header, or null.</param>
    public static ApiResponse? RefuseNotJson(string noun, string? contentType) =>
        RequestBody.IsJson(contentType)
            ? null
            : ApiResponse.Problem(
                415,
                "unsupported-media-type",
                $"The {noun} must be sent as JSON.",
                $"Send it with Content-Type: application/json; got {(string.IsNullOrWhiteSpace(contentType) ? "no Content-Type" : SpecPath.Quote(contentType))}.");

    /// <summary>
    /// The spec in a request body, or why it is refused: <c>413</c> when the body was over <paramref name="maxBytes"/>
    /// (<paramref name="body"/> is null), <c>400</c> with every violation when it does not parse or validate, and
    /// <c>400</c> naming each silo that is not in <paramref name="catalog"/>.
    /// </summary>
    /// <returns>True, with <paramref name="spec"/> set, when the spec may be used; otherwise false, with <paramref name="refusal"/> set.</returns>
    public static bool TryRead<TSpec>(
        ReadOnlyMemory<byte>? body,
        string noun,
        int maxBytes,
        SpecParser<TSpec> parse,
        ISiloCatalog catalog,
        Func<TSpec, IReadOnlyList<string>> silosOf,
        [NotNullWhen(true)] out TSpec? spec,
        [NotNullWhen(false)] out ApiResponse? refusal)
        where TSpec : class
    {
        spec = null;
        refusal = null;
        if (body is null)
        {
            refusal = TooLarge(noun, maxBytes);
            return false;
        }

        var parsed = parse(body.Value.Span, null);
        if (!parsed.IsValid)
        {
            refusal = Invalid(noun, parsed.Errors);
            return false;
        }

        if (Unregistered(silosOf(parsed.Spec!), catalog) is { Length: > 0 } unregistered)
        {
            refusal = Invalid(noun, unregistered);
            return false;
        }

        spec = parsed.Spec!;
        return true;
    }

    /// <summary>A <c>413</c> (<c>body-too-large</c>) for a body over <paramref name="maxBytes"/>.</summary>
    public static ApiResponse TooLarge(string noun, int maxBytes) =>
        ApiResponse.Problem(413, "body-too-large", "The request body is too large.", $"A {noun} may have at most {maxBytes} bytes.");

    /// <summary>A <c>400</c> (<c>invalid-spec</c>) listing every violation with its JSON path and rule.</summary>
    public static ApiResponse Invalid(string noun, IReadOnlyList<ProblemError> errors) =>
        ApiResponse.Problem(400, "invalid-spec", $"The {noun} is invalid.", $"{errors.Count} violation(s).", errors);

    /// <summary>A <c>400</c> (<c>invalid-spec</c>) from the parser's errors.</summary>
    public static ApiResponse Invalid(string noun, IEnumerable<SpecError> errors) =>
        Invalid(noun, errors.Select(ProblemError.From).ToArray());

    /// <summary>Every silo of <paramref name="silos"/> that is not in the registry, as <c>$.silos[i]</c>, rule <c>not-registered</c>.</summary>
    /// <remarks>
    /// Refused before anything is scheduled: a typo would otherwise run quietly on fewer silos, the unknown one failing
    /// every step.
    /// </remarks>
    public static ProblemError[] Unregistered(IReadOnlyList<string> silos, ISiloCatalog catalog) =>
        silos.Select((silo, i) => (silo, i))
            .Where(s => !catalog.Contains(s.silo))
            .Select(s => new ProblemError(SpecPath.Index("$.silos", s.i), "not-registered", $"Silo {SpecPath.Quote(s.silo)} is not in this host's silo registry (configuration section Silos)."))
            .ToArray();
}
