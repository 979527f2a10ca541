using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace FederatedFunctions.Core.Specs;

/// <summary>The one set of JSON settings for reading and writing run specs.</summary>
/// <remarks>
/// A spec is untrusted input that ends up in orchestration history, so the settings are strict:
/// camelCase names matched case-sensitively, unknown members and duplicate members are errors,
/// no comments, no trailing commas, nesting at most 32 deep, and numbers only as JSON numbers
/// (a quoted <c>"10"</c> is a type error, not a 10). Null members are left out when writing, which
/// reads back to the same spec because every nullable member defaults to null.
/// The instance is read-only: mutating it throws, so one caller cannot loosen it for everyone.
/// </remarks>
public static class RunSpecJson
{
    /// <summary>Deepest nesting accepted in a spec document.</summary>
    internal const int MaxDepth = 32;

    /// <summary>The shared, read-only serializer options.</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>Reader settings that match <see cref="Options"/>, for the syntax pass of <see cref="RunSpecParser"/>.</summary>
    internal static JsonDocumentOptions DocumentOptions => new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        MaxDepth = MaxDepth,

        // Duplicates are found by the parser's schema pass, which reports them with their path.
        AllowDuplicateProperties = true,
    };

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.General)
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            PropertyNameCaseInsensitive = false,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            ReadCommentHandling = JsonCommentHandling.Disallow,
            AllowTrailingCommas = false,
            AllowDuplicateProperties = false,
            MaxDepth = MaxDepth,
            NumberHandling = JsonNumberHandling.Strict,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            WriteIndented = false,
            TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        };
        options.MakeReadOnly();
        return options;
    }
}
