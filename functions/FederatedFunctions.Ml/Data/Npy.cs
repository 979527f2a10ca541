using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace FederatedFunctions.Ml;

/// <summary>Reads NumPy's <c>.npy</c> arrays and <c>.npz</c> archives, strictly; writes the two kinds the product produces.</summary>
/// <remarks>
/// <para>
/// <c>.npy</c> (NumPy's <c>numpy/lib/format.py</c>): the magic <c>\x93NUMPY</c>, a major and minor version (1.0, 2.0 or
/// 3.0), the header's length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), then the header: a Python dict literal
/// with exactly the keys <c>'descr'</c>, <c>'fortran_order'</c> and <c>'shape'</c>, ended by a newline (ASCII in 1.0 and 2.0,
/// UTF-8 in 3.0). The data follows, exactly <c>product(shape) × itemsize</c> bytes, nothing after.
/// </para>
/// <para>
/// Accepted dtypes: <c>|b1</c>, <c>|u1</c>, <c>|i1</c>, and little-endian <c>&lt;u2 &lt;i2 &lt;u4 &lt;i4 &lt;u8 &lt;i8 &lt;f2 &lt;f4
/// &lt;f8</c>. Refused, each with its own message: big-endian (<c>&gt;f4</c>), object arrays (<c>|O</c>, which NumPy can only
/// read back by unpickling), structured dtypes (a list), every other kind (strings, complex, dates), and Fortran order.
/// The header is at most <see cref="MaxHeaderBytes"/>.
/// </para>
/// <para>
/// <c>.npz</c> (<c>numpy.savez</c>, <c>numpy.savez_compressed</c>): a zip archive whose entry <c>{name}.npy</c> holds array
/// <c>name</c>, stored or deflated. Only the requested arrays are read; each is at most the caller's bound uncompressed.
/// </para>
/// <para>Every error is an <see cref="InvalidDataException"/> whose message says what is wrong, never a value of the data.</para>
/// </remarks>
public static class Npy
{
    /// <summary>Longest accepted header, in bytes.</summary>
    public const int MaxHeaderBytes = 65_536;

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The accepted dtypes, as NumPy names them.</summary>
    public static readonly IReadOnlyList<string> SupportedDescrs = ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"];

    /// <summary>Parses one <c>.npy</c> file without copying its data.</summary>
    /// <param name="file">The whole file.</param>
    /// <param name="name">The array's name, for <see cref="DataArray.Name"/>.</param>
    /// <exception cref="InvalidDataException">The file is not a <c>.npy</c> array this product reads; the message says why.</exception>
    public static DataArray Parse(ReadOnlyMemory<byte> file, string name)
    {
        var span = file.Span;
        if (span.Length < 10 || !span[..6].SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a .npy array (it does not start with the magic \\x93NUMPY)");
        }

        var (major, minor) = (span[6], span[7]);
        if (major is < 1 or > 3 || minor != 0)
        {
            throw new InvalidDataException($"unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)");
        }

        var prefix = major == 1 ? 10 : 12;
        if (span.Length < prefix)
        {
            throw new InvalidDataException("the file ends inside its header");
        }

        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(span[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        if (headerLength > MaxHeaderBytes)
        {
            throw new InvalidDataException($"its header is {headerLength} bytes, more than {MaxHeaderBytes}");
        }

        if (prefix + headerLength > span.Length)
        {
            throw new InvalidDataException("the file ends inside its header");
        }

        string header;
        try
        {
            var encoding = major == 3 ? (Encoding)new UTF8Encoding(false, true) : Encoding.GetEncoding("us-ascii", EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
            header = encoding.GetString(span.Slice(prefix, (int)headerLength));
        }
        catch (DecoderFallbackException)
        {
            throw new InvalidDataException(major == 3 ? "its header is not valid UTF-8" : "its header is not ASCII");
        }

        var (descr, fortran, shape) = new HeaderParser(header).Parse();
        if (fortran)
        {
            throw new InvalidDataException("it is in Fortran order (fortran_order: True); save it in C order, e.g. numpy.ascontiguousarray(a)");
        }

        var type = ParseDescr(descr);
        long count;
        try
        {
            count = shape.Aggregate(1L, (n, d) => checked(n * d));
            _ = checked(count * DataArray.ElementSize(type));
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"its shape {DataArray.FormatShape(shape)} has more elements than fit in 64 bits");
        }

        var expected = count * DataArray.ElementSize(type);
        var data = file[(int)(prefix + headerLength)..];
        if (data.Length != expected)
        {
            throw new InvalidDataException(data.Length < expected
                ? $"it is truncated: shape {DataArray.FormatShape(shape)} of {descr} needs {expected} bytes of data, the file has {data.Length}"
                : $"it has {data.Length - expected} bytes after the data of its shape {DataArray.FormatShape(shape)} of {descr}");
        }

        return new DataArray(name, type, shape, data);
    }

    /// <summary>Reads the arrays <paramref name="names"/> from a <c>.npz</c> archive; arrays it does not name are not read.</summary>
    /// <param name="archive">The whole archive.</param>
    /// <param name="names">The arrays to read (entry <c>{name}.npy</c> each).</param>
    /// <param name="maxArrayBytes">The largest accepted array, uncompressed (a bound on a zip bomb).</param>
    /// <returns>The arrays found, by name; a name without an entry is absent.</returns>
    /// <exception cref="InvalidDataException">Not a zip archive, an entry named twice, too large, unreadable, or not a valid <c>.npy</c>.</exception>
    public static IReadOnlyDictionary<string, DataArray> ReadNpz(byte[] archive, IReadOnlyCollection<string> names, long maxArrayBytes)
    {
        ArgumentNullException.ThrowIfNull(archive);
        ArgumentNullException.ThrowIfNull(names);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(new MemoryStream(archive, writable: false), ZipArchiveMode.Read);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"not a .npz archive: it is not a zip file ({ex.Message})", ex);
        }

        using (zip)
        {
            var found = new Dictionary<string, DataArray>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
            {
                var name = entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : null;
                if (name is null || !names.Contains(name))
                {
                    continue;
                }

                if (found.ContainsKey(name))
                {
                    throw new InvalidDataException($"the archive has two entries {name}.npy");
                }

                if (entry.Length > maxArrayBytes)
                {
                    throw new InvalidDataException($"array '{name}' is {entry.Length} bytes uncompressed, more than {maxArrayBytes}");
                }

                var (bytes, tooLarge) = Inflate(entry, name, maxArrayBytes);
                if (tooLarge)
                {
                    throw new InvalidDataException($"array '{name}' inflates to more than {maxArrayBytes} bytes");
                }

                if (bytes.Length != entry.Length)
                {
                    throw new InvalidDataException($"entry {name}.npy inflates to {bytes.Length} bytes, but the archive says {entry.Length}");
                }

                try
                {
                    found[name] = Parse(bytes, name);
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException($"array '{name}' ({name}.npy): {ex.Message}", ex);
                }
            }

            return found;
        }
    }

