using System.Buffers.Text;
using System.Text;

namespace FederatedFunctions.Api;

/// <summary>The list route's continuation tokens: the durable backend's own token, wrapped so that the API can tell its tokens from garbage.</summary>
/// <remarks>
/// Backends differ in what a token looks like and in how they fail on a bad one (some with a server error). A token is
/// <c>v1.</c> followed by the backend token in base64url; anything else is refused with a 400 naming the parameter before
/// the backend sees it.
/// </remarks>
public static class PageTokens
{
    private const string Prefix = "v1.";

    /// <summary>Wraps a backend token.</summary>
    public static string Encode(string backendToken)
    {
        ArgumentNullException.ThrowIfNull(backendToken);
        return Prefix + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(backendToken));
    }

    /// <summary>Unwraps a token <see cref="Encode"/> made; false for anything else.</summary>
    public static bool TryDecode(string token, out string? backendToken)
    {
        backendToken = null;
        if (token is null || !token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length == Prefix.Length || token.Length > 8192)
        {
            return false;
        }

        var text = token.AsSpan(Prefix.Length);
        var buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (Base64Url.DecodeFromChars(text, buffer, out var consumed, out var written) != System.Buffers.OperationStatus.Done || consumed != text.Length)
        {
            return false;
        }

        try
        {
            backendToken = new UTF8Encoding(false, true).GetString(buffer, 0, written);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        return backendToken.Length > 0;
    }
}
