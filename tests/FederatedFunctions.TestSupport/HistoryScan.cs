using System.Globalization;
using System.Text.RegularExpressions;

namespace FederatedFunctions.TestSupport;

/// <summary>Leak scans over serialized orchestration payloads, whatever the serializer's property casing and spacing.</summary>
public static class HistoryScan
{
    /// <summary>True when some JSON object in <paramref name="history"/> has <paramref name="property"/> (any case) equal to the number <paramref name="value"/>.</summary>
    public static bool HasNumber(string history, string property, double value) =>
        Regex.IsMatch(
            history ?? throw new ArgumentNullException(nameof(history)),
            "\"" + Regex.Escape(property) + "\"\\s*:\\s*" + Regex.Escape(value.ToString("R", CultureInfo.InvariantCulture)) + "(?![0-9.eE])",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
}
