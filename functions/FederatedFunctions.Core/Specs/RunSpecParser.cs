using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace FederatedFunctions.Core.Specs;

/// <summary>Turns a run spec document into a <see cref="RunSpec"/>, reporting everything wrong with it.</summary>
/// <remarks>
/// <para>
/// The document is untrusted. Parsing happens in stages, and a stage runs only if the previous one passed:
/// </para>
/// <list type="number">
/// <item>Size: more than <see cref="SpecLimits.MaxDocumentBytes"/> UTF-8 bytes is one <c>document-size</c> error, and nothing is read.</item>
/// <item>Syntax: not UTF-8, not JSON, comments, trailing commas, or nesting deeper than 32 is one <c>json</c> error at the path being read.</item>
/// <item>Shape: the document is checked against the members of <see cref="RunSpec"/> under <see cref="RunSpecJson.Options"/>;
/// every <c>unknown-field</c>, <c>duplicate-field</c> and <c>type</c> error is reported at once (at most 100).</item>
/// <item>Rules: the spec, with defaults from its record initializers, goes through <see cref="RunSpecValidator.Validate"/>.</item>
/// </list>
/// <para>Parse never throws for bad input; only a null argument throws. A leading UTF-8 byte order mark is ignored.</para>
/// </remarks>
public static class RunSpecParser
{
    /// <summary>Most shape errors reported for one document; the rest are summarised in one <c>too-many-errors</c> error.</summary>
    internal const int MaxShapeErrors = 100;

    /// <summary>Parses and validates a spec held in a string.</summary>
    /// <param name="json">The document.</param>
    /// <param name="limits">Limits to enforce; <see cref="SpecLimits.Default"/> when null.</param>
    public static RunSpecParseResult Parse(string json, SpecLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        limits ??= SpecLimits.Default;

        // Every char encodes to at least one UTF-8 byte, so an over-long string is rejected before it is encoded.
        if (json.Length > limits.MaxDocumentBytes)
        {
            return TooLarge(json.Length, limits, "at least ");
        }

        var byteCount = Encoding.UTF8.GetByteCount(json);
        if (byteCount > limits.MaxDocumentBytes)
        {
            return TooLarge(byteCount, limits, string.Empty);
        }

        return ParseCore(Encoding.UTF8.GetBytes(json), limits);
    }

    /// <summary>Parses and validates a spec held as UTF-8 bytes.</summary>
    /// <param name="utf8Json">The document, UTF-8 encoded.</param>
    /// <param name="limits">Limits to enforce; <see cref="SpecLimits.Default"/> when null.</param>
    public static RunSpecParseResult Parse(ReadOnlySpan<byte> utf8Json, SpecLimits? limits = null)
    {
        limits ??= SpecLimits.Default;
        if (utf8Json.Length > limits.MaxDocumentBytes)
        {
            return TooLarge(utf8Json.Length, limits, string.Empty);
        }

        return ParseCore(utf8Json.ToArray(), limits);
    }

    private static RunSpecParseResult ParseCore(ReadOnlyMemory<byte> utf8, SpecLimits limits)
    {
        var (spec, errors) = ParseDocument<RunSpec>(utf8, "a run spec", s => RunSpecValidator.Validate(s, limits));
        return new RunSpecParseResult(spec, errors);
    }

    /// <summary>
    /// The strict parse every spec document gets: UTF-8, JSON syntax with the error's path, the shape pass (unknown,
    /// duplicate and mistyped members, each with its path), then <paramref name="validate"/> on what was understood.
    /// </summary>
    /// <typeparam name="T">The spec's type.</typeparam>
    /// <param name="utf8">The document (its size already checked).</param>
    /// <param name="noun">What the document is, for messages, e.g. <c>a run spec</c>.</param>
    /// <param name="validate">The spec's own rules.</param>
    internal static (T? Spec, IReadOnlyList<SpecError> Errors) ParseDocument<T>(ReadOnlyMemory<byte> utf8, string noun, Func<T, IReadOnlyList<SpecError>> validate)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(validate);
        if (utf8.Span.StartsWith("\uFEFF"u8))
        {
            utf8 = utf8[3..];
        }

