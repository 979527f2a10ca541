using System.Buffers.Binary;
using System.IO.Compression;

namespace FederatedFunctions.Ml;

/// <summary>A decoded image: <see cref="Values"/> holds <c>Channels × Height × Width</c> values in [0, 1], channel by channel, row by row.</summary>
/// <param name="Width">Pixels per row.</param>
/// <param name="Height">Rows.</param>
/// <param name="Channels">1 (grayscale) or 3 (RGB).</param>
/// <param name="Values">Channel-major values, each a byte divided by 255.</param>
public sealed record PngImage(int Width, int Height, int Channels, float[] Values);

/// <summary>What a PNG's header (IHDR) says.</summary>
/// <param name="Width">Pixels per row.</param>
/// <param name="Height">Rows.</param>
/// <param name="ColorType">0 grayscale, 2 RGB, 3 palette, 4 grayscale with alpha, 6 RGBA.</param>
public readonly record struct PngHeader(int Width, int Height, int ColorType)
{
    /// <summary>The channels the decoder returns: 1 for grayscale (with or without alpha), 3 for RGB, RGBA and palette images.</summary>
    public int Channels => ColorType is 0 or 4 ? 1 : 3;

    /// <summary>Values per image: <c>Channels × Height × Width</c>.</summary>
    public long Values => (long)Channels * Height * Width;
}

/// <summary>A strict, dependency-free PNG decoder for the images a silo trains on.</summary>
/// <remarks>
/// <para>
/// Reads 8-bit grayscale, grayscale with alpha, RGB, RGBA and palette images without interlacing, per the PNG specification
/// (ISO/IEC 15948): the signature, IHDR first, at most one PLTE before the image data (required for palette images, refused
/// for grayscale ones), consecutive IDAT chunks holding one zlib stream, IEND last and nothing after it. Every chunk's CRC-32
/// is checked. Unknown ancillary chunks (tRNS, gAMA, tEXt, …) are skipped; an unknown critical chunk is refused. Each
/// scanline's filter (none, sub, up, average, Paeth) is undone. The image data must inflate to exactly the size the header
/// implies: shorter is truncated, longer is refused, and a corrupt stream is refused.
/// </para>
/// <para>
/// The result has 1 channel for grayscale images and 3 (red, green, blue) for RGB, RGBA and palette images; alpha is dropped,
/// and no gamma or colour-profile correction is applied. Each value is the stored byte divided by 255.
/// Refused with their own messages: bit depths other than 8 (16-bit, and 1, 2 or 4-bit), Adam7 interlacing, and images of
/// more than <see cref="MaxValues"/> values. Every error is an <see cref="InvalidDataException"/>.
/// </para>
/// </remarks>
public static class PngDecoder
{
    /// <summary>Most values (channels × height × width) an image may have.</summary>
    public const long MaxValues = 1L << 28;

    private static readonly float[] Unit = [.. Enumerable.Range(0, 256).Select(b => b / 255f)];
    private static readonly uint[] CrcTable = BuildCrcTable();

    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Reads and checks the signature and the IHDR chunk only, so that a caller can check the size before decoding.</summary>
    /// <exception cref="InvalidDataException">Not a PNG, a corrupt header, or a kind of PNG this decoder refuses.</exception>
    public static PngHeader ReadHeader(ReadOnlySpan<byte> png)
    {
        if (png.Length < Signature.Length || !png[..Signature.Length].SequenceEqual(Signature))
        {
            throw new InvalidDataException("not a PNG image (it does not start with the PNG signature)");
        }

        var (type, start, length, _) = ReadChunk(png, Signature.Length);
        var data = png.Slice(start, length);
        if (type != "IHDR" || length != 13)
        {
            throw new InvalidDataException("not a valid PNG image: the first chunk must be a 13-byte IHDR");
        }

        var width = BinaryPrimitives.ReadUInt32BigEndian(data);
        var height = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        var (depth, color, compression, filter, interlace) = (data[8], data[9], data[10], data[11], data[12]);
        if (width is 0 or > int.MaxValue || height is 0 or > int.MaxValue)
        {
            throw new InvalidDataException($"not a valid PNG image: its size {width}×{height} is outside 1 to 2^31 - 1");
        }

        var valid = color switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => depth is 8 or 16,
            _ => false,
        };
        if (!valid || compression != 0 || filter != 0 || interlace > 1)
        {
            throw new InvalidDataException($"not a valid PNG image: colour type {color}, bit depth {depth}, compression {compression}, filter method {filter}, interlace {interlace} is not a combination the specification allows");
        }

        if (depth != 8)
        {
            throw new InvalidDataException($"the image has {depth}-bit samples; only 8-bit PNG images are read (convert it, e.g. to 8-bit grayscale or RGB)");
        }

