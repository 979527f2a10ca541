using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace FederatedFunctions.Infra.Tests;

/// <summary>
/// Evaluates the ARM template expressions of a compiled template's outputs, for one set of parameter values, with the
/// deployment's own values (resource properties, module outputs) stubbed: enough to see what a deployment would
/// output. It knows the functions the templates under infra/ compile to, and fails on any other.
/// </summary>
internal sealed class ArmExpressions(JsonObject template, JsonObject parameters, Func<string, JsonObject, JsonNode?> reference)
{
    public const string SubscriptionId = "55555555-aaaa-bbbb-cccc-000000000001";
    public const string ResourceGroup = "rg-silo-example";
    public const string TenantId = "99999999-aaaa-bbbb-cccc-000000000009";

    /// <summary>The value of output <paramref name="name"/>.</summary>
    public JsonNode? Output(string name) => Evaluate(template["outputs"]![name]!["value"]);

    /// <summary>Evaluates a template value: an expression string, or an object or array holding some.</summary>
    public JsonNode? Evaluate(JsonNode? value) => value switch
    {
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key, Evaluate(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Evaluate).ToArray()),
        JsonValue v when v.TryGetValue<string>(out var s) && s.StartsWith('[') && !s.StartsWith("[[", StringComparison.Ordinal) && s.EndsWith(']') =>
            new Parser(s[1..^1], this).Parse(),
        JsonValue v when v.TryGetValue<string>(out var s) && s.StartsWith("[[", StringComparison.Ordinal) => JsonValue.Create(s[1..]),
        _ => value?.DeepClone(),
    };

    private JsonNode? Parameter(string name) =>
        parameters.TryGetPropertyValue(name, out var given) ? given?.DeepClone()
        : template["parameters"]![name] is JsonObject p && p.TryGetPropertyValue("defaultValue", out var d) ? Evaluate(d)
        : null;

    private JsonNode? Call(string function, List<JsonNode?> args) => function.ToLowerInvariant() switch
    {
        "parameters" => Parameter(Str(args[0])),
        "variables" => Evaluate(template["variables"]![Str(args[0])]),
        "reference" => reference(Str(args[0]), template),
        "format" => JsonValue.Create(string.Format(CultureInfo.InvariantCulture, Str(args[0]), args.Skip(1).Select(a => (object?)Text(a)).ToArray())),
        "if" => Bool(args[0]) ? args[1]?.DeepClone() : args[2]?.DeepClone(),
        "equals" => JsonValue.Create(JsonNode.DeepEquals(args[0], args[1])),
        "not" => JsonValue.Create(!Bool(args[0])),
        "and" => JsonValue.Create(args.All(Bool)),
        "or" => JsonValue.Create(args.Any(Bool)),
        "empty" => JsonValue.Create(args[0] is null || (args[0] is JsonValue v && v.TryGetValue<string>(out var s) && s.Length == 0) || args[0] is JsonObject { Count: 0 } || args[0] is JsonArray { Count: 0 }),
        "null" => null,
        "true" => JsonValue.Create(true),
        "false" => JsonValue.Create(false),
        "createobject" => new JsonObject(Enumerable.Range(0, args.Count / 2).Select(i => KeyValuePair.Create(Str(args[2 * i]), args[(2 * i) + 1]?.DeepClone()))),
        "union" => Union(args),
        "tryget" => args.Skip(1).Aggregate(args[0], (node, key) => node is JsonObject o && o.TryGetPropertyValue(Str(key), out var next) ? next : null)?.DeepClone(),
        "subscription" => new JsonObject { ["subscriptionId"] = SubscriptionId, ["id"] = $"/subscriptions/{SubscriptionId}" },
        "resourcegroup" => new JsonObject { ["name"] = ResourceGroup, ["location"] = "westeurope", ["id"] = $"/subscriptions/{SubscriptionId}/resourceGroups/{ResourceGroup}" },
        "tenant" => new JsonObject { ["tenantId"] = TenantId },
        "environment" => new JsonObject { ["suffixes"] = new JsonObject { ["storage"] = "core.windows.net" } },
        "resourceid" => JsonValue.Create(ResourceId(args.Select(Str).ToList())),
        "uniquestring" => JsonValue.Create(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('|', args.Select(Text)))))[..13]),
        "take" => JsonValue.Create(new string(Str(args[0]).Take((int)args[1]!.GetValue<long>()).ToArray())),
        "replace" => JsonValue.Create(Str(args[0]).Replace(Str(args[1]), Str(args[2]), StringComparison.Ordinal)),
        "tolower" => JsonValue.Create(Str(args[0]).ToLowerInvariant()),
        "string" => JsonValue.Create(Text(args[0])),
        _ => throw new NotSupportedException($"ARM function '{function}' is not known to this evaluator: add it, from the ARM template function reference."),
    };

    private static string ResourceId(List<string> parts)
    {
        var type = parts[0].Split('/');
        var names = parts.Skip(1).ToArray();
        var path = new StringBuilder($"/subscriptions/{SubscriptionId}/resourceGroups/{ResourceGroup}/providers/{type[0]}");
        for (var i = 1; i < type.Length; i++)
        {
            path.Append('/').Append(type[i]).Append('/').Append(names[i - 1]);
        }

        return path.ToString();
    }

    private static JsonObject Union(List<JsonNode?> args)
    {
        var result = new JsonObject();
        foreach (var o in args.OfType<JsonObject>())
        {
            foreach (var (key, value) in o)
            {
                result[key] = value?.DeepClone();
            }
        }

        return result;
    }

    private static bool Bool(JsonNode? node) => node is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    private static string Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new InvalidOperationException($"Expected a string, got {node?.ToJsonString() ?? "null"}.");

    private static string Text(JsonNode? node) => node switch
    {
        null => string.Empty,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    // expression := primary ('.' name | '[' expression ']')*; primary := 'string' | number | name '(' args ')'.
    private sealed class Parser(string text, ArmExpressions arm)
    {
        private int at;

        public JsonNode? Parse()
        {
            var value = Expression();
            Skip();
            return at == text.Length ? value : throw Error("end of expression");
        }

        private JsonNode? Expression()
        {
            var value = Primary();
            while (true)
            {
                Skip();
                if (Peek('.'))
                {
                    at++;
                    var name = Name();
                    value = value is JsonObject o && o.TryGetPropertyValue(name, out var p) ? p?.DeepClone() : throw Error($"property '{name}' of {value?.ToJsonString()}");
                }
                else if (Peek('['))
                {
                    at++;
                    var index = Expression();
                    Expect(']');
                    value = (value, index) switch
                    {
                        (JsonArray a, JsonValue i) => a[(int)i.GetValue<long>()]?.DeepClone(),
                        (JsonObject o, JsonValue k) => o[k.GetValue<string>()]?.DeepClone(),
                        _ => throw Error("an index"),
                    };
                }
                else
                {
                    return value;
                }
            }
        }

        private JsonNode? Primary()
        {
            Skip();
            if (Peek('\''))
            {
                var s = new StringBuilder();
                at++;
                while (true)
                {
                    if (at >= text.Length)
                    {
                        throw Error("a closing quote");
                    }

                    if (text[at] == '\'')
                    {
                        if (at + 1 < text.Length && text[at + 1] == '\'')
                        {
                            s.Append('\'');
                            at += 2;
                            continue;
                        }

                        at++;
                        return JsonValue.Create(s.ToString());
                    }

                    s.Append(text[at++]);
                }
            }

            if (at < text.Length && (char.IsDigit(text[at]) || text[at] == '-'))
            {
                var start = at++;
                while (at < text.Length && char.IsDigit(text[at]))
                {
                    at++;
                }

                return JsonValue.Create(long.Parse(text[start..at], CultureInfo.InvariantCulture));
            }

            var function = Name();
            Expect('(');
            var args = new List<JsonNode?>();
            Skip();
            if (!Peek(')'))
            {
                do
                {
                    args.Add(Expression());
                    Skip();
                }
                while (Peek(',') && at++ >= 0);
            }

            Expect(')');
            return arm.Call(function, args);
        }

        private string Name()
        {
            Skip();
            var start = at;
            while (at < text.Length && (char.IsLetterOrDigit(text[at]) || text[at] == '_'))
            {
                at++;
            }

            return at > start ? text[start..at] : throw Error("a name");
        }

        private void Expect(char c)
        {
            Skip();
            if (!Peek(c))
            {
                throw Error($"'{c}'");
            }

            at++;
        }

        private bool Peek(char c) => at < text.Length && text[at] == c;

        private void Skip()
        {
            while (at < text.Length && text[at] == ' ')
            {
                at++;
            }
        }

        private FormatException Error(string expected) => new($"Expected {expected} at {at} in [{text}].");
    }
}