        if (!System.Text.Unicode.Utf8.IsValid(utf8.Span))
        {
            return (null, [new SpecError(SpecPath.Root, "json", "The document is not valid UTF-8.")]);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, RunSpecJson.DocumentOptions);
        }
        catch (JsonException ex)
        {
            return (null, [SyntaxError(utf8.Span, ex)]);
        }

        using (document)
        {
            var root = document.RootElement;
            var isNull = new SpecError(SpecPath.Root, "required", $"The document is null; {noun} is a JSON object.");
            if (root.ValueKind == JsonValueKind.Null)
            {
                return (null, [isNull]);
            }

            var shapeErrors = new ShapeChecker(RunSpecJson.Options).Check(root, typeof(T));
            if (shapeErrors.Count > 0)
            {
                return (null, shapeErrors);
            }

            T? spec;
            try
            {
                spec = root.Deserialize<T>(RunSpecJson.Options);
            }
            catch (JsonException ex)
            {
                // The shape pass should have caught this; kept so that Parse never throws for bad input.
                return (null, [new SpecError(ex.Path ?? SpecPath.Root, "type", ex.Message)]);
            }

            return spec is null ? (null, [isNull]) : (spec, validate(spec));
        }
    }

    /// <summary>The error of a document over the size limit.</summary>
    internal static SpecError TooLargeError(long bytes, SpecLimits limits, string qualifier) =>
        new(
            SpecPath.Root,
            "document-size",
            $"The document is {qualifier}{bytes} bytes; the limit MaxDocumentBytes is {limits.MaxDocumentBytes} bytes.");

    private static RunSpecParseResult TooLarge(long bytes, SpecLimits limits, string qualifier) => Failed(TooLargeError(bytes, limits, qualifier));

    private static RunSpecParseResult Failed(SpecError error) => new(null, [error]);

    /// <summary>Re-reads a malformed document token by token to find the JSON path at which reading failed.</summary>
    private static SpecError SyntaxError(ReadOnlySpan<byte> utf8, JsonException documentError)
    {
        // Each frame is an open object (Name: its current member) or array (Index: its current element).
        var frames = new List<(bool IsArray, int Index, string? Name)>();
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions
        {
            AllowTrailingCommas = false,
            CommentHandling = JsonCommentHandling.Disallow,
            MaxDepth = RunSpecJson.MaxDepth,
        });

        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        NextElement(frames);
                        frames.Add((reader.TokenType == JsonTokenType.StartArray, -1, null));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        frames.RemoveAt(frames.Count - 1);
                        break;
                    case JsonTokenType.PropertyName:
                        frames[^1] = frames[^1] with { Name = reader.GetString() };
                        break;
                    default:
                        NextElement(frames);
                        break;
                }
            }
        }
        catch (JsonException ex)
        {
            return new SpecError(PathOf(frames), "json", "Malformed JSON: " + ex.Message);
        }

        return new SpecError(SpecPath.Root, "json", "Malformed JSON: " + documentError.Message);

        static void NextElement(List<(bool IsArray, int Index, string? Name)> frames)
        {
            if (frames.Count > 0 && frames[^1].IsArray)
            {
                frames[^1] = frames[^1] with { Index = frames[^1].Index + 1 };
            }
        }

        static string PathOf(List<(bool IsArray, int Index, string? Name)> frames)
        {
            var path = SpecPath.Root;
            foreach (var (isArray, index, name) in frames)
            {
                if (isArray && index >= 0)
                {
                    path = SpecPath.Index(path, index);
                }
                else if (!isArray && name is not null)
                {
                    path = SpecPath.Property(path, name);
                }
                else
                {
                    break;
                }
            }

            return path;
        }
    }

    /// <summary>Checks a parsed document against the members the serializer knows, collecting every mismatch.</summary>
    /// <remarks>
    /// The serializer stops at its first error; this pass reports them all, each with its path. Nulls for
    /// reference types pass here and are reported as <c>required</c> by the validator, next to the other rule errors.
    /// </remarks>
    private sealed class ShapeChecker(JsonSerializerOptions options)
    {
        private readonly List<SpecError> errors = [];
        private readonly Dictionary<Type, Dictionary<string, JsonPropertyInfo>> memberCache = [];

        public List<SpecError> Check(JsonElement root, Type type)
        {
            Walk(root, options.GetTypeInfo(type), SpecPath.Root);
            return errors;
        }

        private bool Full => errors.Count > MaxShapeErrors;

        private void Walk(JsonElement element, JsonTypeInfo info, string path)
        {
            if (Full)
            {
                return;
            }

            var type = info.Type;
            var underlying = Nullable.GetUnderlyingType(type);
            if (element.ValueKind == JsonValueKind.Null)
            {
                if (type.IsValueType && underlying is null)
                {
                    TypeError(path, info, element);
                }

                return;
            }

            switch (info.Kind)
            {
                case JsonTypeInfoKind.Object:
                    WalkObject(element, info, path);
                    break;
                case JsonTypeInfoKind.Enumerable when info.ElementType is not null:
                    if (element.ValueKind != JsonValueKind.Array)
                    {
                        TypeError(path, info, element);
                        break;
                    }

                    var elementInfo = options.GetTypeInfo(info.ElementType);
                    var index = 0;
                    foreach (var item in element.EnumerateArray())
                    {
                        Walk(item, elementInfo, SpecPath.Index(path, index++));
                    }

                    break;
                case JsonTypeInfoKind.None:
                    if (!IsValue(element, underlying ?? type))
                    {
                        TypeError(path, info, element);
                    }
                    else if (element.ValueKind == JsonValueKind.String && !TryGetText(element.GetString, out _))
                    {
                        Add(new SpecError(path, "json", $"{path} is not valid Unicode (an escaped unpaired surrogate)."));
                    }

                    break;
                default:
                    // Kinds the spec does not use are left to the serializer.
                    break;
            }
        }

        private void WalkObject(JsonElement element, JsonTypeInfo info, string path)
        {
            if (element.ValueKind != JsonValueKind.Object)
            {
                TypeError(path, info, element);
                return;
            }

            var members = MembersOf(info);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in element.EnumerateObject())
            {
                if (!TryGetText(() => property.Name, out var name))
                {
                    Add(new SpecError(path, "json", $"A field name in {path} is not valid Unicode (an escaped unpaired surrogate)."));
                    continue;
                }

                var memberPath = SpecPath.Property(path, name);
                if (!seen.Add(name))
                {
                    Add(new SpecError(memberPath, "duplicate-field", $"Field {SpecPath.Quote(name)} appears more than once in {path}."));
                }
                else if (members.TryGetValue(name, out var member))
                {
                    Walk(property.Value, options.GetTypeInfo(member.PropertyType), memberPath);
                }
                else
                {
                    Add(new SpecError(
                        memberPath,
                        "unknown-field",
                        $"Unknown field {SpecPath.Quote(name)} in {path}; known fields are {string.Join(", ", members.Keys)} (names are case-sensitive)."));
                }
            }
        }

        private Dictionary<string, JsonPropertyInfo> MembersOf(JsonTypeInfo info)
        {
            if (!memberCache.TryGetValue(info.Type, out var members))
            {
                members = info.Properties.Where(p => p.Set is not null).ToDictionary(p => p.Name, StringComparer.Ordinal);
                memberCache.Add(info.Type, members);
            }

            return members;
        }

        /// <summary>Reads a name or string, which fails when the JSON escapes an unpaired surrogate such as <c>\ud800</c>.</summary>
        private static bool TryGetText(Func<string?> read, out string text)
        {
            try
            {
                text = read() ?? string.Empty;
                return true;
            }
            catch (InvalidOperationException)
            {
                text = string.Empty;
                return false;
            }
        }

        private static bool IsValue(JsonElement element, Type type)
        {
            if (type == typeof(string))
            {
                return element.ValueKind == JsonValueKind.String;
            }

            if (type == typeof(bool))
            {
                return element.ValueKind is JsonValueKind.True or JsonValueKind.False;
            }

            if (element.ValueKind != JsonValueKind.Number)
            {
                return type != typeof(int) && type != typeof(long) && type != typeof(double);
            }

            if (type == typeof(int))
            {
                return element.TryGetInt32(out _);
            }

            if (type == typeof(long))
            {
                return element.TryGetInt64(out _);
            }

            return type != typeof(double) || (element.TryGetDouble(out var d) && double.IsFinite(d));
        }

        private void TypeError(string path, JsonTypeInfo info, JsonElement element)
        {
            var got = element.ValueKind == JsonValueKind.Number
                ? "the number " + Truncate(element.GetRawText())
                : Describe(element.ValueKind);
            Add(new SpecError(path, "type", $"{path} must be {Expected(info)}; got {got}."));
        }

        private static string Expected(JsonTypeInfo info)
        {
            var type = Nullable.GetUnderlyingType(info.Type) ?? info.Type;
            var orNull = Nullable.GetUnderlyingType(info.Type) is not null ? " or null" : string.Empty;
            return info.Kind switch
            {
                JsonTypeInfoKind.Object => "an object",
                JsonTypeInfoKind.Enumerable => "an array",
                _ when type == typeof(string) => "a string",
                _ when type == typeof(bool) => "true or false",
                _ when type == typeof(int) => $"an integer from {int.MinValue} to {int.MaxValue}{orNull}",
                _ when type == typeof(long) => $"an integer from {long.MinValue} to {long.MaxValue}{orNull}",
                _ when type == typeof(double) => $"a finite JSON number{orNull}",
                _ => "a value of type " + type.Name,
            };
        }

        private static string Describe(JsonValueKind kind) => kind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            JsonValueKind.Null => "null",
            _ => kind.ToString().ToLower(CultureInfo.InvariantCulture),
        };

        private static string Truncate(string text) => text.Length <= 32 ? text : text[..32] + "...";

        private void Add(SpecError error)
        {
            if (errors.Count < MaxShapeErrors)
            {
                errors.Add(error);
            }
            else if (errors.Count == MaxShapeErrors)
            {
                errors.Add(new SpecError(SpecPath.Root, "too-many-errors", $"More than {MaxShapeErrors} shape errors; the rest are not listed."));
            }
        }
    }
}
