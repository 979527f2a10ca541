using System.Globalization;
using System.Text.Json;

namespace FederatedFunctions.Core.Audit;

/// <summary>The JSON Lines form of a run's audit log: one entry per line, each line ending in a newline.</summary>
/// <remarks>
/// <para>
/// The log lives in one blob per round (<c>{runId}/audit/round-NNNNN.jsonl</c>), written once by the commit activity;
/// read in round order, the blobs form one JSON Lines log.
/// </para>
/// <para>
/// <see cref="ToJsonLine"/> writes the canonical serialization of <see cref="AuditChain"/> plus the hash, so a line
/// written, parsed and written again is byte-identical. <see cref="Parse"/> is strict: every line must be a JSON
/// object with exactly the entry's properties (no unknown or duplicate ones, which the hash would not cover), and
/// the data must end with a newline. A torn last line is an error, not silently dropped: dropping it would hide an
/// incomplete write from the auditor. Parsing checks form only; <see cref="AuditChain.Verify"/> checks integrity.
/// </para>
/// </remarks>
public static class AuditLog
{
    private static readonly string[] EntryProperties =
    [
        "sequence", "runId", "round", "siloId", "kind", "blob", "bytes", "sha256",
        "policy", "dpNoise", "identity", "recordedAt", "previousHash", "hash",
    ];

    /// <summary>
    /// The drafts chained after <paramref name="head"/> (null: they start the log), as the JSON Lines of one log blob, and
    /// the log's new head. The same head and drafts give the same bytes, so a writer that runs again writes the same blob.
    /// </summary>
    /// <exception cref="ArgumentException">A draft is not valid (see <see cref="AuditChain.AppendAfter"/>).</exception>
    public static (byte[] Lines, Runs.AuditHead? Head) Chain(Runs.AuditHead? head, IEnumerable<AuditDraft> drafts)
    {
        ArgumentNullException.ThrowIfNull(drafts);
        using var lines = new MemoryStream();
        foreach (var draft in drafts)
        {
            var entry = AuditChain.AppendAfter(head?.Sequence, head?.Hash ?? AuditChain.GenesisHash, draft);
            lines.Write(ToJsonLine(entry));
            head = new Runs.AuditHead(entry.Sequence, entry.Hash);
        }

        return (lines.ToArray(), head);
    }

    /// <summary>UTF-8 bytes of one log line for <paramref name="entry"/>, including the final newline.</summary>
    /// <exception cref="ArgumentException">A field cannot be serialized canonically.</exception>
    public static byte[] ToJsonLine(AuditEntry entry) => AuditCanonicalJson.Line(entry);

    /// <summary>Reads every entry of a JSON Lines log, in order.</summary>
    /// <exception cref="AuditLogFormatException">
    /// The data does not end with a newline (a torn last line), or a line is empty or not a well-formed entry.
    /// </exception>
    public static IReadOnlyList<AuditEntry> Parse(ReadOnlySpan<byte> jsonLines)
    {
        var entries = new List<AuditEntry>();
        var line = 0;
        while (!jsonLines.IsEmpty)
        {
            line++;
            var end = jsonLines.IndexOf((byte)'\n');
            if (end < 0)
            {
                throw new AuditLogFormatException(
                    line,
                    $"torn line: the log ends with {jsonLines.Length} bytes and no newline, so the last append did not complete. " +
                    $"The {entries.Count} entries before it are readable; the log as a whole is not.");
            }

            var content = jsonLines[..end];
            jsonLines = jsonLines[(end + 1)..];
            if (content.IsEmpty)
            {
                throw new AuditLogFormatException(line, "empty line.");
            }

            entries.Add(ParseLine(content, line));
        }

        return entries;
    }

    private static AuditEntry ParseLine(ReadOnlySpan<byte> content, int line)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(content.ToArray());
        }
        catch (JsonException e)
        {
            throw new AuditLogFormatException(line, $"not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            try
            {
                var root = document.RootElement;
                var p = Properties(root, EntryProperties, "entry", line);
                return new AuditEntry
                {
                    Sequence = Int64(p["sequence"], "sequence", line),
                    RunId = Text(p["runId"], "runId", line),
                    Round = Int32(p["round"], "round", line),
                    SiloId = Text(p["siloId"], "siloId", line),
                    Kind = Text(p["kind"], "kind", line),
                    Blob = Text(p["blob"], "blob", line),
                    Bytes = Int64(p["bytes"], "bytes", line),
                    Sha256 = Text(p["sha256"], "sha256", line),
                    Policy = Policy(p["policy"], line),
                    DpNoise = DpNoise(p["dpNoise"], line),
                    Identity = Text(p["identity"], "identity", line),
                    RecordedAt = Timestamp(p["recordedAt"], line),
                    PreviousHash = Text(p["previousHash"], "previousHash", line),
                    Hash = Text(p["hash"], "hash", line),
                };
            }
            catch (InvalidOperationException e)
            {
                throw new AuditLogFormatException(line, $"unreadable value ({e.Message}).", e);
            }
        }
    }

    private static Dictionary<string, JsonElement> Properties(JsonElement element, string[] expected, string what, int line)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new AuditLogFormatException(line, $"the {what} is not a JSON object.");
        }

        var found = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (Array.IndexOf(expected, property.Name) < 0)
            {
                throw new AuditLogFormatException(line, $"unknown property '{property.Name}' in the {what}.");
            }

            if (!found.TryAdd(property.Name, property.Value))
            {
                throw new AuditLogFormatException(line, $"property '{property.Name}' appears twice in the {what}.");
            }
        }

        foreach (var name in expected)
        {
            if (!found.ContainsKey(name))
            {
                throw new AuditLogFormatException(line, $"property '{name}' is missing from the {what}.");
            }
        }

        return found;
    }

    private static string Text(JsonElement value, string name, int line) =>
        value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new AuditLogFormatException(line, $"'{name}' must be a string.");

    private static long Int64(JsonElement value, string name, int line) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var result)
            ? result
            : throw new AuditLogFormatException(line, $"'{name}' must be an integer.");

    private static int Int32(JsonElement value, string name, int line) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var result)
            ? result
            : throw new AuditLogFormatException(line, $"'{name}' must be a 32-bit integer.");

    private static double Real(JsonElement value, string name, int line) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var result) && double.IsFinite(result)
            ? result
            : throw new AuditLogFormatException(line, $"'{name}' must be a finite number.");

    private static AuditPolicy Policy(JsonElement value, int line)
    {
        var p = Properties(value, ["name", "checks"], "policy", line);
        return new AuditPolicy(Text(p["name"], "policy.name", line), Text(p["checks"], "policy.checks", line));
    }

    private static DpNoiseParameters? DpNoise(JsonElement value, int line)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var p = Properties(value, ["noiseMultiplier", "clipNorm"], "dpNoise", line);
        return new DpNoiseParameters(Real(p["noiseMultiplier"], "dpNoise.noiseMultiplier", line), Real(p["clipNorm"], "dpNoise.clipNorm", line));
    }

    private static DateTimeOffset Timestamp(JsonElement value, int line)
    {
        var text = Text(value, "recordedAt", line);
        return DateTime.TryParseExact(text, AuditCanonicalJson.TimestampFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var utc)
            ? new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc))
            : throw new AuditLogFormatException(line, $"'recordedAt' must be a UTC timestamp of the form {AuditCanonicalJson.TimestampFormat}.");
    }
}
