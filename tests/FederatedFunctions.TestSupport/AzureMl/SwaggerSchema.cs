using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml;

namespace FederatedFunctions.TestSupport.AzureMl;

/// <summary>
/// Validates requests against a Swagger 2.0 (OpenAPI 2) document set as Azure's REST specifications write them: <c>$ref</c>s
/// across files, <c>allOf</c> inheritance, polymorphism by <c>discriminator</c> and <c>x-ms-discriminator-value</c>,
/// <c>x-nullable</c>, <c>readOnly</c>, and <c>additionalProperties</c> both as <c>false</c> and as a map's value schema.
/// </summary>
/// <remarks>
/// As AutoRest does, a definition's <c>allOf</c> chain is merged (properties, required) before <c>additionalProperties:
/// false</c> applies, so base-class properties are allowed. Read-only properties are accepted (a GET body must be PUT-able)
/// and checked for type. Enums are exact and case-sensitive. <c>pattern</c> is unanchored, as in JSON Schema.
/// </remarks>
public sealed class SwaggerSchema
{
    private readonly Dictionary<string, JsonObject> documents = new(StringComparer.Ordinal);

    /// <summary>Opens the document set rooted at <paramref name="mainDocument"/>.</summary>
    public SwaggerSchema(string mainDocument)
    {
        Main = Path.GetFullPath(mainDocument);
        Load(Main);
    }

    /// <summary>The main document's path.</summary>
    public string Main { get; }

    /// <summary>The main document.</summary>
    public JsonObject MainDocument => documents[Main];

    /// <summary>Every violation of <paramref name="instance"/> against the definition <paramref name="definition"/> of the main document.</summary>
    public IReadOnlyList<string> Validate(JsonNode? instance, string definition)
    {
        var errors = new List<string>();
        Check(instance, Resolve(Main, "#/definitions/" + definition), "$", errors);
        return errors;
    }

    /// <summary>Every violation of the path and query parameters of an operation (<paramref name="path"/> as the spec writes it).</summary>
    public IReadOnlyList<string> ValidateParameters(string path, string method, IReadOnlyDictionary<string, string> pathValues, IReadOnlyDictionary<string, string?> query)
    {
        ArgumentNullException.ThrowIfNull(pathValues);
        ArgumentNullException.ThrowIfNull(query);
        var errors = new List<string>();
        var operation = MainDocument["paths"]?[path]?[method.ToLowerInvariant()] as JsonObject
            ?? throw new ArgumentException($"The specification has no {method} {path}.");
        foreach (var p in operation["parameters"]!.AsArray())
        {
            var (file, parameter) = p!["$ref"] is { } r ? Resolve(Main, r.GetValue<string>()) : (Main, (JsonObject)p);
            var name = parameter["name"]!.GetValue<string>();
            var location = parameter["in"]!.GetValue<string>();
            if (location == "body")
            {
                continue;
            }

            string? value = location switch
            {
                "path" => pathValues.TryGetValue(name, out var v) ? v : null,
                "query" => query.TryGetValue(name, out var q) ? q : null,
                _ => null,
            };
            if (value is null)
            {
                if (parameter["required"]?.GetValue<bool>() == true)
                {
                    errors.Add($"{location} parameter '{name}': required");
                }

                continue;
            }

            CheckString(value, parameter, $"{location} parameter '{name}'", errors);
        }

        return errors;
    }

