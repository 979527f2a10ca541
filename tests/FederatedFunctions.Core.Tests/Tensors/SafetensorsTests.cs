using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Tests.Tensors;

public sealed class SafetensorsTests
{
    private static NamedTensor F32(string name, long[] shape, params float[] values) =>
        new(name, TensorDType.F32, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static NamedTensor Weight => F32("weight", [2, 2], 1f, 2f, 3f, 4f);

    private static NamedTensor Bias => F32("bias", [2], 0.5f, -1f);

    /// <summary>An 8-byte length, the header text as given (no padding added), then the buffer.</summary>
    private static byte[] RawFile(string header, byte[]? buffer = null, ulong? declaredLength = null)
    {
        var headerBytes = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + headerBytes.Length + (buffer?.Length ?? 0)];
        BinaryPrimitives.WriteUInt64LittleEndian(file, declaredLength ?? (ulong)headerBytes.Length);
        headerBytes.CopyTo(file, 8);
        buffer?.CopyTo(file, 8 + headerBytes.Length);
        return file;
    }

    private static string TensorEntry(string dtype, string shape, string offsets) =>
        $"{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

    // ---- exact bytes ----
    [Fact]
    public void Serialize_TwoTensors_ProducesExactBytes()
    {
        var file = Safetensors.Serialize([Weight, Bias]);

        // Tensors by ordinal name ("bias" < "weight"), data contiguous in that order, no whitespace in the JSON,
        // then 2 spaces so that 8 + 118 + 2 = 128 is a multiple of 8.
        const string json = "{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}";
        Assert.Equal(118, json.Length);
        const string header = json + "  ";

        Assert.Equal(new byte[] { 120, 0, 0, 0, 0, 0, 0, 0 }, file[..8]);
        Assert.Equal(header, Encoding.UTF8.GetString(file, 8, 120));
        Assert.Equal(0, (8 + 120) % 8);
        Assert.Equal(8 + 120 + 24, file.Length);
        byte[] data =
        [
            0x00, 0x00, 0x00, 0x3F, // 0.5f
            0x00, 0x00, 0x80, 0xBF, // -1.0f
            0x00, 0x00, 0x80, 0x3F, // 1.0f
            0x00, 0x00, 0x00, 0x40, // 2.0f
            0x00, 0x00, 0x40, 0x40, // 3.0f
            0x00, 0x00, 0x80, 0x40, // 4.0f
        ];
        Assert.Equal(data, file[128..]);
    }

    [Fact]
    public void Serialize_WithMetadata_WritesMetadataFirstWithSortedKeys()
    {
        var file = Safetensors.Serialize([Bias], new Dictionary<string, string> { ["round"] = "3", ["format"] = "pt" });

        // 100 bytes of JSON, then 4 spaces so that 8 + 104 = 112 is a multiple of 8.
        const string json = "{\"__metadata__\":{\"format\":\"pt\",\"round\":\"3\"},"
            + "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        Assert.Equal(100, json.Length);
        const string header = json + "    ";
        Assert.Equal(104UL, BinaryPrimitives.ReadUInt64LittleEndian(file));
        Assert.Equal(header, Encoding.UTF8.GetString(file, 8, 104));
    }

