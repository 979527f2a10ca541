using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace FederatedFunctions.LocalHost.Plots;

/// <summary>An RGB image in memory, with the few drawing operations a chart needs, encoded as PNG.</summary>
/// <remarks>
/// PNG per its specification: the signature, one IHDR (8-bit RGB, no interlace), one IDAT (zlib, filter type 0 on every
/// scanline) and IEND, each chunk with its CRC-32. Text is a built-in 5×7 bitmap font (digits, letters drawn upper case,
/// and <c>. , - + _ ( ) [ ] : = % / &lt; &gt; #</c>; any other character draws as a box), so nothing depends on fonts installed on the machine.
/// </remarks>
public sealed class Raster
{
    private readonly byte[] pixels;

    /// <summary>A white image.</summary>
    public Raster(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        (Width, Height) = (width, height);
        pixels = new byte[width * height * 3];
        pixels.AsSpan().Fill(0xFF);
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The colour at (x, y), as 0xRRGGBB.</summary>
    public int this[int x, int y]
    {
        get
        {
            var i = ((y * Width) + x) * 3;
            return (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
        }
    }

    /// <summary>Fills the rectangle [x0, x1) × [y0, y1), clipped to the image.</summary>
    public void Fill(int x0, int y0, int x1, int y1, int rgb)
    {
        for (var y = Math.Max(0, y0); y < Math.Min(Height, y1); y++)
        {
            for (var x = Math.Max(0, x0); x < Math.Min(Width, x1); x++)
            {
                var i = ((y * Width) + x) * 3;
                (pixels[i], pixels[i + 1], pixels[i + 2]) = ((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb);
            }
        }
    }

    /// <summary>
    /// Draws the segment from (x0, y0) to (x1, y1), both ends included, with a square brush <paramref name="width"/> pixels
    /// wide, clipped to the image.
    /// </summary>
    /// <remarks>
    /// Bresenham's algorithm: each step puts the brush's top-left corner <c>(width - 1) / 2</c> pixels up and left of the
    /// line's pixel, so the line's own pixels are always covered (a 2-pixel brush thickens to the right and down). The
    /// segment is first clipped to the image (in doubles), so far-off ends cost nothing; a segment wholly inside the
    /// image is drawn from its exact ends, pixel for pixel the same every time.
    /// </remarks>
    public void Line(int x0, int y0, int x1, int y1, int rgb, int width = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var margin = (double)width;
        if (!ClipSegment(x0, y0, x1, y1, -margin, -margin, Width + margin, Height + margin, out var a, out var b))
        {
            return;
        }

        var (xa, ya, xb, yb) = ((long)Math.Round(a.X), (long)Math.Round(a.Y), (long)Math.Round(b.X), (long)Math.Round(b.Y));
        var (dx, dy) = (Math.Abs(xb - xa), -Math.Abs(yb - ya));
        var (sx, sy) = (xa < xb ? 1 : -1, ya < yb ? 1 : -1);
        var error = dx + dy;
        var offset = (width - 1) / 2;
        while (true)
        {
            Fill((int)xa - offset, (int)ya - offset, (int)xa - offset + width, (int)ya - offset + width, rgb);
            if (xa == xb && ya == yb)
            {
                return;
            }

            var twice = 2 * error;
            if (twice >= dy)
            {
                error += dy;
                xa += sx;
            }

            if (twice <= dx)
            {
                error += dx;
                ya += sy;
            }
        }
    }

    /// <summary>
    /// Clips the segment from (x0, y0) to (x1, y1) to the rectangle [left, right] × [top, bottom] (Liang–Barsky).
    /// False when no part of it lies inside, or a coordinate is not finite; ends that lie inside are returned unchanged.
    /// </summary>
    internal static bool ClipSegment(
        double x0, double y0, double x1, double y1, double left, double top, double right, double bottom,
        out (double X, double Y) from, out (double X, double Y) to)
    {
        (from, to) = ((x0, y0), (x1, y1));
        if (!(double.IsFinite(x0) && double.IsFinite(y0) && double.IsFinite(x1) && double.IsFinite(y1)))
        {
            return false;
        }

        var (t0, t1) = (0.0, 1.0);
        var (dx, dy) = (x1 - x0, y1 - y0);
        if (!(Edge(-dx, x0 - left) && Edge(dx, right - x0) && Edge(-dy, y0 - top) && Edge(dy, bottom - y0)))
        {
            return false;
        }

        if (t0 > 0)
        {
            from = (x0 + (t0 * dx), y0 + (t0 * dy));
        }

        if (t1 < 1)
        {
            to = (x0 + (t1 * dx), y0 + (t1 * dy));
        }

        return true;

        // p·t ≤ q along one edge: narrows [t0, t1], or reports the segment wholly outside it.
        bool Edge(double p, double q)
        {
            if (p == 0)
            {
                return q >= 0;
            }

            var t = q / p;
            if (p < 0)
            {
                if (t > t1)
                {
                    return false;
                }

                t0 = Math.Max(t0, t);
            }
            else
            {
                if (t < t0)
                {
                    return false;
                }

                t1 = Math.Min(t1, t);
            }

            return true;
        }
    }

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y), each font pixel <paramref name="scale"/> pixels wide.</summary>
    public void Text(int x, int y, string text, int rgb, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var c in text)
        {
            var rows = Font.Glyph(c);
            for (var r = 0; r < rows.Length; r++)
            {
                for (var col = 0; col < 5; col++)
                {
                    if (rows[r][col] != ' ')
                    {
                        Fill(x + (col * scale), y + (r * scale), x + ((col + 1) * scale), y + ((r + 1) * scale), rgb);
                    }
                }
            }

            x += 6 * scale;
        }
    }

    /// <summary>Width in pixels of <paramref name="text"/> as <see cref="Text"/> draws it.</summary>
    public static int TextWidth(string text, int scale = 1) => string.IsNullOrEmpty(text) ? 0 : ((text.Length * 6) - 1) * scale;

    /// <summary>The image as PNG bytes.</summary>
    public byte[] ToPng()
    {
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, Width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), Height);
        (header[8], header[9]) = (8, 2); // 8 bits per sample, truecolour; compression, filter, interlace 0.
        Chunk(png, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                var stride = Width * 3;
                for (var y = 0; y < Height; y++)
                {
                    z.WriteByte(0);
                    z.Write(pixels, y * stride, stride);
                }
            }

