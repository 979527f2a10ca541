using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.Ml.Tests;

public sealed class NpyTests
{
    // A .npy file as NumPy's format.py writes it, built here by hand: magic, version, header length, padded dict, data.
    internal static byte[] NpyFile(string dict, byte[] data, int major = 1)
    {
        var prefix = major == 1 ? 10 : 12;
        var header = dict + new string(' ', (64 - ((prefix + dict.Length + 1) % 64)) % 64) + "\n";
        var headerBytes = major == 3 ? Encoding.UTF8.GetBytes(header) : Encoding.ASCII.GetBytes(header);
        var file = new byte[prefix + headerBytes.Length + data.Length];
        file[0] = 0x93;
        Encoding.ASCII.GetBytes("NUMPY").CopyTo(file, 1);
        (file[6], file[7]) = ((byte)major, 0);
        if (major == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(8), (ushort)headerBytes.Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), (uint)headerBytes.Length);
        }

        headerBytes.CopyTo(file, prefix);
        data.CopyTo(file, prefix + headerBytes.Length);
        return file;
    }

    internal static byte[] NpyFile(string descr, string shape, byte[] data, string fortran = "False") =>
        NpyFile($"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}", data);

    internal static byte[] Bytes<T>(params T[] values)
        where T : struct => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    // A zip as numpy.savez writes it: Python's zipfile with force_zip64=True puts a zip64 extra field (sizes 0xFFFFFFFF in
    // the local header, the real ones in the extra) in each local header; the central directory has the plain sizes.
    internal static byte[] SavezLayout(params (string Name, byte[] Data)[] entries)
    {
        using var zip = new MemoryStream();
        var writer = new BinaryWriter(zip);
        var central = new List<(string Name, uint Crc, int Size, int Offset)>();
        foreach (var (name, data) in entries)
        {
            var offset = (int)zip.Position;
            var crc = TestPng.Crc32(data);
            writer.Write(0x04034b50u);
            writer.Write((ushort)45);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0x21);
            writer.Write(crc);
            writer.Write(0xFFFFFFFFu);
            writer.Write(0xFFFFFFFFu);
            writer.Write((ushort)name.Length);
            writer.Write((ushort)20);
            writer.Write(Encoding.ASCII.GetBytes(name));
            writer.Write((ushort)1);
            writer.Write((ushort)16);
            writer.Write((ulong)data.Length);
            writer.Write((ulong)data.Length);
            writer.Write(data);
            central.Add((name, crc, data.Length, offset));
        }

        var start = (int)zip.Position;
        foreach (var (name, crc, size, offset) in central)
        {
            writer.Write(0x02014b50u);
            writer.Write((ushort)45);
            writer.Write((ushort)45);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0x21);
            writer.Write(crc);
            writer.Write((uint)size);
            writer.Write((uint)size);
            writer.Write((ushort)name.Length);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write((ushort)0);
            writer.Write(0u);
            writer.Write((uint)offset);
            writer.Write(Encoding.ASCII.GetBytes(name));
        }

        var end = (int)zip.Position;
        writer.Write(0x06054b50u);
        writer.Write((ushort)0);
        writer.Write((ushort)0);
        writer.Write((ushort)central.Count);
        writer.Write((ushort)central.Count);
        writer.Write((uint)(end - start));
        writer.Write((uint)start);
        writer.Write((ushort)0);
        writer.Flush();
        return zip.ToArray();
    }

    internal static byte[] Zip(bool deflate, params (string Name, byte[] Data)[] entries)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                using var entry = zip.CreateEntry(name, deflate ? CompressionLevel.SmallestSize : CompressionLevel.NoCompression).Open();
                entry.Write(data);
            }
        }

        return buffer.ToArray();
    }

    private static readonly byte[] Labels2 = NpyFile("<i8", "(2,)", Bytes(1L, 0L));

    // Every accepted dtype, as x of shape [2, 2]: the stored values and what the reader makes of them.
    public static TheoryData<string, byte[], float[]> EveryDtype() => new()
    {
        { "|b1", [0, 1, 1, 0], [0f, 1f, 1f, 0f] },
        { "|u1", [0, 255, 51, 128], [0f, 1f, 51 / 255f, 128 / 255f] },
        { "|i1", Bytes<sbyte>(-128, 127, 0, -1), [-128f, 127f, 0f, -1f] },
        { "<u2", Bytes<ushort>(0, 65535, 7, 300), [0f, 65535f, 7f, 300f] },
        { "<i2", Bytes<short>(-32768, 32767, -5, 6), [-32768f, 32767f, -5f, 6f] },
        { "<u4", Bytes(0u, 4_000_000_000u, 9u, 1u), [0f, 4_000_000_000f, 9f, 1f] },
        { "<i4", Bytes(int.MinValue, 5, -6, 7), [int.MinValue, 5f, -6f, 7f] },
        { "<u8", Bytes(0UL, 1UL << 40, 3UL, 4UL), [0f, 1UL << 40, 3f, 4f] },
        { "<i8", Bytes(-(1L << 40), 3L, -4L, 5L), [-(1L << 40), 3f, -4f, 5f] },
        { "<f2", Bytes((Half)0.5f, (Half)(-2f), Half.MaxValue, (Half)0.333f), [0.5f, -2f, 65504f, (float)(Half)0.333f] },
        { "<f4", Bytes(1.5f, -0f, 3e-8f, 1e30f), [1.5f, -0f, 3e-8f, 1e30f] },
        { "<f8", Bytes(0.1, -2.5, 1e-300, 1e30), [(float)0.1, -2.5f, 0f, 1e30f] },
    };

    [Theory]
    [MemberData(nameof(EveryDtype))]
    public void ReadNpz_EveryDtypeAsFeatures_ConvertsToFloat32AndScalesOnlyUint8(string descr, byte[] data, float[] expected)
    {
        var npz = Zip(false, ("x.npy", NpyFile(descr, "(2, 2)", data)), ("y.npy", Labels2));

        var split = TensorDataReader.Read(npz, DataFormats.Npz, classes: 2, expectedInputs: 2, "silo-1");

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), split.Data.Features.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal([1L, 0L], split.Data.Labels);
        Assert.Equal(Npy.Parse(NpyFile(descr, "(2, 2)", data), "x").Type, split.FeatureType);
    }

    [Theory]
    [InlineData("|u1")]
    [InlineData("<i4")]
    [InlineData("<u8")]
    [InlineData("<f8")]
    public void ReadNpz_IntegralLabelsOfAnyNumericDtype_AreClassIds(string descr)
    {
        var labels = descr switch
        {
            "|u1" => new byte[] { 2, 0 },
            "<i4" => Bytes(2, 0),
            "<u8" => Bytes(2UL, 0UL),
            _ => Bytes(2.0, 0.0),
        };
        var npz = Zip(true, ("x.npy", NpyFile("<f4", "(2, 1)", Bytes(1f, 2f))), ("y.npy", NpyFile(descr, "(2,)", labels)));

        Assert.Equal([2L, 0L], TensorDataReader.Read(npz, DataFormats.Npz, 3, 1, null).Data.Labels);
    }

    [Fact]
    public void ReadNpz_FractionalLabel_IsRefusedNamingTheExampleNotTheValue()
    {
        var npz = Zip(false, ("x.npy", NpyFile("<f4", "(2, 1)", Bytes(1f, 2f))), ("y.npy", NpyFile("<f4", "(2,)", Bytes(0f, 1.5f))));

        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(npz, DataFormats.Npz, 3, 1, "silo-7"));

        Assert.Equal("array 'y' example 2", ex.Field);
        Assert.Contains("not an integer class id", ex.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain("1.5", ex.Message, StringComparison.Ordinal);
        Assert.Contains("silo-7", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpz_NumpySavezLayoutWithZip64LocalHeaders_Reads()
    {
        var npz = SavezLayout(("x.npy", NpyFile("<f4", "(2, 3)", Bytes(1f, 2f, 3f, 4f, 5f, 6f))), ("y.npy", Labels2));

        var split = TensorDataReader.Read(npz, DataFormats.Npz, 2, 3, null);

        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], split.Data.Features);
        Assert.Equal(["p0", "p1", "p2"], split.Data.FeatureNames);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Parse_Version2And3Headers_ReadAsVersion1(int major)
    {
        var dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
        var data = Bytes(7, -8, 9);

        var array = Npy.Parse(NpyFile(dict, data, major), "a");

        Assert.Equal(ArrayElementType.Int32, array.Type);
        Assert.Equal([3L], array.Shape);
        Assert.Equal(data, array.Data.ToArray());
    }

    [Theory]
    [InlineData("(2L, 3L)", new long[] { 2, 3 })]
    [InlineData("()", new long[0])]
    [InlineData("(4,)", new long[] { 4 })]
    [InlineData("(1,2,1)", new long[] { 1, 2, 1 })]
    public void Parse_ShapeTuples_AreRead(string shape, long[] expected)
    {
        var count = (int)expected.Aggregate(1L, (p, d) => p * d);
        Assert.Equal(expected, Npy.Parse(NpyFile("<f4", shape, new byte[4 * count]), "a").Shape);
    }

    [Theory]
    [InlineData("{'shape': (2,), 'fortran_order': False, 'descr': '<f8'}")]
    [InlineData("{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,)}")]
    public void Parse_KeysInAnyOrderOrDoubleQuoted_AreRead(string dict) =>
        Assert.Equal(ArrayElementType.Float64, Npy.Parse(NpyFile(dict, new byte[16]), "a").Type);

    [Theory]
    [InlineData(">f4", "big-endian")]
    [InlineData(">i8", "big-endian")]
    [InlineData("|O", "object array")]
    [InlineData("<c8", "unsupported dtype '<c8'")]
    [InlineData("<U3", "unsupported dtype '<U3'")]
    [InlineData("|f4", "has no byte order")]
    public void Parse_RefusedDtype_SaysWhy(string descr, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Parse(NpyFile(descr, "(1,)", new byte[4]), "x"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_FortranOrder_IsRefused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Parse(NpyFile("<f4", "(2, 2)", new byte[16], fortran: "True"), "x"));
        Assert.Contains("Fortran order", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_StructuredDtype_IsRefused()
    {
        var file = NpyFile("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", new byte[8]);
        Assert.Contains("structured dtype", Assert.Throws<InvalidDataException>(() => Npy.Parse(file, "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_BadMagic_IsRefused()
    {
        var file = NpyFile("<f4", "(1,)", new byte[4]);
        file[1] = (byte)'n';
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => Npy.Parse(file, "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownVersion_IsRefused()
    {
        var file = NpyFile("<f4", "(1,)", new byte[4]);
        file[6] = 4;
        Assert.Contains("version 4.0", Assert.Throws<InvalidDataException>(() => Npy.Parse(file, "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TruncatedData_IsRefusedWithBothLengths()
    {
        var file = NpyFile("<f4", "(3, 2)", new byte[24]);
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Parse(file.AsMemory(0, file.Length - 1), "x"));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.Contains("24 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TruncatedHeader_IsRefused()
    {
        var file = NpyFile("<f4", "(1,)", new byte[4]);
        Assert.Contains("ends inside its header", Assert.Throws<InvalidDataException>(() => Npy.Parse(file.AsMemory(0, 40), "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_BytesAfterTheData_AreRefused()
    {
        var file = NpyFile("<f4", "(1,)", new byte[5]);
        Assert.Contains("1 bytes after the data", Assert.Throws<InvalidDataException>(() => Npy.Parse(file, "x")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'shape': (1,), }", "no 'fortran_order'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }", "unexpected key 'extra'")]
    [InlineData("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "appears twice")]
    [InlineData("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "not True or False")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "shape is not a tuple")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", "text after the dict")]
    public void Parse_MalformedHeader_IsRefused(string dict, string expected)
    {
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Parse(NpyFile(dict, new byte[4]), "x"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HeaderWithoutNewline_IsRefused()
    {
        var file = NpyFile("<f4", "(1,)", new byte[4]);
        var newline = Array.LastIndexOf(file, (byte)'\n');
        file[newline] = (byte)' ';
        Assert.Contains("newline", Assert.Throws<InvalidDataException>(() => Npy.Parse(file, "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Serialize_WhatNumpySaveWrites_ParsesBackWithA64ByteAlignedHeader()
    {
        var data = Bytes(1f, 2f, 3f, 4f, 5f, 6f);

        var file = Npy.Serialize("<f4", [3, 2], data);
        var array = Npy.Parse(file, "x");

        Assert.Equal(0, (file.Length - data.Length) % 64);
        Assert.Contains("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", Encoding.ASCII.GetString(file), StringComparison.Ordinal);
        Assert.Equal(ArrayElementType.Float32, array.Type);
        Assert.Equal([3L, 2L], array.Shape);
        Assert.Equal(data, array.Data.ToArray());
    }

    [Fact]
    public void ReadNpz_NotAZip_IsRefused()
    {
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read("x,label\n1,0\n"u8.ToArray(), DataFormats.Npz, 2, 1, "silo-1"));
        Assert.Contains("not a .npz archive", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpz_WithoutY_IsRefusedNamingTheArray()
    {
        var npz = Zip(false, ("x.npy", NpyFile("<f4", "(1, 1)", new byte[4])), ("labels.npy", NpyFile("<i8", "(1,)", new byte[8])));
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(npz, DataFormats.Npz, 2, 1, "silo-1"));
        Assert.Contains("has no array 'y'", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpz_BigEndianX_IsRefusedNamingTheArray()
    {
        var npz = Zip(false, ("x.npy", NpyFile(">f4", "(1, 1)", new byte[4])), ("y.npy", NpyFile("<i8", "(1,)", new byte[8])));
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(npz, DataFormats.Npz, 2, 1, "silo-1"));
        Assert.Contains("array 'x' (x.npy)", ex.Problem, StringComparison.Ordinal);
        Assert.Contains("big-endian", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpz_TwoEntriesForOneArray_AreRefused()
    {
        var x = NpyFile("<f4", "(1, 1)", new byte[4]);
        var npz = Zip(false, ("x.npy", x), ("x.npy", x), ("y.npy", NpyFile("<i8", "(1,)", new byte[8])));
        Assert.Contains("two entries x.npy", Assert.Throws<DataValidationException>(() => TensorDataReader.Read(npz, DataFormats.Npz, 2, 1, null)).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpz_ArrayLargerThanTheBound_IsRefusedBeforeItIsInflated()
    {
        var npz = Zip(true, ("x.npy", NpyFile("<f4", "(256, 1)", new byte[1024])));
        var ex = Assert.Throws<InvalidDataException>(() => Npy.ReadNpz(npz, ["x"], maxArrayBytes: 1000));
        Assert.Contains("more than 1000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpz_TruncatedArchive_IsRefused()
    {
        var npz = Zip(false, ("x.npy", NpyFile("<f4", "(1, 1)", new byte[4])), ("y.npy", NpyFile("<i8", "(1,)", new byte[8])));
        Assert.Throws<DataValidationException>(() => TensorDataReader.Read(npz[..^30], DataFormats.Npz, 2, 1, null));
    }
}