        if (interlace == 1)
        {
            throw new InvalidDataException("the image is interlaced (Adam7); only non-interlaced PNG images are read");
        }

        var header = new PngHeader((int)width, (int)height, color);
        if (header.Values > MaxValues)
        {
            throw new InvalidDataException($"the image has {header.Values} values ({header.Channels}×{height}×{width}), more than {MaxValues}");
        }

        return header;
    }

    /// <summary>Decodes a whole PNG image.</summary>
    /// <exception cref="InvalidDataException">Not a PNG, corrupt, truncated, or a kind this decoder refuses; the message says which.</exception>
    public static PngImage Decode(ReadOnlySpan<byte> png)
    {
        var header = ReadHeader(png);
        var position = Signature.Length + 25;
        byte[]? palette = null;
        var idat = new List<(int Start, int Length)>();
        var idatDone = false;
        while (true)
        {
            var (type, start, length, next) = ReadChunk(png, position);
            var data = png.Slice(start, length);
            position = next;
            if (type == "IDAT")
            {
                if (idatDone)
                {
                    throw new InvalidDataException("not a valid PNG image: its IDAT chunks are not consecutive");
                }

                idat.Add((start, data.Length));
                continue;
            }

            idatDone |= idat.Count > 0;
            switch (type)
            {
                case "IEND":
                    if (data.Length != 0)
                    {
                        throw new InvalidDataException("not a valid PNG image: IEND is not empty");
                    }

                    if (position != png.Length)
                    {
                        throw new InvalidDataException($"the file has {png.Length - position} bytes after the end of the image (IEND)");
                    }

                    return Finish(png, header, palette, idat);
                case "IHDR":
                    throw new InvalidDataException("not a valid PNG image: it has two IHDR chunks");
                case "PLTE":
                    if (palette is not null || idat.Count > 0)
                    {
                        throw new InvalidDataException("not a valid PNG image: a PLTE chunk repeated or after the image data");
                    }

                    if (header.ColorType is 0 or 4)
                    {
                        throw new InvalidDataException("not a valid PNG image: a grayscale image has a palette (PLTE)");
                    }

                    if (data.Length is 0 or > 768 || data.Length % 3 != 0)
                    {
                        throw new InvalidDataException($"not a valid PNG image: its palette is {data.Length} bytes, not 1 to 256 RGB entries");
                    }

                    palette = data.ToArray();
                    break;
                default:
                    // Bit 5 of the first letter clear (upper case): critical, and a decoder that does not know it must not guess.
                    if ((type[0] & 0x20) == 0)
                    {
                        throw new InvalidDataException($"the image has a critical chunk '{type}' this decoder does not know");
                    }

                    break;
            }
        }
    }

    private static PngImage Finish(ReadOnlySpan<byte> png, PngHeader header, byte[]? palette, List<(int Start, int Length)> idat)
    {
        if (idat.Count == 0)
        {
            throw new InvalidDataException("not a valid PNG image: it has no image data (IDAT)");
        }

        if (header.ColorType == 3 && palette is null)
        {
            throw new InvalidDataException("not a valid PNG image: a palette image without a palette (PLTE)");
        }

        var compressed = new byte[idat.Sum(c => (long)c.Length)];
        var offset = 0;
        foreach (var (start, length) in idat)
        {
            png.Slice(start, length).CopyTo(compressed.AsSpan(offset));
            offset += length;
        }

        var bpp = header.ColorType switch { 0 or 3 => 1, 4 => 2, 2 => 3, _ => 4 };
        var rowBytes = (long)header.Width * bpp;
        var raw = new byte[checked((int)(header.Height * (rowBytes + 1)))];
        Inflate(compressed, raw);
        Unfilter(raw, header.Height, (int)rowBytes, bpp);
        return new PngImage(header.Width, header.Height, header.Channels, Convert(raw, header, (int)rowBytes, palette));
    }

    private static void Inflate(byte[] compressed, byte[] raw)
    {
        try
        {
            using var zlib = new ZLibStream(new MemoryStream(compressed, writable: false), CompressionMode.Decompress);
            var filled = 0;
            int read;
            while (filled < raw.Length && (read = zlib.Read(raw, filled, raw.Length - filled)) > 0)
            {
                filled += read;
            }

            if (filled < raw.Length)
            {
                throw new InvalidDataException($"the image data is truncated: it inflates to {filled} bytes, its size needs {raw.Length}");
            }

            // Reading past the end makes the stream check its Adler-32 and shows data beyond the image.
            if (zlib.Read(new byte[1]) > 0)
            {
                throw new InvalidDataException("the image data inflates to more bytes than its size needs");
            }
        }
        catch (InvalidDataException ex) when (!ex.Message.StartsWith("the image data", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"the image data is corrupt (zlib: {ex.Message})", ex);
        }
    }

    private static void Unfilter(byte[] raw, int height, int rowBytes, int bpp)
    {
        var stride = rowBytes + 1;
        for (var y = 0; y < height; y++)
        {
            var line = raw.AsSpan((y * stride) + 1, rowBytes);
            var prior = y == 0 ? default : raw.AsSpan(((y - 1) * stride) + 1, rowBytes);
            var filter = raw[y * stride];
            switch (filter)
            {
                case 0:
                    break;
                case 1:
                    for (var i = bpp; i < rowBytes; i++)
                    {
                        line[i] += line[i - bpp];
                    }

                    break;
                case 2 when y > 0:
                    for (var i = 0; i < rowBytes; i++)
                    {
                        line[i] += prior[i];
                    }

                    break;
                case 2:
                    break;
                case 3:
                    for (var i = 0; i < rowBytes; i++)
                    {
                        var left = i >= bpp ? line[i - bpp] : 0;
                        var up = y > 0 ? prior[i] : 0;
                        line[i] += (byte)((left + up) >> 1);
                    }

                    break;
                case 4:
                    for (var i = 0; i < rowBytes; i++)
                    {
                        var left = i >= bpp ? line[i - bpp] : 0;
                        var up = y > 0 ? prior[i] : 0;
                        var upLeft = i >= bpp && y > 0 ? prior[i - bpp] : 0;
                        line[i] += (byte)Paeth(left, up, upLeft);
                    }

                    break;
                default:
                    throw new InvalidDataException($"row {y} of the image has filter type {filter}; PNG defines 0 to 4");
            }
        }
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        var (pa, pb, pc) = (Math.Abs(p - a), Math.Abs(p - b), Math.Abs(p - c));
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static float[] Convert(byte[] raw, PngHeader header, int rowBytes, byte[]? palette)
    {
        var (width, height) = (header.Width, header.Height);
        var plane = width * height;
        var values = new float[header.Values];
        var entries = palette is null ? 0 : palette.Length / 3;
        for (var y = 0; y < height; y++)
        {
            var line = raw.AsSpan((y * (rowBytes + 1)) + 1, rowBytes);
            var at = y * width;
            for (var x = 0; x < width; x++)
            {
                switch (header.ColorType)
                {
                    case 0:
                        values[at + x] = Unit[line[x]];
                        break;
                    case 4:
                        values[at + x] = Unit[line[2 * x]];
                        break;
                    case 3:
                        var index = line[x];
                        if (index >= entries)
                        {
                            throw new InvalidDataException($"pixel ({x}, {y}) uses palette entry {index}, but the palette has {entries}");
                        }

                        for (var c = 0; c < 3; c++)
                        {
                            values[(c * plane) + at + x] = Unit[palette![(3 * index) + c]];
                        }

                        break;
                    default:
                        var step = header.ColorType == 2 ? 3 : 4;
                        for (var c = 0; c < 3; c++)
                        {
                            values[(c * plane) + at + x] = Unit[line[(step * x) + c]];
                        }

                        break;
                }
            }
        }

        return values;
    }

    private static (string Type, int Start, int Length, int Next) ReadChunk(ReadOnlySpan<byte> png, int position)
    {
        if (png.Length - position < 12)
        {
            throw new InvalidDataException("the image is truncated: it ends before its IEND chunk");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(png[position..]);
        var type = png.Slice(position + 4, 4);
        foreach (var c in type)
        {
            if (!char.IsAsciiLetter((char)c))
            {
                throw new InvalidDataException("not a valid PNG image: a chunk type is not four ASCII letters");
            }
        }

        if (length > int.MaxValue || png.Length - position - 12 < length)
        {
            throw new InvalidDataException($"the image is truncated: its {System.Text.Encoding.ASCII.GetString(type)} chunk is longer than the rest of the file");
        }

        var stored = BinaryPrimitives.ReadUInt32BigEndian(png[(position + 8 + (int)length)..]);
        if (Crc32(png.Slice(position + 4, 4 + (int)length)) != stored)
        {
            throw new InvalidDataException($"the image is corrupt: the CRC of its {System.Text.Encoding.ASCII.GetString(type)} chunk does not match");
        }

        return (System.Text.Encoding.ASCII.GetString(type), position + 8, (int)length, position + 12 + (int)length);
    }

    /// <summary>CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), as PNG chunks carry it.</summary>
    internal static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFF_FFFFu;
        foreach (var b in bytes)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc ^ 0xFFFF_FFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (var n = 0u; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB8_8320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }
}