            Chunk(png, "IDAT", compressed.ToArray());
        }

        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        var typed = new byte[4 + data.Length];
        System.Text.Encoding.ASCII.GetBytes(type, typed);
        data.CopyTo(typed, 4);
        png.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.HashToUInt32(typed));
        png.Write(word);
    }

    private static class Font
    {
        private static readonly string[] Box = ["#####", "#   #", "#   #", "#   #", "#   #", "#   #", "#####"];

        private static readonly Dictionary<char, string[]> Glyphs = new()
        {
            [' '] = ["     ", "     ", "     ", "     ", "     ", "     ", "     "],
            ['0'] = [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
            ['1'] = ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
            ['2'] = [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
            ['3'] = ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
            ['4'] = ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
            ['5'] = ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
            ['6'] = ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
            ['7'] = ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
            ['8'] = [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
            ['9'] = [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
            ['A'] = [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
            ['B'] = ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "],
            ['C'] = [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "],
            ['D'] = ["#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "],
            ['E'] = ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
            ['F'] = ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
            ['G'] = [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"],
            ['H'] = ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
            ['I'] = [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
            ['J'] = ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
            ['K'] = ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"],
            ['L'] = ["#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"],
            ['M'] = ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"],
            ['N'] = ["#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"],
            ['O'] = [" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
            ['P'] = ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "],
            ['Q'] = [" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"],
            ['R'] = ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"],
            ['S'] = [" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "],
            ['T'] = ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
            ['U'] = ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
            ['V'] = ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "],
            ['W'] = ["#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "],
            ['X'] = ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"],
            ['Y'] = ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "],
            ['Z'] = ["#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"],
            ['.'] = ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "],
            [','] = ["     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "],
            ['-'] = ["     ", "     ", "     ", "#####", "     ", "     ", "     "],
            ['+'] = ["     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "],
            ['_'] = ["     ", "     ", "     ", "     ", "     ", "     ", "#####"],
            ['('] = ["   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "],
            [')'] = [" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "],
            ['['] = [" ### ", " #   ", " #   ", " #   ", " #   ", " #   ", " ### "],
            [']'] = [" ### ", "   # ", "   # ", "   # ", "   # ", "   # ", " ### "],
            [':'] = ["     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "],
            ['='] = ["     ", "     ", "#####", "     ", "#####", "     ", "     "],
            ['%'] = ["##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"],
            ['/'] = ["     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "],
            ['<'] = ["   # ", "  #  ", " #   ", "#    ", " #   ", "  #  ", "   # "],
            ['>'] = [" #   ", "  #  ", "   # ", "    #", "   # ", "  #  ", " #   "],
            ['#'] = [" # # ", " # # ", "#####", " # # ", "#####", " # # ", " # # "],
        };

        public static string[] Glyph(char c) => Glyphs.TryGetValue(char.ToUpperInvariant(c), out var g) ? g : Box;
    }
}
