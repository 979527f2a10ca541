using System.Buffers;
using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Text.Json;

namespace FederatedFunctions.Core.Tensors;

/// <summary>Reads and writes the safetensors format of Hugging Face, the product's only weights format.</summary>
/// <remarks>
/// <para>
/// Layout: 8 bytes little-endian unsigned <c>N</c>; <c>N</c> bytes of UTF-8 JSON header; the byte buffer. The header maps
/// each tensor name to <c>{"dtype","shape","data_offsets":[begin,end]}</c>, offsets relative to the start of the buffer,
/// plus an optional <c>__metadata__</c> string-to-string map. Data is little-endian and row-major.
/// </para>
/// <para>
/// Writing is canonical, so that the same tensors always give bit-identical files (checkpoint hashes rely on it):
/// <c>__metadata__</c> first with keys in ordinal order and left out when empty, then the tensors in ordinal name order,
/// their data contiguous in that same order; the JSON has no whitespace, and the header is padded with spaces
/// (0x20) so that the buffer starts at a multiple of 8 bytes.
/// </para>
/// <para>
/// Reading is strict, because files come from silos: the header must start with <c>{</c> and be at most
/// <see cref="MaxHeaderBytes"/>; every tensor entry must have exactly the three fields, a dtype in <see cref="TensorDType"/>,
/// non-negative dimensions and offsets whose span matches its shape; and the tensors must tile the buffer exactly,
/// with no gap, no overlap and nothing after the last one (no room for a polyglot file). Names must be unique.
/// </para>
/// </remarks>
public static class Safetensors
{
    /// <summary>Largest accepted header, as in the reference implementation: it keeps a hostile header from exhausting memory.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const int PrefixBytes = 8;
    private const int Alignment = 8;

    /// <summary>The canonical file for <paramref name="tensors"/> and <paramref name="metadata"/>, as one array.</summary>
    /// <exception cref="ArgumentException">
    /// A duplicate, empty or reserved name, or one with an unpaired surrogate; a negative dimension; data whose length does not match its dtype and shape;
    /// a null metadata value; or a file too large for one array (use <see cref="Write"/>).
    /// </exception>
    public static byte[] Serialize(IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (sorted, header) = Prepare(tensors, metadata);
        long total = PrefixBytes + header.Length;
        foreach (var tensor in sorted)
        {
            total += tensor.Data.Length;
        }

        if (total > Array.MaxLength)
        {
            throw new ArgumentException($"The file would be {total} bytes, more than one array holds; write it to a stream instead.", nameof(tensors));
        }

        var file = new byte[total];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file.AsSpan(PrefixBytes));
        var offset = PrefixBytes + header.Length;
        foreach (var tensor in sorted)
        {
            tensor.Data.Span.CopyTo(file.AsSpan(offset));
            offset += tensor.Data.Length;
        }

