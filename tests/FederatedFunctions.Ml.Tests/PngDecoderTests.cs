using System.Buffers.Binary;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.Ml.Tests;

public sealed class PngDecoderTests
{
    // Seeded random samples for a width × height image of a colour type (palette indexes below the palette's size).
    private static (byte[] Samples, byte[]? Palette) Image(int width, int height, int colorType, int seed)
    {
        var random = new Random(seed);
        var samples = new byte[width * height * TestPng.SamplesPerPixel(colorType)];
        random.NextBytes(samples);
        if (colorType != 3)
        {
            return (samples, null);
        }

        var palette = new byte[3 * 200];
        random.NextBytes(palette);
        for (var i = 0; i < samples.Length; i++)
        {
            samples[i] = (byte)(samples[i] % 200);
        }

        return (samples, palette);
    }

    // What the decoder must return, computed from the samples: channel-major, alpha dropped, palette looked up, / 255.
    private static float[] Expected(int width, int height, int colorType, byte[] samples, byte[]? palette)
    {
        var channels = colorType is 0 or 4 ? 1 : 3;
        var spp = TestPng.SamplesPerPixel(colorType);
        var values = new float[channels * width * height];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var pixel = (y * width) + x;
                for (var c = 0; c < channels; c++)
                {
                    var sample = colorType == 3 ? palette![(3 * samples[pixel]) + c] : samples[(pixel * spp) + c];
                    values[(c * width * height) + pixel] = sample / 255f;
                }
            }
        }

        return values;
    }

    public static TheoryData<int, int> ColorTypesAndFilters()
    {
        var data = new TheoryData<int, int>();
        foreach (var colorType in new[] { 0, 2, 3, 4, 6 })
        {
            // Filters 0-4 on every row, and 5 meaning a different filter on each row (y mod 5).
            foreach (var filter in new[] { 0, 1, 2, 3, 4, 5 })
            {
                data.Add(colorType, filter);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ColorTypesAndFilters))]
    public void Decode_EachColorTypeAndFilter_GivesTheSamplesChannelByChannel(int colorType, int filter)
    {
        const int width = 7, height = 6;
        var (samples, palette) = Image(width, height, colorType, seed: (colorType * 10) + filter);
        var png = TestPng.Encode(width, height, colorType, samples, palette, y => filter == 5 ? y % 5 : filter, idatSize: 37);

        var image = PngDecoder.Decode(png);

        Assert.Equal((width, height, colorType is 0 or 4 ? 1 : 3), (image.Width, image.Height, image.Channels));
        Assert.Equal(Expected(width, height, colorType, samples, palette), image.Values);
    }

    [Fact]
    public void Decode_AncillaryChunks_AreSkipped()
    {
        var (samples, palette) = Image(4, 3, 3, seed: 1);
        var png = TestPng.Encode(4, 3, 3, samples, palette, extraChunks: [("tRNS", [0, 128, 255]), ("gAMA", [0, 0, 0xB1, 0x8F]), ("tEXt", "Comment\0made in a test"u8.ToArray())]);

        Assert.Equal(Expected(4, 3, 3, samples, palette), PngDecoder.Decode(png).Values);
    }

    [Fact]
    public void ReadHeader_GivesTheSizeAndChannelsWithoutDecoding()
    {
        var png = TestPng.Encode(5, 2, 6, new byte[40]);
        var header = PngDecoder.ReadHeader(png);
        Assert.Equal((5, 2, 3, 30L), (header.Width, header.Height, header.Channels, header.Values));
    }

    private static byte[] WithHeader(int bitDepth, int colorType, int interlace) =>
        TestPng.File([("IHDR", TestPng.Header(2, 2, bitDepth, colorType, interlace)), ("IDAT", TestPng.Zlib(new byte[16])), ("IEND", [])]);

    [Theory]
    [InlineData(16, 0, 0, "16-bit samples; only 8-bit")]
    [InlineData(16, 6, 0, "16-bit samples; only 8-bit")]
    [InlineData(4, 3, 0, "4-bit samples; only 8-bit")]
    [InlineData(1, 0, 0, "1-bit samples; only 8-bit")]
    [InlineData(8, 0, 1, "interlaced (Adam7)")]
    [InlineData(8, 5, 0, "not a combination the specification allows")]
    [InlineData(4, 2, 0, "not a combination the specification allows")]
    public void Decode_UnsupportedOrInvalidHeader_IsRefusedSayingWhy(int bitDepth, int colorType, int interlace, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(WithHeader(bitDepth, colorType, interlace)));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    private static byte[] GrayPng() => TestPng.Encode(3, 2, 0, [1, 2, 3, 4, 5, 6]);

    [Fact]
    public void Decode_NotAPng_IsRefused() =>
        Assert.Contains("PNG signature", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode("GIF89a......"u8)).Message, StringComparison.Ordinal);

    [Fact]
    public void Decode_WrongCrc_IsRefusedNamingTheChunk()
    {
        var png = GrayPng();
        png[8 + 25 + 8] ^= 0x01; // the first byte of IDAT's data
        Assert.Contains("CRC of its IDAT chunk", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(png)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(30)]
    [InlineData(1)]
    public void Decode_TruncatedFile_IsRefused(int cut)
    {
        var png = GrayPng();
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(png.AsSpan(0, png.Length - cut))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_BytesAfterIend_AreRefused()
    {
        byte[] png = [.. GrayPng(), 0];
        Assert.Contains("1 bytes after the end", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(png)).Message, StringComparison.Ordinal);
    }

    private static byte[] GrayWithData(byte[] zlib, params (string, byte[])[] before) =>
        TestPng.File([("IHDR", TestPng.Header(3, 2, 8, 0, 0)), .. before, ("IDAT", zlib), ("IEND", [])]);

    [Fact]
    public void Decode_ImageDataShorterThanTheSize_IsTruncated() =>
        Assert.Contains("truncated: it inflates to 7 bytes, its size needs 8", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData(TestPng.Zlib(new byte[7])))).Message, StringComparison.Ordinal);

    [Fact]
    public void Decode_ImageDataLongerThanTheSize_IsRefused() =>
        Assert.Contains("more bytes than its size", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData(TestPng.Zlib(new byte[9])))).Message, StringComparison.Ordinal);

    [Fact]
    public void Decode_CorruptZlib_IsRefused()
    {
        var zlib = TestPng.Zlib([0, 1, 2, 3, 0, 4, 5, 6]);
        zlib[^1] ^= 0xFF; // the Adler-32 checksum
        Assert.Contains("corrupt", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData(zlib))).Message, StringComparison.Ordinal);
        Assert.Contains("corrupt", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData([0x78, 0x9C, 0xFF, 0xFF, 0xFF]))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_UnknownFilterType_IsRefusedNamingTheRow() =>
        Assert.Contains("row 1 of the image has filter type 5", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData(TestPng.Zlib([0, 1, 2, 3, 5, 4, 5, 6])))).Message, StringComparison.Ordinal);

    [Fact]
    public void Decode_UnknownCriticalChunk_IsRefused_AndAnUnknownAncillaryOneSkipped()
    {
        var data = TestPng.Zlib([0, 1, 2, 3, 0, 4, 5, 6]);
        Assert.Contains("critical chunk 'CRIT'", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData(data, ("CRIT", [1])))).Message, StringComparison.Ordinal);
        Assert.Equal([1 / 255f, 2 / 255f, 3 / 255f, 4 / 255f, 5 / 255f, 6 / 255f], PngDecoder.Decode(GrayWithData(data, ("crIt", [1]))).Values);
    }

    [Fact]
    public void Decode_PaletteProblems_AreRefused()
    {
        var indexes = TestPng.Zlib([0, 0, 1, 2, 0, 2, 1, 0]);
        byte[] Palette(params (string, byte[])[] chunks) => TestPng.File([("IHDR", TestPng.Header(3, 2, 8, 3, 0)), .. chunks, ("IEND", [])]);

        Assert.Contains("without a palette", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(Palette(("IDAT", indexes)))).Message, StringComparison.Ordinal);
        Assert.Contains("palette entry 2, but the palette has 2", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(Palette(("PLTE", new byte[6]), ("IDAT", indexes)))).Message, StringComparison.Ordinal);
        Assert.Contains("not 1 to 256 RGB entries", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(Palette(("PLTE", new byte[7]), ("IDAT", indexes)))).Message, StringComparison.Ordinal);
        Assert.Contains("after the image data", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(Palette(("IDAT", indexes), ("PLTE", new byte[9])))).Message, StringComparison.Ordinal);
        Assert.Contains("grayscale image has a palette", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(GrayWithData(TestPng.Zlib(new byte[8]), ("PLTE", new byte[9])))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_StructuralErrors_AreRefused()
    {
        var data = TestPng.Zlib(new byte[8]);
        var ihdr = ("IHDR", TestPng.Header(3, 2, 8, 0, 0));
        Assert.Contains("IDAT chunks are not consecutive", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(TestPng.File([ihdr, ("IDAT", data[..4]), ("tEXt", "a\0b"u8.ToArray()), ("IDAT", data[4..]), ("IEND", [])]))).Message, StringComparison.Ordinal);
        Assert.Contains("no image data", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(TestPng.File([ihdr, ("IEND", [])]))).Message, StringComparison.Ordinal);
        Assert.Contains("two IHDR", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(TestPng.File([ihdr, ihdr, ("IDAT", data), ("IEND", [])]))).Message, StringComparison.Ordinal);
        Assert.Contains("first chunk must be a 13-byte IHDR", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(TestPng.File([("IDAT", data), ihdr, ("IEND", [])]))).Message, StringComparison.Ordinal);
        Assert.Contains("IEND is not empty", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(TestPng.File([ihdr, ("IDAT", data), ("IEND", [0])]))).Message, StringComparison.Ordinal);

        var zeroWidth = TestPng.Header(3, 2, 8, 0, 0);
        BinaryPrimitives.WriteInt32BigEndian(zeroWidth, 0);
        Assert.Contains("outside 1 to 2^31 - 1", Assert.Throws<InvalidDataException>(() => PngDecoder.Decode(TestPng.File([("IHDR", zeroWidth), ("IDAT", data), ("IEND", [])]))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadHeader_HugeImage_IsRefusedBeforeAnyDataIsRead()
    {
        var huge = TestPng.File([("IHDR", TestPng.Header(100_000, 100_000, 8, 2, 0))]);
        Assert.Contains($"more than {PngDecoder.MaxValues}", Assert.Throws<InvalidDataException>(() => PngDecoder.ReadHeader(huge)).Message, StringComparison.Ordinal);
    }
}