    [Fact]
    public void Serialize_ScalarAndEmptyTensors_WritesShapesAndZeroLengthSpans()
    {
        var scalar = new NamedTensor("s", TensorDType.I64, [], BitConverter.GetBytes(7L));
        var empty = new NamedTensor("e", TensorDType.F32, [0, 3], ReadOnlyMemory<byte>.Empty);

        var file = Safetensors.Serialize([scalar, empty]);

        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(
            "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}",
            Encoding.UTF8.GetString(file, 8, headerLength).TrimEnd(' '));
        Assert.Equal(7L, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(8 + headerLength)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Serialize_AnyNameLength_PadsHeaderWithSpacesToMultipleOf8(int nameLength)
    {
        var file = Safetensors.Serialize([F32(new string('n', nameLength), [1], 1f)]);

        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = Encoding.UTF8.GetString(file, 8, headerLength);
        Assert.Equal(0, (8 + headerLength) % 8);
        var json = header.TrimEnd(' ');
        Assert.EndsWith("}", json, StringComparison.Ordinal);
        Assert.InRange(headerLength - json.Length, 0, 7);
        Assert.DoesNotContain(' ', json);
    }

    // ---- determinism ----
    [Fact]
    public void Serialize_SameTensorsTwice_ProducesIdenticalBytes()
    {
        Assert.Equal(Safetensors.Serialize([Weight, Bias]), Safetensors.Serialize([Weight, Bias]));
    }

    [Fact]
    public void Serialize_InputOrder_DoesNotChangeBytes()
    {
        var metadataA = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" };
        var metadataB = new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" };

        Assert.Equal(Safetensors.Serialize([Weight, Bias], metadataA), Safetensors.Serialize([Bias, Weight], metadataB));
    }

    [Fact]
    public void Serialize_OrdinalNameOrder_IsNotCultureOrder()
    {
        // Ordinal: "B" (0x42) < "a" (0x61); a culture-aware sort would put "a" first.
        var file = Safetensors.Serialize([F32("a", [1], 1f), F32("B", [1], 2f)]);

        Assert.Equal(["B", "a"], Safetensors.Parse(file).Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Serialize_EmptyMetadata_SameAsNoMetadata()
    {
        Assert.Equal(Safetensors.Serialize([Bias]), Safetensors.Serialize([Bias], new Dictionary<string, string>()));
    }

    [Fact]
    public void Write_ToStream_MatchesSerialize()
    {
        using var stream = new MemoryStream();
        var metadata = new Dictionary<string, string> { ["k"] = "v" };

        Safetensors.Write(stream, [Weight, Bias], metadata);

        Assert.Equal(Safetensors.Serialize([Weight, Bias], metadata), stream.ToArray());
    }

    [Fact]
    public void Write_InvalidTensors_LeavesStreamEmpty()
    {
        using var stream = new MemoryStream();

        Assert.Throws<ArgumentException>(() => Safetensors.Write(stream, [Bias, Bias]));
        Assert.Equal(0, stream.Length);
    }

    // ---- round trip ----
    [Fact]
    public void Parse_SerializedFile_RoundTrips()
    {
        var scalar = new NamedTensor("step", TensorDType.I64, [], BitConverter.GetBytes(12L));
        var doubles = new NamedTensor("d", TensorDType.F64, [3], MemoryMarshal.AsBytes(new[] { 1.5, -2.25, 1e300 }.AsSpan()).ToArray());
        var ints = new NamedTensor("i", TensorDType.I32, [2, 1], MemoryMarshal.AsBytes(new[] { -7, 9 }.AsSpan()).ToArray());
        var empty = new NamedTensor("empty", TensorDType.F32, [0], ReadOnlyMemory<byte>.Empty);
        NamedTensor[] tensors = [Weight, Bias, scalar, doubles, ints, empty];
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "caf\u00e9 \"quoted\" \n" };

        var parsed = Safetensors.Parse(Safetensors.Serialize(tensors, metadata));

        Assert.Equal(metadata, parsed.Metadata);
        Assert.Equal(tensors.Length, parsed.Tensors.Count);
        foreach (var expected in tensors)
        {
            var actual = Assert.Single(parsed.Tensors, t => t.Name == expected.Name);
            Assert.Equal(expected.DType, actual.DType);
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.Equal(expected.Data.ToArray(), actual.Data.ToArray());
        }
    }

    [Fact]
    public void Parse_NoMetadata_ReturnsEmptyMetadata()
    {
        Assert.Empty(Safetensors.Parse(Safetensors.Serialize([Bias])).Metadata);
    }

    [Fact]
    public void Parse_NullMetadata_ReturnsEmptyMetadata()
    {
        var file = RawFile("{\"__metadata__\":null,\"t\":" + TensorEntry("F32", "[1]", "[0,4]") + "}", new byte[4]);

        Assert.Empty(Safetensors.Parse(file).Metadata);
    }

    [Fact]
    public void Parse_File_SlicesDataWithoutCopying()
    {
        var file = Safetensors.Serialize([Weight, Bias]);

        var parsed = Safetensors.Parse(file);

        var weight = parsed.Tensors.Single(t => t.Name == "weight");
        Assert.True(MemoryMarshal.TryGetArray(weight.Data, out var segment));
        Assert.Same(file, segment.Array);
        Assert.Equal(128 + 8, segment.Offset);
        Assert.Equal(16, segment.Count);
    }

    [Fact]
    public void Parse_TensorsListedOutOfOffsetOrder_ReturnsThemInOffsetOrder()
    {
        // "a" is listed first but its data comes second; whitespace in the header is accepted on read.
        var header = "{\"a\": " + TensorEntry("F32", "[1]", "[4,8]") + ", \"z\": " + TensorEntry("F32", "[1]", "[0,4]") + "}   ";
        var file = RawFile(header, [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]);

        var parsed = Safetensors.Parse(file);

        Assert.Equal(["z", "a"], parsed.Tensors.Select(t => t.Name));
        Assert.Equal(2f, BitConverter.ToSingle(parsed.Tensors[1].Data.Span));
    }

    // ---- rejections on read ----
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Parse_ShorterThan8Bytes_Throws(int length)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(new byte[length]));

        Assert.Contains("8-byte", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HeaderLengthOverLimit_Throws()
    {
        var file = RawFile("{}", declaredLength: Safetensors.MaxHeaderBytes + 1);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));

        Assert.Contains("limit", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HeaderLengthPastEndOfFile_Throws()
    {
        var file = RawFile("{}", declaredLength: 3);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));

        Assert.Contains("only 2 bytes follow", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HugeHeaderLength_ThrowsWithoutOverflow()
    {
        Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile("{}", declaredLength: ulong.MaxValue)));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" {}")]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    public void Parse_HeaderNotStartingWithBrace_Throws(string header)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header)));

        Assert.Contains("'{'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("{\"t\":}")]
    [InlineData("{} {}")]
    [InlineData("{\"t\":{\"dtype\":\"F32\",},}")]
    public void Parse_HeaderNotValidJson_Throws(string header)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header)));

        Assert.Contains("not valid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HeaderNotUtf8_Throws()
    {
        byte[] header = [.. "{\""u8, 0xFF, .. "\":1}"u8];
        var file = new byte[8 + header.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);

        Assert.Contains("UTF-8", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("BF16")]
    [InlineData("F16")]
    [InlineData("f32")]
    [InlineData("U8")]
    public void Parse_UnknownDType_ThrowsNamingTensorAndDType(string dtype)
    {
        var file = RawFile("{\"w\":" + TensorEntry(dtype, "[1]", "[0,4]") + "}", new byte[4]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));

        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(dtype, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NegativeDimension_Throws()
    {
        var file = RawFile("{\"w\":" + TensorEntry("F32", "[-1,4]", "[0,16]") + "}", new byte[16]);

        Assert.Contains("negative", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[1.5]")]
    [InlineData("[\"2\"]")]
    [InlineData("{}")]
    [InlineData("[4294967296,4294967296,4294967296]")]
    public void Parse_InvalidShape_Throws(string shape)
    {
        var file = RawFile("{\"w\":" + TensorEntry("F32", shape, "[0,8]") + "}", new byte[8]);

        Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));
    }

    [Theory]
    [InlineData("[0]")]
    [InlineData("[0,8,8]")]
    [InlineData("[]")]
    [InlineData("[\"0\",\"8\"]")]
    [InlineData("[-8,0]")]
    [InlineData("[0.0,8.0]")]
    [InlineData("{\"begin\":0,\"end\":8}")]
    public void Parse_DataOffsetsNotBeginEndPair_Throws(string offsets)
    {
        var file = RawFile("{\"w\":" + TensorEntry("F32", "[2]", offsets) + "}", new byte[8]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));

        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("data_offsets", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_BeginAfterEnd_Throws()
    {
        var file = RawFile("{\"w\":" + TensorEntry("F32", "[0]", "[8,4]") + "}", new byte[8]);

        Assert.Contains("[8, 4]", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SpanDisagreesWithShape_Throws()
    {
        // Shape [3] of F32 needs 12 bytes; the offsets give 8.
        var file = RawFile("{\"w\":" + TensorEntry("F32", "[3]", "[0,8]") + "}", new byte[8]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));

        Assert.Contains("need 12", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_OffsetsPastBuffer_Throws()
    {
        var file = RawFile("{\"w\":" + TensorEntry("F32", "[4]", "[0,16]") + "}", new byte[8]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file));

        Assert.Contains("past the end of the 8-byte buffer", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_GapBetweenTensors_Throws()
    {
        var header = "{\"a\":" + TensorEntry("F32", "[1]", "[0,4]") + ",\"b\":" + TensorEntry("F32", "[1]", "[8,12]") + "}";

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header, new byte[12])));

        Assert.Contains("'b'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("gap", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_GapBeforeFirstTensor_Throws()
    {
        var file = RawFile("{\"a\":" + TensorEntry("F32", "[1]", "[4,8]") + "}", new byte[8]);

        Assert.Contains("gap", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(file)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_OverlappingTensors_Throws()
    {
        var header = "{\"a\":" + TensorEntry("F32", "[2]", "[0,8]") + ",\"b\":" + TensorEntry("F32", "[2]", "[4,12]") + "}";

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header, new byte[12])));

        Assert.Contains("overlapping", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_EmptyTensorInsideAnother_Throws()
    {
        var header = "{\"a\":" + TensorEntry("F32", "[2]", "[0,8]") + ",\"e\":" + TensorEntry("F32", "[0]", "[4,4]") + "}";

        Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header, new byte[8])));
    }

    [Fact]
    public void Parse_TwoTensorsSharingBytes_Throws()
    {
        var header = "{\"a\":" + TensorEntry("F32", "[1]", "[0,4]") + ",\"b\":" + TensorEntry("F32", "[1]", "[0,4]") + "}";

        Assert.Contains("overlapping", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header, new byte[4]))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_BytesAfterLastTensor_Throws()
    {
        // A buffer not fully covered could smuggle a second file (a polyglot).
        var file = Safetensors.Serialize([Bias]);
        byte[] longer = [.. file, 0xDE, 0xAD];

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(longer));

        Assert.Contains("2 bytes after offset 8", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseLayout_HeaderAlone_GivesParsesOffsetsAndMetadata_AndWhereTheBufferStarts()
    {
        var file = Safetensors.Serialize([Weight, Bias], new Dictionary<string, string> { ["round"] = "7" });
        var start = Safetensors.DataStart(file, file.Length);

        var layout = Safetensors.ParseLayout(file.AsMemory(0, (int)start), file.Length);

        var parsed = Safetensors.Parse(file);
        Assert.Equal(start, file.Length - parsed.Tensors.Sum(t => t.Data.Length));
        Assert.Equal(parsed.Tensors.Select(t => (t.Name, t.DType, t.Shape[0])), layout.Tensors.Select(t => (t.Name, t.DType, t.Shape[0])));
        Assert.Equal([(0L, 8L), (8L, 24L)], layout.Tensors.Select(t => (t.Begin, t.End)));
        Assert.Equal("7", layout.Metadata["round"]);
    }

    [Fact]
    public void ParseLayout_ExpectedSizeOtherThanTheTensorsCover_ThrowsAsParseDoes()
    {
        var file = Safetensors.Serialize([Bias]);
        var start = (int)Safetensors.DataStart(file, file.Length);

        Assert.Contains("2 bytes after offset 8", Assert.Throws<SafetensorsFormatException>(() => Safetensors.ParseLayout(file.AsMemory(0, start), file.Length + 2)).Message, StringComparison.Ordinal);
        Assert.Throws<SafetensorsFormatException>(() => Safetensors.ParseLayout(file.AsMemory(0, start), file.Length - 4));
        Assert.Throws<SafetensorsFormatException>(() => Safetensors.DataStart(file, start - 1));
    }

    [Fact]
    public void SameTensors_MetadataOfAnotherLength_Same_AnotherShapeOrTensor_NotSame()
    {
        SafetensorsLayout Layout(NamedTensor[] tensors, string round)
        {
            var file = Safetensors.Serialize(tensors, new Dictionary<string, string> { ["round"] = round });
            return Safetensors.ParseLayout(file.AsMemory(0, (int)Safetensors.DataStart(file, file.Length)), file.Length);
        }

        var layout = Layout([Weight, Bias], "7");
        var longer = Layout([Weight, Bias], new string('7', 40));

        Assert.NotEqual(layout.DataStart, longer.DataStart);
        Assert.True(layout.SameTensors(longer));
        Assert.False(layout.SameTensors(Layout([F32("weight", [4], 1f, 2f, 3f, 4f), Bias], "7")));
        Assert.False(layout.SameTensors(Layout([Weight, F32("bias2", [2], 0.5f, -1f)], "7")));
        Assert.False(layout.SameTensors(Layout([Weight], "7")));
    }

    [Fact]
    public void Parse_DuplicateTensorName_Throws()
    {
        var header = "{\"a\":" + TensorEntry("F32", "[1]", "[0,4]") + ",\"a\":" + TensorEntry("F32", "[1]", "[4,8]") + "}";

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header, new byte[8])));

        Assert.Contains("'a' appears more than once", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DuplicateMetadata_Throws()
    {
        Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile("{\"__metadata__\":{},\"__metadata__\":{}}")));
    }

    [Theory]
    [InlineData("{\"__metadata__\":{\"k\":1}}")]
    [InlineData("{\"__metadata__\":{\"k\":{\"nested\":\"x\"}}}")]
    [InlineData("{\"__metadata__\":[\"x\"]}")]
    [InlineData("{\"__metadata__\":\"x\"}")]
    public void Parse_MetadataNotStringMap_Throws(string header)
    {
        Assert.Contains("__metadata__", Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header))).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[1]}")]
    [InlineData("{\"shape\":[1],\"data_offsets\":[0,4]}")]
    [InlineData("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}")]
    [InlineData("[1]")]
    [InlineData("null")]
    public void Parse_MalformedTensorEntry_Throws(string entry)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile("{\"w\":" + entry + "}", new byte[4])));

        Assert.Contains("'w'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")]
    [InlineData("{\"__metadata__\":{\"k\":\"\\udc00\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}")]
    public void Parse_EscapedUnpairedSurrogate_ThrowsFormatException(string header)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Parse(RawFile(header, new byte[4])));

        Assert.Contains("Unicode", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RandomlyCorruptedFiles_ThrowOnlyFormatException()
    {
        var valid = Safetensors.Serialize([Weight, Bias], new Dictionary<string, string> { ["format"] = "pt" });
        var random = new Random(7);
        for (var i = 0; i < 5000; i++)
        {
            var file = (byte[])valid.Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                // Mostly the header and length, where structure lives.
                file[random.Next(Math.Min(file.Length, 140))] = (byte)random.Next(256);
            }

            var length = random.Next(10) == 0 ? random.Next(file.Length) : file.Length;
            try
            {
                var parsed = Safetensors.Parse(file.AsMemory(0, length));
                Assert.All(parsed.Tensors, t => Assert.Equal(t.ElementCount * t.DType.ElementSize(), t.Data.Length));
            }
            catch (SafetensorsFormatException)
            {
                // Expected for most corruptions.
            }
        }
    }

    [Fact]
    public void Parse_EmptyHeaderObject_ReturnsNoTensors()
    {
        var parsed = Safetensors.Parse(RawFile("{}      "));

        Assert.Empty(parsed.Tensors);
        Assert.Empty(parsed.Metadata);
    }

    // ---- rejections on write ----
    [Fact]
    public void Serialize_DuplicateNames_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => Safetensors.Serialize([Bias, F32("bias", [1], 1f)]));

        Assert.Contains("'bias'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Serialize_DataLengthMismatch_Throws()
    {
        var wrong = new NamedTensor("w", TensorDType.F32, [2, 2], new byte[12]);

        var ex = Assert.Throws<ArgumentException>(() => Safetensors.Serialize([wrong]));

        Assert.Contains("need 16", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Serialize_NegativeDimension_Throws()
    {
        Assert.Throws<ArgumentException>(() => Safetensors.Serialize([new NamedTensor("w", TensorDType.F32, [-1], ReadOnlyMemory<byte>.Empty)]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("__metadata__")]
    public void Serialize_ReservedOrEmptyName_Throws(string name)
    {
        Assert.Throws<ArgumentException>(() => Safetensors.Serialize([F32(name, [1], 1f)]));
    }

    [Fact]
    public void Serialize_NameWithUnpairedSurrogate_Throws()
    {
        // The JSON writer would silently turn it into U+FFFD, so the name would not round-trip.
        Assert.Throws<ArgumentException>(() => Safetensors.Serialize([F32("w\ud800", [1], 1f)]));
    }

    [Fact]
    public void Serialize_MetadataWithUnpairedSurrogate_Throws()
    {
        Assert.Throws<ArgumentException>(() => Safetensors.Serialize([Bias], new Dictionary<string, string> { ["k"] = "\udc00" }));
    }

    [Fact]
    public void Serialize_NameWithSurrogatePair_RoundTrips()
    {
        var name = "w\U0001F600";

        Assert.Equal(name, Assert.Single(Safetensors.Parse(Safetensors.Serialize([F32(name, [1], 1f)])).Tensors).Name);
    }

    [Fact]
    public void Serialize_UndefinedDType_Throws()
    {
        Assert.Throws<ArgumentException>(() => Safetensors.Serialize([new NamedTensor("w", (TensorDType)99, [1], new byte[4])]));
    }
}
