using System.Buffers.Binary;
using System.Security.Cryptography;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>Expands a 32-byte seed into a stream of pseudo-random uint32 masks: AES-256 in counter mode.</summary>
/// <remarks>
/// <para>
/// Construction: key = the seed; counter block <c>i</c> (i = 0, 1, 2, …) is the 16 bytes
/// <c>LE64(i) || 0x00 × 8</c>; the keystream is <c>AES-256-Encrypt(key, block 0) || AES-256-Encrypt(key, block 1) || …</c>,
/// computed with <see cref="SymmetricAlgorithm.EncryptEcb(ReadOnlySpan{byte}, Span{byte}, PaddingMode)"/> on batches of
/// counter blocks; mask word <c>k</c> is the little-endian uint32 at keystream bytes <c>[4k, 4k + 4)</c>.
/// The nonce is zero because every seed keys exactly one stream (one pair in one attempt), so no counter block
/// is ever encrypted twice under the same key.
/// </para>
/// <para>
/// Guarantees: deterministic for a seed on every platform, and indistinguishable from uniform for anyone without
/// the seed as long as AES is a pseudo-random permutation (up to the birthday bound, far beyond any model size).
/// Throughput is that of hardware AES: a million masks take a few milliseconds.
/// </para>
/// </remarks>
public static class AesCtrPrg
{
    /// <summary>Seed length in bytes.</summary>
    public const int SeedLength = 32;

    private const int BlocksPerBatch = 4096;
    private const int BlockBytes = 16;
    private const int WordsPerBlock = BlockBytes / sizeof(uint);

    /// <summary>Writes the first <c>destination.Length</c> masks of the stream of <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static void Expand(ReadOnlySpan<byte> seed, Span<uint> destination) => Apply(seed, destination, Operation.Overwrite);

    /// <summary>Adds the stream of <paramref name="seed"/> to <paramref name="target"/>, element by element, mod 2^32.</summary>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static void AddTo(ReadOnlySpan<byte> seed, Span<uint> target) => Apply(seed, target, Operation.Add);

    /// <summary>Subtracts the stream of <paramref name="seed"/> from <paramref name="target"/>, element by element, mod 2^32.</summary>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static void SubtractFrom(ReadOnlySpan<byte> seed, Span<uint> target) => Apply(seed, target, Operation.Subtract);

    private static void Apply(ReadOnlySpan<byte> seed, Span<uint> target, Operation operation)
    {
        if (seed.Length != SeedLength)
        {
            throw new ArgumentException($"A mask seed is {SeedLength} bytes; got {seed.Length}.", nameof(seed));
        }

        using var aes = Aes.Create();
        aes.Key = seed.ToArray();

        var batchWords = BlocksPerBatch * WordsPerBlock;
        var counters = new byte[BlocksPerBatch * BlockBytes];
        var keystream = new byte[counters.Length];
        ulong block = 0;
        try
        {
            for (var offset = 0; offset < target.Length; offset += batchWords)
            {
                var words = Math.Min(batchWords, target.Length - offset);
                var blocks = (words + WordsPerBlock - 1) / WordsPerBlock;
                var bytes = blocks * BlockBytes;
                for (var b = 0; b < blocks; b++)
                {
                    // Bytes 8..15 of every block stay zero.
                    BinaryPrimitives.WriteUInt64LittleEndian(counters.AsSpan(b * BlockBytes, 8), block++);
                }

                aes.EncryptEcb(counters.AsSpan(0, bytes), keystream.AsSpan(0, bytes), PaddingMode.None);
                var chunk = target.Slice(offset, words);
                for (var k = 0; k < chunk.Length; k++)
                {
                    var mask = BinaryPrimitives.ReadUInt32LittleEndian(keystream.AsSpan(k * sizeof(uint), sizeof(uint)));
                    chunk[k] = operation switch
                    {
                        Operation.Add => unchecked(chunk[k] + mask),
                        Operation.Subtract => unchecked(chunk[k] - mask),
                        _ => mask,
                    };
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keystream);
        }
    }

    private enum Operation
    {
        Overwrite,
        Add,
        Subtract,
    }
}