    private static (byte[] Bytes, bool TooLarge) Inflate(ZipArchiveEntry entry, string name, long maxBytes)
    {
        try
        {
            using var source = entry.Open();
            using var buffer = new MemoryStream((int)Math.Min(entry.Length, maxBytes));
            var chunk = new byte[81_920];
            int read;
            while ((read = source.Read(chunk)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    return ([], true);
                }

                buffer.Write(chunk, 0, read);
            }

            return (buffer.ToArray(), false);
        }
        catch (Exception ex) when (ex is InvalidDataException or NotSupportedException or IOException)
        {
            throw new InvalidDataException($"entry {name}.npy cannot be read ({ex.Message})", ex);
        }
    }

    /// <summary>A version 1.0 <c>.npy</c> file of a C-order array, as <c>numpy.save</c> writes it (header padded to 64 bytes).</summary>
    /// <param name="descr">One of <see cref="SupportedDescrs"/>.</param>
    /// <param name="shape">The dimensions.</param>
    /// <param name="data">The elements, little-endian, <c>product(shape) × itemsize</c> bytes.</param>
    /// <exception cref="ArgumentException">An unsupported dtype, or data of the wrong length.</exception>
    public static byte[] Serialize(string descr, IReadOnlyList<long> shape, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (!SupportedDescrs.Contains(descr, StringComparer.Ordinal))
        {
            throw new ArgumentException($"Unsupported dtype '{descr}'.", nameof(descr));
        }

        var count = shape.Aggregate(1L, (n, d) => checked(n * d));
        if (data.Length != count * DataArray.ElementSize(ParseDescr(descr)))
        {
            throw new ArgumentException($"{data.Length} bytes do not hold shape {DataArray.FormatShape(shape)} of {descr}.", nameof(data));
        }

        var dims = shape.Count == 1 ? $"({shape[0].ToString(CultureInfo.InvariantCulture)},)" : "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")";
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}";
        var total = 10 + dict.Length + 1;
        var padded = dict + new string(' ', (64 - (total % 64)) % 64) + "\n";
        var file = new byte[10 + padded.Length + data.Length];
        Magic.CopyTo(file);
        file[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(8), (ushort)padded.Length);
        Encoding.ASCII.GetBytes(padded, file.AsSpan(10));
        data.CopyTo(file.AsSpan(10 + padded.Length));
        return file;
    }

    private static ArrayElementType ParseDescr(string descr)
    {
        if (descr.Length < 2)
        {
            throw new InvalidDataException($"unsupported dtype '{descr}'");
        }

        var (order, kind) = (descr[0], descr[1..]);
        if (kind.StartsWith('O'))
        {
            throw new InvalidDataException($"it is an object array (dtype '{descr}'), which only unpickling can read; save a numeric array");
        }

        ArrayElementType? type = kind switch
        {
            "b1" => ArrayElementType.Bool,
            "u1" => ArrayElementType.UInt8,
            "i1" => ArrayElementType.Int8,
            "u2" => ArrayElementType.UInt16,
            "i2" => ArrayElementType.Int16,
            "u4" => ArrayElementType.UInt32,
            "i4" => ArrayElementType.Int32,
            "u8" => ArrayElementType.UInt64,
            "i8" => ArrayElementType.Int64,
            "f2" => ArrayElementType.Float16,
            "f4" => ArrayElementType.Float32,
            "f8" => ArrayElementType.Float64,
            _ => null,
        };
        if (type is not { } t || order is not ('<' or '>' or '|'))
        {
            throw new InvalidDataException($"unsupported dtype '{descr}' (supported: {string.Join(", ", SupportedDescrs)})");
        }

        var size = DataArray.ElementSize(t);
        if (order == '>' && size > 1)
        {
            throw new InvalidDataException($"it is big-endian (dtype '{descr}'); save it little-endian, e.g. a.astype('<{kind}')");
        }

        if (order == '|' && size > 1)
        {
            throw new InvalidDataException($"dtype '{descr}' has no byte order; a {size}-byte type needs '<'");
        }

        return t;
    }

    /// <summary>The header's dict literal: <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (3, 4), }</c>, in any key order.</summary>
    private sealed class HeaderParser(string text)
    {
        private int position;

        public (string Descr, bool Fortran, long[] Shape) Parse()
        {
            if (!text.EndsWith('\n'))
            {
                throw Error("it does not end with a newline");
            }

            string? descr = null;
            bool? fortran = null;
            long[]? shape = null;
            Expect('{');
            while (true)
            {
                SkipSpace();
                if (TryTake('}'))
                {
                    break;
                }

                var key = ReadString();
                Expect(':');
                SkipSpace();
                switch (key)
                {
                    case "descr" when descr is null:
                        if (Peek() == '[')
                        {
                            throw new InvalidDataException("it has a structured dtype (a list of fields); save a plain numeric array");
                        }

                        descr = ReadString();
                        break;
                    case "fortran_order" when fortran is null:
                        fortran = ReadBool();
                        break;
                    case "shape" when shape is null:
                        shape = ReadShape();
                        break;
                    case "descr" or "fortran_order" or "shape":
                        throw Error($"key '{key}' appears twice");
                    default:
                        throw Error($"unexpected key '{Shorten(key)}' (the keys are descr, fortran_order and shape)");
                }

                SkipSpace();
                if (TryTake('}'))
                {
                    break;
                }

                Expect(',');
            }

            if (text.AsSpan(position).Trim(' ').SequenceEqual("\n") is false)
            {
                throw Error("it has text after the dict");
            }

            return (descr ?? throw Error("it has no 'descr'"), fortran ?? throw Error("it has no 'fortran_order'"), shape ?? throw Error("it has no 'shape'"));
        }

        private long[] ReadShape()
        {
            Expect('(');
            var dims = new List<long>();
            while (true)
            {
                SkipSpace();
                if (TryTake(')'))
                {
                    return [.. dims];
                }

                var start = position;
                while (position < text.Length && char.IsAsciiDigit(text[position]))
                {
                    position++;
                }

                if (position == start || !long.TryParse(text.AsSpan(start, position - start), NumberStyles.None, CultureInfo.InvariantCulture, out var dim))
                {
                    throw Error("its shape is not a tuple of non-negative integers");
                }

                // Python 2's NumPy wrote long integers with an L suffix.
                _ = TryTake('L');
                dims.Add(dim);
                SkipSpace();
                if (TryTake(')'))
                {
                    return [.. dims];
                }

                Expect(',');
            }
        }

        private bool ReadBool()
        {
            foreach (var (word, value) in new[] { ("True", true), ("False", false) })
            {
                if (text.AsSpan(position).StartsWith(word, StringComparison.Ordinal))
                {
                    position += word.Length;
                    return value;
                }
            }

            throw Error("fortran_order is not True or False");
        }

        private string ReadString()
        {
            SkipSpace();
            var quote = Peek();
            if (quote is not ('\'' or '"'))
            {
                throw Error("expected a quoted string");
            }

            var end = text.IndexOf(quote, position + 1);
            if (end < 0)
            {
                throw Error("a string is not closed");
            }

            var value = text[(position + 1)..end];
            if (value.Contains('\\', StringComparison.Ordinal))
            {
                throw Error("a string has an escape sequence");
            }

            position = end + 1;
            return value;
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (!TryTake(c))
            {
                throw Error($"expected '{c}'");
            }
        }

        private bool TryTake(char c)
        {
            if (position < text.Length && text[position] == c)
            {
                position++;
                return true;
            }

            return false;
        }

        private char Peek() => position < text.Length ? text[position] : '\0';

        private void SkipSpace()
        {
            while (position < text.Length && text[position] is ' ' or '\t')
            {
                position++;
            }
        }

        private InvalidDataException Error(string problem) => new($"its header is not a valid .npy header: {problem} (at character {position})");

        private static string Shorten(string s) => s.Length <= 32 ? s : s[..32] + "…";
    }
}
