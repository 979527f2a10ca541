using System.Text.Json;
using System.Text.Json.Serialization;

namespace FederatedFunctions.Core.Analysis;

/// <summary>JSON settings of analysis documents (partials, results): camelCase, nulls left out, and infinities as literals (an empty column's min is +∞).</summary>
public static class AnalysisJson
{
    /// <summary>The shared options.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
