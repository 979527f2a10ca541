using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// A PNG encoder for tests, written from the PNG specification apart from the product's decoder: any colour type, a chosen
/// filter per row, the image data split over several IDAT chunks, extra chunks, and hand-made headers for the cases a decoder
/// must refuse. Also compiled into Ml.Tests (linked), which does not reference this project.
/// </summary>
public static class TestPng
{
    /// <summary>The 8-byte PNG signature.</summary>
    public static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Samples per pixel of each colour type.</summary>
    public static int SamplesPerPixel(int colorType) => colorType switch { 0 or 3 => 1, 4 => 2, 2 => 3, 6 => 4, _ => throw new ArgumentOutOfRangeException(nameof(colorType)) };

    /// <summary>An 8-bit, non-interlaced PNG.</summary>
    /// <param name="width">Pixels per row.</param>
    /// <param name="height">Rows.</param>
    /// <param name="colorType">0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.</param>
    /// <param name="samples">The samples, row by row, each pixel's samples side by side (palette indexes for type 3).</param>
    /// <param name="palette">RGB triples, for type 3.</param>
    /// <param name="filter">The filter type of each row (0 none, 1 sub, 2 up, 3 average, 4 Paeth); default none.</param>
    /// <param name="idatSize">Bytes of compressed data per IDAT chunk.</param>
    /// <param name="extraChunks">Chunks written after the header (and palette), before the image data.</param>
    public static byte[] Encode(int width, int height, int colorType, byte[] samples, byte[]? palette = null, Func<int, int>? filter = null, int idatSize = int.MaxValue, IEnumerable<(string Type, byte[] Data)>? extraChunks = null)
    {
        var bpp = SamplesPerPixel(colorType);
        var rowBytes = width * bpp;
        if (samples.Length != rowBytes * height)
        {
            throw new ArgumentException($"{samples.Length} samples for {width}×{height}×{bpp}.", nameof(samples));
        }

        var filtered = new byte[height * (rowBytes + 1)];
        for (var y = 0; y < height; y++)
        {
            var type = filter?.Invoke(y) ?? 0;
            filtered[y * (rowBytes + 1)] = (byte)type;
            for (var x = 0; x < rowBytes; x++)
            {
                // The specification's names: Raw(x) this byte, Raw(x - bpp) the byte of the pixel to its left, Prior(x) the byte above.
                int Raw(int i) => i < 0 ? 0 : samples[(y * rowBytes) + i];
                int Prior(int i) => i < 0 || y == 0 ? 0 : samples[((y - 1) * rowBytes) + i];
                var predictor = type switch
                {
                    0 => 0,
                    1 => Raw(x - bpp),
                    2 => Prior(x),
                    3 => (Raw(x - bpp) + Prior(x)) / 2,
                    4 => PaethPredictor(Raw(x - bpp), Prior(x), Prior(x - bpp)),
                    _ => throw new ArgumentOutOfRangeException(nameof(filter)),
                };
                filtered[(y * (rowBytes + 1)) + 1 + x] = (byte)((Raw(x) - predictor) & 0xFF);
            }
        }

        var chunks = new List<(string, byte[])> { ("IHDR", Header(width, height, 8, colorType, 0)) };
        if (palette is not null)
        {
            chunks.Add(("PLTE", palette));
        }

        chunks.AddRange(extraChunks ?? []);
        var compressed = Zlib(filtered);
        for (var i = 0; i < compressed.Length; i += idatSize)
        {
            chunks.Add(("IDAT", compressed[i..Math.Min(compressed.Length, i + idatSize)]));
        }

        chunks.Add(("IEND", []));
        return File(chunks);
    }

    /// <summary>The 13 bytes of an IHDR chunk.</summary>
    public static byte[] Header(int width, int height, int bitDepth, int colorType, int interlace)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        (ihdr[8], ihdr[9], ihdr[10], ihdr[11], ihdr[12]) = ((byte)bitDepth, (byte)colorType, 0, 0, (byte)interlace);
        return ihdr;
    }

    /// <summary>A file of the signature and these chunks, each with its length and CRC.</summary>
    public static byte[] File(IEnumerable<(string Type, byte[] Data)> chunks)
    {
        using var file = new MemoryStream();
        file.Write(Signature);
        foreach (var (type, data) in chunks)
        {
            file.Write(Chunk(type, data));
        }

        return file.ToArray();
    }

    /// <summary>One chunk: length, type, data, CRC-32 of type and data.</summary>
    public static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    /// <summary>A zlib stream of <paramref name="data"/>.</summary>
    public static byte[] Zlib(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var zlib = new ZLibStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(data);
        }

        return buffer.ToArray();
    }

    /// <summary>An 8-bit grayscale image, filter none on every row.</summary>
    public static byte[] Gray(int width, int height, byte[] pixels) => Encode(width, height, 0, pixels);

    private static int PaethPredictor(int a, int b, int c)
    {
        var p = a + b - c;
        var pa = Math.Abs(p - a);
        var pb = Math.Abs(p - b);
        var pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc)
        {
            return a;
        }

        return pb <= pc ? b : c;
    }

    /// <summary>CRC-32 as PNG and zip use it, bit by bit (unlike the decoder's table): reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF.</summary>
    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) == 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }
}
