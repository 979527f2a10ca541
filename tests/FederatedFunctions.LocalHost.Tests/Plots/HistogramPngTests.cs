using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.LocalHost.Plots;

namespace FederatedFunctions.LocalHost.Tests.Plots;

public sealed class HistogramPngTests
{
    /// <summary>A strict decoder for what <see cref="Raster.ToPng"/> writes: checks the signature, every CRC, IHDR and each scanline's filter byte.</summary>
    public static (int Width, int Height, int[] Pixels) Decode(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var (offset, width, height) = (8, 0, 0);
        using var idat = new MemoryStream();
        var types = new List<string>();
        while (offset < png.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(offset));
            var typed = png.AsSpan(offset + 4, 4 + length);
            Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset + 8 + length)), Crc32.HashToUInt32(typed));
            var type = System.Text.Encoding.ASCII.GetString(typed[..4]);
            types.Add(type);
            var data = typed[4..];
            if (type == "IHDR")
            {
                (width, height) = (BinaryPrimitives.ReadInt32BigEndian(data), BinaryPrimitives.ReadInt32BigEndian(data[4..]));
                Assert.Equal(new byte[] { 8, 2, 0, 0, 0 }, data[8..].ToArray());
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }

            offset += 12 + length;
        }

        Assert.Equal(["IHDR", "IDAT", "IEND"], types);
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        var bytes = raw.ToArray();
        Assert.Equal(height * ((width * 3) + 1), bytes.Length);
        var pixels = new int[width * height];
        for (var y = 0; y < height; y++)
        {
            var row = y * ((width * 3) + 1);
            Assert.Equal(0, bytes[row]);
            for (var x = 0; x < width; x++)
            {
                var i = row + 1 + (x * 3);
                pixels[(y * width) + x] = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
            }
        }

        return (width, height, pixels);
    }

    [Fact]
    public void Draw_BarHeights_AreProportionalToTheCounts_AndASuppressedBinIsGreyNotEmpty()
    {
        var histogram = new HistogramResult([0, 1, 2, 4, 5], [40, 10, null, 0], 0, 0);

        var (width, height, pixels) = Decode(HistogramPng.Draw("age", histogram).ToPng());

        Assert.Equal((HistogramPng.Width, HistogramPng.Height), (width, height));
        var (left, top, right, bottom) = HistogramPng.Plot;
        int Column(double value) => left + (int)((right - left) * (value / 5.0));
        int BarHeight(int x) => Enumerable.Range(top, bottom - top).Count(y => pixels[(y * width) + x] == HistogramPng.BarColour);
        var plotHeight = bottom - top;
        Assert.Equal(plotHeight, BarHeight(Column(0.5)));
        Assert.InRange(BarHeight(Column(1.5)), (plotHeight / 4) - 1, (plotHeight / 4) + 1);
        Assert.Equal(0, BarHeight(Column(4.5)));

        // The suppressed bin [2, 4) is grey over the whole plot height, and twice as wide as a unit bin.
        var grey = Enumerable.Range(left, right - left).Where(x => pixels[((top + 1) * width) + x] == HistogramPng.SuppressedColour).ToArray();
        Assert.InRange(grey.Length, (2 * (right - left) / 5) - 3, 2 * (right - left) / 5);
        Assert.InRange(grey.Min(), Column(2) - 1, Column(2) + 1);
    }

    [Fact]
    public void Draw_MismatchedEdgesAndCounts_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => HistogramPng.Draw("x", new HistogramResult([0, 1], [1, 2], 0, 0)));
    }
}
