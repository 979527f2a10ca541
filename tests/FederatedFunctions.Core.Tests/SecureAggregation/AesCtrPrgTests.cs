using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using FederatedFunctions.Core.SecureAggregation;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class AesCtrPrgTests
{
    private static byte[] Seed(byte fill) => Enumerable.Repeat(fill, AesCtrPrg.SeedLength).ToArray();

    [Fact]
    public void Expand_ZeroSeed_FirstBlockIsAes256OfZeroCounter()
    {
        var masks = new uint[4];

        AesCtrPrg.Expand(new byte[32], masks);

        // AES-256 with the all-zero key on the all-zero block is dc95c078 a2408989 ad48a214 92842087,
        // read as little-endian words.
        Assert.Equal([0x78c095dcu, 0x898940a2u, 0x14a248adu, 0x87208492u], masks);
    }

    [Fact]
    public void Expand_SecondBlock_IsAesOfLittleEndianCounterOne()
    {
        var seed = Seed(7);
        var masks = new uint[8];
        AesCtrPrg.Expand(seed, masks);

        using var aes = Aes.Create();
        aes.Key = seed;
        var block = new byte[16];
        block[0] = 1;
        var cipher = aes.EncryptEcb(block, PaddingMode.None);

        for (var k = 0; k < 4; k++)
        {
            Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(cipher.AsSpan(4 * k)), masks[4 + k]);
        }
    }

    [Fact]
    public void Expand_SameSeed_SameStreamAcrossBatchBoundaries()
    {
        var longer = new uint[40_000];
        var shorter = new uint[16_387]; // not a multiple of a block nor of a batch
        AesCtrPrg.Expand(Seed(1), longer);
        AesCtrPrg.Expand(Seed(1), shorter);

        Assert.Equal(shorter, longer.Take(shorter.Length));
    }

    [Fact]
    public void Expand_DifferentSeeds_DifferentStreams()
    {
        var a = new uint[64];
        var b = new uint[64];
        var seedB = Seed(1);
        seedB[31] = 2;

        AesCtrPrg.Expand(Seed(1), a);
        AesCtrPrg.Expand(seedB, b);

        Assert.Equal(0, a.Zip(b).Count(p => p.First == p.Second));
    }

    [Fact]
    public void SubtractFrom_AfterAddTo_RestoresValuesAndAddToMatchesExpand()
    {
        var original = Enumerable.Range(0, 1000).Select(i => (uint)(i * 2654435761u)).ToArray();
        var values = (uint[])original.Clone();
        var stream = new uint[values.Length];
        AesCtrPrg.Expand(Seed(3), stream);

        AesCtrPrg.AddTo(Seed(3), values);
        Assert.Equal(original.Zip(stream, (o, s) => unchecked(o + s)), values);

        AesCtrPrg.SubtractFrom(Seed(3), values);
        Assert.Equal(original, values);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(31)]
    [InlineData(33)]
    public void Expand_SeedNot32Bytes_Throws(int length)
    {
        Assert.Throws<ArgumentException>(() => AesCtrPrg.Expand(new byte[length], new uint[4]));
    }

    [Fact]
    public void AddTo_OneMillionElements_TakesWellUnderASecond()
    {
        var values = new uint[1_000_000];
        AesCtrPrg.AddTo(Seed(9), values.AsSpan(0, 16)); // warm-up

        var clock = Stopwatch.StartNew();
        AesCtrPrg.AddTo(Seed(9), values);
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"10^6 masks took {clock.Elapsed.TotalMilliseconds} ms.");
        Assert.NotEqual(0u, values[^1]);
    }
}
