using FederatedFunctions.Core;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FederatedFunctions.Core;

/// <summary>JSON settings for every document the product writes to blob (manifests, pointers, silo results).</summary>
public static class JsonDefaults
{
    /// <summary>camelCase, indented, nulls omitted.</summary>
    public static JsonSerializerOptions Documents { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
