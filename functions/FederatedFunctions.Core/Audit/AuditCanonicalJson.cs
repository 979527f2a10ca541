using System.Globalization;
using System.Text;

namespace FederatedFunctions.Core.Audit;

/// <summary>The canonical serialization of an audit entry; see <see cref="AuditChain"/> for the definition.</summary>
internal static class AuditCanonicalJson
{
    internal const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>UTF-8 of the canonical object of every field except <c>hash</c>.</summary>
    /// <exception cref="ArgumentException">A string field is null or not valid UTF-16, or a number is not finite.</exception>
    internal static byte[] Body(AuditEntry entry) => Encode(Write(entry, includeHash: false));

    /// <summary>UTF-8 of the canonical object including <c>hash</c> as the last property, and a final newline.</summary>
    internal static byte[] Line(AuditEntry entry) => Encode(Write(entry, includeHash: true).Append('\n'));

    private static StringBuilder Write(AuditEntry entry, bool includeHash)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var b = new StringBuilder(512);
        b.Append('{');
        Integer(b, "sequence", entry.Sequence).Append(',');
        Text(b, "runId", entry.RunId).Append(',');
        Integer(b, "round", entry.Round).Append(',');
        Text(b, "siloId", entry.SiloId).Append(',');
        Text(b, "kind", entry.Kind).Append(',');
        Text(b, "blob", entry.Blob).Append(',');
        Integer(b, "bytes", entry.Bytes).Append(',');
        Text(b, "sha256", entry.Sha256).Append(',');

        if (entry.Policy is null)
        {
            throw new ArgumentException("The policy is required.", nameof(entry));
        }

        b.Append("\"policy\":{");
        Text(b, "name", entry.Policy.Name).Append(',');
        Text(b, "checks", entry.Policy.Checks).Append("},");

        if (entry.DpNoise is { } dp)
        {
            b.Append("\"dpNoise\":{");
            Real(b, "noiseMultiplier", dp.NoiseMultiplier).Append(',');
            Real(b, "clipNorm", dp.ClipNorm).Append("},");
        }
        else
        {
            b.Append("\"dpNoise\":null,");
        }

        Text(b, "identity", entry.Identity).Append(',');
        Text(b, "recordedAt", entry.RecordedAt.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture)).Append(',');
        Text(b, "previousHash", entry.PreviousHash);
        if (includeHash)
        {
            b.Append(',');
            Text(b, "hash", entry.Hash);
        }

        return b.Append('}');
    }

    private static byte[] Encode(StringBuilder b)
    {
        try
        {
            return StrictUtf8.GetBytes(b.ToString());
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException("An audit field is not valid UTF-16 text (a lone surrogate).", "entry", e);
        }
    }

    private static StringBuilder Integer(StringBuilder b, string name, long value) =>
        Name(b, name).Append(value.ToString(CultureInfo.InvariantCulture));

    private static StringBuilder Real(StringBuilder b, string name, double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentException($"The audit field '{name}' must be finite.", "entry");
        }

        return Name(b, name).Append(value.ToString("R", CultureInfo.InvariantCulture));
    }

    private static StringBuilder Text(StringBuilder b, string name, string? value)
    {
        if (value is null)
        {
            throw new ArgumentException($"The audit field '{name}' is required.", "entry");
        }

        return Quoted(Name(b, name), value);
    }

    private static StringBuilder Name(StringBuilder b, string name) => Quoted(b, name).Append(':');

    // RFC 8785 string escaping: only '"', '\' and U+0000..U+001F are escaped; everything else is literal UTF-8.
    private static StringBuilder Quoted(StringBuilder b, string value)
    {
        b.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\b': b.Append("\\b"); break;
                case '\f': b.Append("\\f"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case < ' ': b.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture)); break;
                default: b.Append(c); break;
            }
        }

        return b.Append('"');
    }
}
