using System.Text;

namespace FederatedFunctions.Core.Specs;

/// <summary>Builds the JSON paths and quoted values that appear in <see cref="SpecError"/>s.</summary>
/// <remarks>
/// Paths and messages echo text from an untrusted document into logs and HTTP responses, so everything
/// that is not printable ASCII is escaped as <c>\uXXXX</c> (which also makes look-alike letters such as
/// Cyrillic <c>а</c> visible) and long text is truncated.
/// </remarks>
public static class SpecPath
{
    /// <summary>The document root.</summary>
    public const string Root = "$";

    private const int MaxEchoedChars = 64;

    /// <summary>The path of member <paramref name="name"/> of the object at <paramref name="parent"/>.</summary>
    public static string Property(string parent, string name) =>
        IsPlainName(name) ? parent + "." + name : parent + "['" + Escape(name) + "']";

    /// <summary>The path of element <paramref name="index"/> of the array at <paramref name="parent"/>.</summary>
    public static string Index(string parent, int index) =>
        parent + "[" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "]";

    /// <summary>A user-supplied string, single-quoted and escaped for a message.</summary>
    public static string Quote(string? value) => value is null ? "null" : "'" + Escape(value) + "'";

    /// <summary>Printable ASCII kept (quote and backslash escaped), everything else as <c>\uXXXX</c>, at most 64 characters.</summary>
    public static string Escape(string value)
    {
        var builder = new StringBuilder(Math.Min(value.Length, MaxEchoedChars) + 8);
        for (var i = 0; i < value.Length; i++)
        {
            if (i == MaxEchoedChars)
            {
                builder.Append("...(").Append(value.Length).Append(" chars)");
                break;
            }

            var c = value[i];
            if (c is '\'' or '\\')
            {
                builder.Append('\\').Append(c);
            }
            else if (c is >= ' ' and <= '~')
            {
                builder.Append(c);
            }
            else
            {
                builder.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    private static bool IsPlainName(string name)
    {
        if (name.Length is 0 or > MaxEchoedChars || char.IsAsciiDigit(name[0]))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return false;
            }
        }

        return true;
    }
}
