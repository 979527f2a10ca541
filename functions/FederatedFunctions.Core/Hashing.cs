using System.Security.Cryptography;

namespace FederatedFunctions.Core;

/// <summary>SHA-256 helpers. Hashes are lowercase hex everywhere in the product.</summary>
public static class Hashing
{
    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Whether <paramref name="text"/> has the form <see cref="Sha256Hex"/> gives: 64 lowercase hex digits.</summary>
    public static bool IsSha256Hex(string? text) => text is { Length: 64 } && !text.AsSpan().ContainsAnyExcept(LowerHex);

    /// <summary>Lowercase hex SHA-256 of <paramref name="data"/>.</summary>
    public static string Sha256Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>Lowercase hex SHA-256 of the rest of <paramref name="stream"/>.</summary>
    public static async Task<string> Sha256HexAsync(Stream stream, CancellationToken cancellationToken = default) =>
        Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));

    /// <summary>A stable 64-bit seed derived from a run seed and labels (round, silo id), independent of process and platform.</summary>
    /// <remarks><see cref="string.GetHashCode()"/> is randomised per process, so it must never seed anything.</remarks>
    public static long DeriveSeed(long seed, params ReadOnlySpan<string> labels)
    {
        var text = seed.ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + string.Join("|", labels.ToArray());
        var hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text));
        return System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(hash) & long.MaxValue;
    }
}