        return file;
    }

    /// <summary>Writes the canonical file for <paramref name="tensors"/> and <paramref name="metadata"/> to <paramref name="destination"/>.</summary>
    /// <remarks>Everything is validated before the first byte is written, so an argument error leaves the stream untouched.</remarks>
    /// <exception cref="ArgumentException">As for <see cref="Serialize"/>.</exception>
    public static void Write(Stream destination, IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var (sorted, header) = Prepare(tensors, metadata);
        Span<byte> prefix = stackalloc byte[PrefixBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        destination.Write(prefix);
        destination.Write(header);
        foreach (var tensor in sorted)
        {
            destination.Write(tensor.Data.Span);
        }
    }

    /// <summary>The length of the safetensors file at the start of <paramref name="bytes"/>, which may hold more after it: the 8-byte length, the header and its tensors' bytes.</summary>
    /// <remarks>For blobs that hold several files one after another (a simulation's group of updates); only the header is read, and <see cref="Parse"/> still checks the file.</remarks>
    /// <exception cref="SafetensorsFormatException">The header is malformed, or its tensors end past <paramref name="bytes"/>.</exception>
    public static long LeadingFileLength(ReadOnlyMemory<byte> bytes)
    {
        var span = bytes.Span;
        if (span.Length < PrefixBytes)
        {
            throw Format($"The file is {span.Length} bytes; a safetensors file starts with an 8-byte header length.");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(span);
        if (headerLength > MaxHeaderBytes || headerLength > (ulong)(span.Length - PrefixBytes))
        {
            throw Format($"The header length is {headerLength} bytes, more than the limit of {MaxHeaderBytes} or than the {span.Length - PrefixBytes} bytes that follow.");
        }

        var start = PrefixBytes + (int)headerLength;
        var (entries, _) = ReadHeader(bytes.Slice(PrefixBytes, (int)headerLength), span.Length - start);
        return start + (entries.Count == 0 ? 0 : entries.Max(e => e.End));
    }

    /// <summary>Parses a whole safetensors file without copying tensor data.</summary>
    /// <returns>The tensors in data-offset order, each <see cref="NamedTensor.Data"/> a slice of <paramref name="file"/>, and the metadata.</returns>
    /// <exception cref="SafetensorsFormatException">The file is malformed; the message says where.</exception>
    public static SafetensorsFile Parse(ReadOnlyMemory<byte> file)
    {
        var span = file.Span;
        if (span.Length < PrefixBytes)
        {
            throw Format($"The file is {span.Length} bytes; a safetensors file starts with an 8-byte header length.");
        }

        var headerLength = HeaderLength(span, span.Length);
        var layout = ParseLayout(file[..(PrefixBytes + (int)headerLength)], span.Length);
        var buffer = file[(int)layout.DataStart..];
        var tensors = new NamedTensor[layout.Tensors.Count];
        for (var i = 0; i < tensors.Length; i++)
        {
            var slot = layout.Tensors[i];
            tensors[i] = new NamedTensor(slot.Name, slot.DType, slot.Shape, buffer[(int)slot.Begin..(int)slot.End]);
        }

        return new SafetensorsFile(Array.AsReadOnly(tensors), layout.Metadata);
    }

    /// <summary>Bytes a file's 8-byte length field and its header take together, from its first 8 bytes: where its tensors' bytes start.</summary>
    /// <param name="prefix">At least the file's first 8 bytes.</param>
    /// <param name="fileBytes">The whole file's length (for a file read as a stream: the length it is expected to have).</param>
    /// <exception cref="SafetensorsFormatException">Fewer than 8 bytes, or a header longer than <see cref="MaxHeaderBytes"/> or than what follows it.</exception>
    public static long DataStart(ReadOnlySpan<byte> prefix, long fileBytes)
    {
        if (prefix.Length < PrefixBytes || fileBytes < PrefixBytes)
        {
            throw Format($"The file is {Math.Min(prefix.Length, fileBytes)} bytes; a safetensors file starts with an 8-byte header length.");
        }

        return PrefixBytes + (long)HeaderLength(prefix, fileBytes);
    }

    /// <summary>
    /// The layout of a file of <paramref name="fileBytes"/> bytes from its length field and header alone
    /// (<see cref="DataStart"/> bytes), checked as <see cref="Parse"/> checks the whole file: for reading its tensors' bytes
    /// as they arrive, without holding the file.
    /// </summary>
    /// <exception cref="SafetensorsFormatException">The header is malformed, or its tensors do not tile the <paramref name="fileBytes"/> − <see cref="DataStart"/> bytes after it exactly.</exception>
    public static SafetensorsLayout ParseLayout(ReadOnlyMemory<byte> prefixAndHeader, long fileBytes)
    {
        var start = DataStart(prefixAndHeader.Span, fileBytes);
        if (prefixAndHeader.Length != start)
        {
            throw new ArgumentException($"Expected the {start} bytes of the length field and the header, got {prefixAndHeader.Length}.", nameof(prefixAndHeader));
        }

        var header = prefixAndHeader[PrefixBytes..];
        if (header.Length == 0 || header.Span[0] != (byte)'{')
        {
            throw Format("The header must begin with '{' (0x7B) at byte offset 8.");
        }

        if (!System.Text.Unicode.Utf8.IsValid(header.Span))
        {
            throw Format("The header is not valid UTF-8.");
        }

        var bufferLength = fileBytes - start;
        if (bufferLength > int.MaxValue)
        {
            throw Format($"The tensors' buffer is {bufferLength} bytes, more than this reader takes ({int.MaxValue}).");
        }

        var (entries, metadata) = ReadHeader(header, (int)bufferLength);

        // Tile check: sorted by offsets, each tensor must start exactly where the previous one ended.
        entries.Sort(static (a, b) =>
        {
            var order = a.Begin.CompareTo(b.Begin);
            order = order != 0 ? order : a.End.CompareTo(b.End);
            return order != 0 ? order : string.CompareOrdinal(a.Name, b.Name);
        });

        long expected = 0;
        var slots = new TensorSlot[entries.Count];
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            if (entry.Begin > expected)
            {
                throw Format($"Tensor {Quote(entry.Name)} starts at buffer offset {entry.Begin}, leaving a gap of {entry.Begin - expected} bytes after offset {expected}.");
            }

            if (entry.Begin < expected)
            {
                throw Format($"Tensor {Quote(entry.Name)} starts at buffer offset {entry.Begin}, overlapping the previous tensor, which ends at offset {expected}.");
            }

            slots[i] = new TensorSlot(entry.Name, entry.DType, entry.Shape, entry.Begin, entry.End);
            expected = entry.End;
        }

        if (expected != bufferLength)
        {
            throw Format($"The tensors cover {expected} bytes of the {bufferLength}-byte buffer; {bufferLength - expected} bytes after offset {expected} belong to no tensor.");
        }

        return new SafetensorsLayout(Array.AsReadOnly(slots), metadata, start);
    }

    // The header length from the length field, checked against the limit and against the bytes that follow it.
    private static ulong HeaderLength(ReadOnlySpan<byte> prefix, long fileBytes)
    {
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
        {
            throw Format($"The header length is {headerLength} bytes, more than the limit of {MaxHeaderBytes}.");
        }

        if (headerLength > (ulong)(fileBytes - PrefixBytes))
        {
            throw Format($"The header length is {headerLength} bytes, but only {fileBytes - PrefixBytes} bytes follow the length field.");
        }

        return headerLength;
    }

    private static (NamedTensor[] Sorted, byte[] Header) Prepare(IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var sorted = new NamedTensor[tensors.Count];
        for (var i = 0; i < sorted.Length; i++)
        {
            var tensor = tensors[i] ?? throw new ArgumentException($"Tensor {i} is null.", nameof(tensors));
            CheckTensor(tensor);
            sorted[i] = tensor;
        }

        Array.Sort(sorted, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (var i = 1; i < sorted.Length; i++)
        {
            if (string.Equals(sorted[i - 1].Name, sorted[i].Name, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Tensor name {Quote(sorted[i].Name)} appears more than once.", nameof(tensors));
            }
        }

        var json = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { Indented = false }))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var key in metadata.Keys.Order(StringComparer.Ordinal))
                {
                    var value = metadata[key] ?? throw new ArgumentException($"Metadata value of {Quote(key)} is null.", nameof(metadata));
                    if (!IsWellFormedUtf16(key) || !IsWellFormedUtf16(value))
                    {
                        throw new ArgumentException($"Metadata entry {Quote(key)} has an unpaired surrogate and cannot be written as UTF-8.", nameof(metadata));
                    }

                    writer.WriteString(key, value);
                }

                writer.WriteEndObject();
            }

            long offset = 0;
            foreach (var tensor in sorted)
            {
                writer.WriteStartObject(tensor.Name);
                writer.WriteString("dtype", tensor.DType.ToHeaderName());
                writer.WriteStartArray("shape");
                foreach (var dimension in tensor.Shape)
                {
                    writer.WriteNumberValue(dimension);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += tensor.Data.Length;
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        // Pad with spaces so that 8 + N, where the buffer starts, is a multiple of 8.
        var padded = (json.WrittenCount + Alignment - 1) / Alignment * Alignment;
        var header = new byte[padded];
        json.WrittenSpan.CopyTo(header);
        header.AsSpan(json.WrittenCount).Fill((byte)' ');
        return (sorted, header);
    }

    private static void CheckTensor(NamedTensor tensor)
    {
        if (string.IsNullOrEmpty(tensor.Name))
        {
            throw new ArgumentException("Tensor names must not be empty.", nameof(tensor));
        }

        if (!IsWellFormedUtf16(tensor.Name))
        {
            throw new ArgumentException($"Tensor name {Quote(tensor.Name)} has an unpaired surrogate and cannot be written as UTF-8.", nameof(tensor));
        }

        if (tensor.Name == MetadataKey)
        {
            throw new ArgumentException($"'{MetadataKey}' is reserved and cannot name a tensor.", nameof(tensor));
        }

        if (!Enum.IsDefined(tensor.DType))
        {
            throw new ArgumentException($"Tensor {Quote(tensor.Name)} has unknown dtype {tensor.DType}.", nameof(tensor));
        }

        if (tensor.Shape is null)
        {
            throw new ArgumentException($"Tensor {Quote(tensor.Name)} has no shape.", nameof(tensor));
        }

        long bytes;
        try
        {
            foreach (var dimension in tensor.Shape)
            {
                if (dimension < 0)
                {
                    throw new ArgumentException($"Tensor {Quote(tensor.Name)} has negative dimension {dimension} in shape {ShapeText(tensor.Shape)}.", nameof(tensor));
                }
            }

            bytes = checked(NamedTensor.ShapeElementCount(tensor.Shape) * tensor.DType.ElementSize());
        }
        catch (OverflowException ex)
        {
            throw new ArgumentException($"Tensor {Quote(tensor.Name)} has shape {ShapeText(tensor.Shape)}, too large to address.", nameof(tensor), ex);
        }

        if (bytes != tensor.Data.Length)
        {
            throw new ArgumentException($"Tensor {Quote(tensor.Name)} has {tensor.Data.Length} bytes of data, but dtype {tensor.DType.ToHeaderName()} and shape {ShapeText(tensor.Shape)} need {bytes}.", nameof(tensor));
        }
    }

    private static (List<Entry> Entries, IReadOnlyDictionary<string, string> Metadata) ReadHeader(ReadOnlyMemory<byte> header, int bufferLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8, AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException ex)
        {
            throw new SafetensorsFormatException($"The header is not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            try
            {
                return ReadRoot(document.RootElement, bufferLength);
            }
            catch (InvalidOperationException ex)
            {
                // Reading a string whose escapes encode an unpaired surrogate (e.g. "\ud800") fails here.
                throw new SafetensorsFormatException("The header contains a string that is not valid Unicode (an escaped unpaired surrogate).", ex);
            }
        }
    }

    private static (List<Entry> Entries, IReadOnlyDictionary<string, string> Metadata) ReadRoot(JsonElement root, int bufferLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Format($"The header must be a JSON object; it is {root.ValueKind}.");
        }

        var entries = new List<Entry>();
        IReadOnlyDictionary<string, string> metadata = ReadOnlyDictionary<string, string>.Empty;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!names.Add(property.Name))
            {
                throw Format(property.Name == MetadataKey
                    ? $"The header has more than one '{MetadataKey}'."
                    : $"Tensor name {Quote(property.Name)} appears more than once in the header.");
            }

            if (property.Name == MetadataKey)
            {
                metadata = ReadMetadata(property.Value);
            }
            else
            {
                entries.Add(ReadEntry(property.Name, property.Value, bufferLength));
            }
        }

        return (entries, metadata);
    }

    private static ReadOnlyDictionary<string, string> ReadMetadata(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return ReadOnlyDictionary<string, string>.Empty;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Format($"'{MetadataKey}' must be an object of strings; it is {value.ValueKind}.");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw Format($"'{MetadataKey}' value {Quote(item.Name)} must be a string; it is {item.Value.ValueKind}.");
            }

            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
            {
                throw Format($"'{MetadataKey}' key {Quote(item.Name)} appears more than once.");
            }
        }

        return metadata.AsReadOnly();
    }

    private static Entry ReadEntry(string name, JsonElement value, int bufferLength)
    {
        var label = "Tensor " + Quote(name);
        if (name.Length == 0)
        {
            throw Format("A tensor has an empty name.");
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Format($"{label}: the entry must be an object; it is {value.ValueKind}.");
        }

        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype":
                    Assign(ref dtypeElement, field, label);
                    break;
                case "shape":
                    Assign(ref shapeElement, field, label);
                    break;
                case "data_offsets":
                    Assign(ref offsetsElement, field, label);
                    break;
                default:
                    throw Format($"{label}: unknown field {Quote(field.Name)}; an entry has only dtype, shape and data_offsets.");
            }
        }

        if (dtypeElement is not { ValueKind: JsonValueKind.String } dtypeValue)
        {
            throw Format($"{label}: dtype is missing or not a string.");
        }

        var dtypeName = dtypeValue.GetString()!;
        if (!TensorDTypes.TryParseHeaderName(dtypeName, out var dtype))
        {
            throw Format($"{label}: dtype {Quote(dtypeName)} is not supported; supported are F32, F64, I64 and I32.");
        }

        if (shapeElement is not { ValueKind: JsonValueKind.Array } shapeValue)
        {
            throw Format($"{label}: shape is missing or not an array.");
        }

        var shape = new long[shapeValue.GetArrayLength()];
        var index = 0;
        foreach (var dimension in shapeValue.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out var d))
            {
                throw Format($"{label}: shape[{index}] is not an integer.");
            }

            if (d < 0)
            {
                throw Format($"{label}: shape[{index}] is {d}; dimensions must not be negative.");
            }

            shape[index++] = d;
        }

        if (offsetsElement is not { ValueKind: JsonValueKind.Array } offsetsValue || offsetsValue.GetArrayLength() != 2)
        {
            throw Format($"{label}: data_offsets must be an array [begin, end].");
        }

        if (!TryGetOffset(offsetsValue[0], out var begin) || !TryGetOffset(offsetsValue[1], out var end))
        {
            throw Format($"{label}: data_offsets must be two non-negative integers; got {Truncate(offsetsValue.GetRawText())}.");
        }

        if (begin > end)
        {
            throw Format($"{label}: data_offsets [{begin}, {end}] end before they begin.");
        }

        if (end > bufferLength)
        {
            throw Format($"{label}: data_offsets [{begin}, {end}] reach past the end of the {bufferLength}-byte buffer.");
        }

        long expectedBytes;
        try
        {
            expectedBytes = checked(NamedTensor.ShapeElementCount(shape) * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw Format($"{label}: shape {ShapeText(shape)} is too large to address.");
        }

        if (end - begin != expectedBytes)
        {
            throw Format($"{label}: data_offsets [{begin}, {end}] span {end - begin} bytes, but dtype {dtypeName} and shape {ShapeText(shape)} need {expectedBytes}.");
        }

        return new Entry(name, dtype, shape, begin, end);
    }

    private static void Assign(ref JsonElement? slot, JsonProperty field, string label)
    {
        if (slot is not null)
        {
            throw Format($"{label}: field {Quote(field.Name)} appears more than once.");
        }

        slot = field.Value;
    }

    private static bool TryGetOffset(JsonElement element, out long offset)
    {
        offset = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out offset) && offset >= 0;
    }

    /// <summary>False when <paramref name="text"/> has an unpaired surrogate, which the JSON writer would silently replace.</summary>
    private static bool IsWellFormedUtf16(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static string ShapeText(IEnumerable<long> shape) =>
        "[" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    /// <summary>A tensor name quoted for a message: JSON-escaped (so control and non-ASCII characters are visible) and truncated.</summary>
    private static string Quote(string name)
    {
        var text = JsonEncodedText.Encode(name.Length <= 128 ? name : name[..128]).ToString();
        return "'" + text + (name.Length <= 128 ? "'" : "'...");
    }

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "...";

    private static SafetensorsFormatException Format(string message) => new(message);

    private readonly record struct Entry(string Name, TensorDType DType, long[] Shape, long Begin, long End);
}
