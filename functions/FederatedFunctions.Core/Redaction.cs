using System.Text.RegularExpressions;

namespace FederatedFunctions.Core;

/// <summary>
/// Removes what looks like a credential from a message before it leaves for a reader who must not see one (an API caller,
/// a telemetry backend): the query of any URL (a SAS token), and the value of <c>AccountKey=</c>,
/// <c>SharedAccessSignature=</c>, <c>sig=</c>, <c>password=</c>, <c>secret=</c>, <c>token=</c> and the like.
/// </summary>
public static partial class Redaction
{
    /// <summary>The text with URL queries and credential values replaced by <c>[redacted]</c>; null stays null.</summary>
    public static string? Redact(string? text) =>
        text is null ? null : Credential().Replace(UrlQuery().Replace(text, "$1?[redacted]"), "$1=[redacted]");

    [GeneratedRegex(@"(\b[a-z][a-z0-9+.-]*://[^\s?#'""<>]+)\?[^\s'""<>]*", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UrlQuery();

    [GeneratedRegex(@"\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|password|pwd|secret|client_secret|token|access_token|code)\s*=\s*[^\s;&'""<>]+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Credential();
}