    private void Check(JsonNode? value, (string File, JsonObject Schema) schema, string at, List<string> errors)
    {
        var (file, s) = schema;
        if (s["$ref"] is { } reference)
        {
            var nullable = s["x-nullable"]?.GetValue<bool>() == true;
            if (value is null && nullable)
            {
                return;
            }

            Check(value, Resolve(file, reference.GetValue<string>()), at, errors);
            return;
        }

        if (value is null)
        {
            if (s["x-nullable"]?.GetValue<bool>() != true)
            {
                errors.Add($"{at}: must not be null");
            }

            return;
        }

        var type = s["type"]?.GetValue<string>() ?? (s["properties"] is not null || s["allOf"] is not null ? "object" : null);
        switch (type)
        {
            case "object":
                CheckObject(value, (file, s), at, errors);
                break;
            case "string":
                if (value is JsonValue sv && sv.TryGetValue<string>(out var text))
                {
                    CheckString(text, s, at, errors);
                }
                else
                {
                    errors.Add($"{at}: must be a string");
                }

                break;
            case "integer":
                if (value is not JsonValue iv || !iv.TryGetValue<decimal>(out var number) || number != decimal.Truncate(number))
                {
                    errors.Add($"{at}: must be an integer");
                }
                else if (s["format"]?.GetValue<string>() == "int32" && (number < int.MinValue || number > int.MaxValue))
                {
                    errors.Add($"{at}: must be a 32-bit integer");
                }
                else
                {
                    CheckRange(number, s, at, errors);
                }

                break;
            case "number":
                if (value is not JsonValue nv || !nv.TryGetValue<double>(out var d))
                {
                    errors.Add($"{at}: must be a number");
                }
                else
                {
                    CheckRange((decimal)d, s, at, errors);
                }

                break;
            case "boolean":
                if (value is not JsonValue bv || !bv.TryGetValue<bool>(out _))
                {
                    errors.Add($"{at}: must be a boolean");
                }

                break;
            case "array":
                if (value is not JsonArray array)
                {
                    errors.Add($"{at}: must be an array");
                    break;
                }

                for (var i = 0; i < array.Count; i++)
                {
                    Check(array[i], (file, (JsonObject)s["items"]!), $"{at}[{i}]", errors);
                }

                break;
        }
    }

    private void CheckObject(JsonNode value, (string File, JsonObject Schema) schema, string at, List<string> errors)
    {
        if (value is not JsonObject obj)
        {
            errors.Add($"{at}: must be an object");
            return;
        }

        // Polymorphism: the discriminator's value picks the concrete definition, which is checked instead.
        if (Discriminator(schema) is { } discriminator && !IsConcrete(schema, obj, discriminator))
        {
            var kind = obj[discriminator] is JsonValue k && k.TryGetValue<string>(out var name) ? name : null;
            if (kind is null)
            {
                errors.Add($"{at}.{discriminator}: required");
                return;
            }

            if (Subtype(schema, kind) is not { } concrete)
            {
                errors.Add($"{at}.{discriminator}: '{kind}' is not a known {discriminator}");
                return;
            }

            CheckObject(value, concrete, at, errors);
            return;
        }

        var (properties, required, closed, map) = Flatten(schema);
        foreach (var name in required.Where(r => !obj.ContainsKey(r)))
        {
            errors.Add($"{at}.{name}: required");
        }

        foreach (var (name, node) in obj)
        {
            if (properties.TryGetValue(name, out var property))
            {
                Check(node, property, $"{at}.{name}", errors);
            }
            else if (map is { } values)
            {
                Check(node, values, $"{at}.{name}", errors);
            }
            else if (closed)
            {
                errors.Add($"{at}.{name}: not a property of this object");
            }
        }
    }

    private (Dictionary<string, (string, JsonObject)> Properties, HashSet<string> Required, bool Closed, (string, JsonObject)? Map) Flatten((string File, JsonObject Schema) schema)
    {
        var properties = new Dictionary<string, (string, JsonObject)>(StringComparer.Ordinal);
        var required = new HashSet<string>(StringComparer.Ordinal);
        var closed = false;
        (string, JsonObject)? map = null;
        foreach (var (file, s) in Chain(schema))
        {
            foreach (var (name, p) in s["properties"] as JsonObject ?? [])
            {
                properties.TryAdd(name, (file, (JsonObject)p!));
            }

            foreach (var r in s["required"] as JsonArray ?? [])
            {
                required.Add(r!.GetValue<string>());
            }

            switch (s["additionalProperties"])
            {
                case JsonValue v when v.TryGetValue<bool>(out var allowed) && !allowed:
                    closed = true;
                    break;
                case JsonObject o:
                    map ??= (file, o);
                    break;
            }
        }

        return (properties, required, closed && map is null, map);
    }

