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
}
