using System.Text;

namespace FederatedFunctions.Core.Tests;

public sealed class HashingTests
{
    [Fact]
    public void DeriveSeed_KnownInput_ReturnsPinnedValue()
    {
        // SHA-256 of "42|1|silo-1", first 8 bytes little-endian, sign bit cleared. Pinned: a change here
        // silently changes every derived seed, so runs could no longer be reproduced.
        Assert.Equal(5438422416548559171L, Hashing.DeriveSeed(42, "1", "silo-1"));
        Assert.Equal(5859887824271031058L, Hashing.DeriveSeed(42));
    }

    [Fact]
    public void DeriveSeed_DifferentLabels_Differ()
    {
        var seeds = new[]
        {
            Hashing.DeriveSeed(42, "1", "silo-1"),
            Hashing.DeriveSeed(42, "1", "silo-2"),
            Hashing.DeriveSeed(42, "2", "silo-1"),
            Hashing.DeriveSeed(43, "1", "silo-1"),
        };

        Assert.Equal(3943362826350785285L, seeds[1]);
        Assert.Equal(2299980253432075743L, seeds[2]);
        Assert.Equal(seeds.Length, seeds.Distinct().Count());
    }

    [Fact]
    public void DeriveSeed_AnyInput_IsNonNegative()
    {
        Assert.All(Enumerable.Range(0, 200), i => Assert.True(Hashing.DeriveSeed(i, "round", i.ToString(System.Globalization.CultureInfo.InvariantCulture)) >= 0));
    }

    [Fact]
    public void Sha256Hex_Abc_IsStandardTestVector()
    {
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Hashing.Sha256Hex("abc"u8));
    }

    [Fact]
    public async Task Sha256HexAsync_Stream_MatchesSpanOverload()
    {
        var data = Encoding.UTF8.GetBytes("federated");
        using var stream = new MemoryStream(data);

        Assert.Equal(Hashing.Sha256Hex(data), await Hashing.Sha256HexAsync(stream));
    }
}