    // The schema and its allOf ancestors, nearest first.
    private IEnumerable<(string File, JsonObject Schema)> Chain((string File, JsonObject Schema) schema)
    {
        yield return schema;
        foreach (var a in schema.Schema["allOf"] as JsonArray ?? [])
        {
            var parent = a!["$ref"] is { } r ? Resolve(schema.File, r.GetValue<string>()) : (schema.File, (JsonObject)a);
            foreach (var ancestor in Chain(parent))
            {
                yield return ancestor;
            }
        }
    }

    private string? Discriminator((string File, JsonObject Schema) schema) =>
        Chain(schema).Select(c => c.Schema["discriminator"]?.GetValue<string>()).FirstOrDefault(d => d is not null);

    // A concrete subtype (one with a discriminator value of its own) is checked as it is, not dispatched again.
    private static bool IsConcrete((string File, JsonObject Schema) schema, JsonObject instance, string discriminator) =>
        schema.Schema["x-ms-discriminator-value"] is { } v && instance[discriminator] is JsonValue k && k.TryGetValue<string>(out var name) && name == v.GetValue<string>();

    private (string File, JsonObject Schema)? Subtype((string File, JsonObject Schema) baseSchema, string kind)
    {
        foreach (var (file, doc) in documents)
        {
            foreach (var (name, node) in doc["definitions"] as JsonObject ?? [])
            {
                var candidate = (file, (JsonObject)node!);
                var value = candidate.Item2["x-ms-discriminator-value"]?.GetValue<string>() ?? name;
                if (value == kind && !ReferenceEquals(candidate.Item2, baseSchema.Schema) && Chain(candidate).Skip(1).Any(a => ReferenceEquals(a.Schema, baseSchema.Schema)))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static void CheckString(string text, JsonObject s, string at, List<string> errors)
    {
        if (s["enum"] is JsonArray values && !values.Any(v => v!.GetValue<string>() == text))
        {
            errors.Add($"{at}: '{text}' is not one of {string.Join(", ", values.Select(v => v!.GetValue<string>()))}");
        }

        if (s["minLength"] is { } min && text.Length < min.GetValue<int>())
        {
            errors.Add($"{at}: shorter than {min.GetValue<int>()}");
        }

        if (s["maxLength"] is { } max && text.Length > max.GetValue<int>())
        {
            errors.Add($"{at}: longer than {max.GetValue<int>()}");
        }

        if (s["pattern"] is { } pattern && !Regex.IsMatch(text, pattern.GetValue<string>(), RegexOptions.None, TimeSpan.FromSeconds(1)))
        {
            errors.Add($"{at}: does not match the pattern {pattern.GetValue<string>()}");
        }

        var valid = s["format"]?.GetValue<string>() switch
        {
            "uuid" => Guid.TryParse(text, out _),
            "date-time" => DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
            "duration" => IsDuration(text),
            _ => true,
        };
        if (!valid)
        {
            errors.Add($"{at}: '{text}' is not a valid {s["format"]!.GetValue<string>()}");
        }
    }

    private static bool IsDuration(string text)
    {
        try
        {
            XmlConvert.ToTimeSpan(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static void CheckRange(decimal number, JsonObject s, string at, List<string> errors)
    {
        if (s["minimum"] is { } min && number < min.GetValue<decimal>())
        {
            errors.Add($"{at}: less than {min}");
        }

        if (s["maximum"] is { } max && number > max.GetValue<decimal>())
        {
            errors.Add($"{at}: more than {max}");
        }
    }

    private (string File, JsonObject Node) Resolve(string fromFile, string reference)
    {
        var hash = reference.IndexOf('#', StringComparison.Ordinal);
        var filePart = hash < 0 ? reference : reference[..hash];
        var pointer = hash < 0 ? string.Empty : reference[(hash + 1)..];
        var file = filePart.Length == 0 ? fromFile : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(fromFile)!, filePart));
        JsonNode node = Load(file);
        foreach (var segment in pointer.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            node = node[segment.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)]
                ?? throw new InvalidOperationException($"Unresolvable $ref {reference} from {fromFile}.");
        }

        return (file, (JsonObject)node);
    }

    private JsonObject Load(string file)
    {
        if (!documents.TryGetValue(file, out var doc))
        {
            doc = (JsonObject)JsonNode.Parse(File.ReadAllText(file))!;
            documents[file] = doc;
        }

        return doc;
    }
}
