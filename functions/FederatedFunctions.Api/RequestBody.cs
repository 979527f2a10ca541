namespace FederatedFunctions.Api;

/// <summary>Reads request bodies with a size limit, for every host.</summary>
public static class RequestBody
{
    /// <summary>Reads at most <paramref name="limit"/> bytes; returns null when the body is larger (declared or actual).</summary>
    /// <remarks>
    /// Never buffers more than <c>limit + 1</c> bytes itself. Under the Functions host the body has already crossed
    /// the host (which applies its own, much larger request limit) before the worker reads it.
    /// </remarks>
    public static async Task<ReadOnlyMemory<byte>?> ReadLimitedAsync(Stream body, long? declaredLength, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (declaredLength > limit)
        {
            return null;
        }

        var buffer = new byte[limit + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await body.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
        {
            total += read;
        }

        // The cast matters: a bare null would convert to an empty Memory<byte>, not to a null ReadOnlyMemory<byte>?.
        return total > limit ? (ReadOnlyMemory<byte>?)null : buffer.AsMemory(0, total);
    }

    /// <summary>Whether a <c>Content-Type</c> declares JSON: <c>application/json</c> or a <c>+json</c> type, in UTF-8 when a charset is given.</summary>
    public static bool IsJson(string? contentType)
    {
        if (!System.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media) || media.MediaType is not { } type)
        {
            return false;
        }

        var json = type.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (type.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && type.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
        var charset = media.CharSet?.Trim('"');
        return json && (string.IsNullOrEmpty(charset) || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));
    }
}
