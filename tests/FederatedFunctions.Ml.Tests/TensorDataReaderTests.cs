using System.Text;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using static FederatedFunctions.Ml.Tests.NpyTests;

namespace FederatedFunctions.Ml.Tests;

public sealed class TensorDataReaderTests
{
    private static NamedTensor T(string name, TensorDType dtype, long[] shape, byte[] data) => new(name, dtype, shape, data);

    private static byte[] File(params NamedTensor[] tensors) => Safetensors.Serialize(tensors);

    private static readonly NamedTensor Y3 = T("y", TensorDType.I64, [3], Bytes(2L, 0L, 1L));

    [Fact]
    public void Read_SafetensorsImages_FlattensEachExampleInCOrderWithGeneratedNames()
    {
        // Three 1×2×3 images: example e, row r, column c holds 100e + 10r + c.
        var values = Enumerable.Range(0, 3).SelectMany(e => Enumerable.Range(0, 2).SelectMany(r => Enumerable.Range(0, 3).Select(c => (float)((100 * e) + (10 * r) + c)))).ToArray();
        var file = File(T("x", TensorDType.F32, [3, 1, 2, 3], Bytes(values)), Y3);

        var split = TensorDataReader.Read(file, DataFormats.Safetensors, classes: 3, expectedInputs: 6, "silo-1");

        Assert.Equal((3, 6), (split.Data.Rows, split.Data.Columns));
        Assert.Equal([0f, 1f, 2f, 10f, 11f, 12f], split.Data.Features[..6]);
        Assert.Equal([200f, 201f, 202f, 210f, 211f, 212f], split.Data.Features[12..]);
        Assert.Equal(["p0", "p1", "p2", "p3", "p4", "p5"], split.Data.FeatureNames);
        Assert.Equal([2L, 0L, 1L], split.Data.Labels);
        Assert.Equal([1L, 2L, 3L], split.ExampleShape);
        split.Data.EnsureConsistent();
    }

    [Fact]
    public void Read_SafetensorsIntegerAndDoubleFeatures_AreKeptAsStored()
    {
        foreach (var (dtype, data) in new[] { (TensorDType.I32, Bytes(255, -3, 7)), (TensorDType.I64, Bytes(255L, -3L, 7L)), (TensorDType.F64, Bytes(255.0, -3.0, 7.0)) })
        {
            var split = TensorDataReader.Read(File(T("x", dtype, [3], data), T("y", TensorDType.I32, [3], Bytes(1, 1, 0))), DataFormats.Safetensors, 2, 1, null);
            Assert.Equal([255f, -3f, 7f], split.Data.Features);
            Assert.Equal([1L, 1L, 0L], split.Data.Labels);
        }
    }

    [Fact]
    public void Read_OtherTensorsInTheFile_AreIgnored()
    {
        var file = File(T("x", TensorDType.F32, [3, 1], Bytes(1f, 2f, 3f)), Y3, T("mean", TensorDType.F32, [1], Bytes(2f)));
        Assert.Equal(3, TensorDataReader.Read(file, DataFormats.Safetensors, 3, 1, null).Data.Rows);
    }

    [Fact]
    public void Read_ExampleSizeNotTheModelsInputs_IsRefusedNamingBoth()
    {
        var file = File(T("x", TensorDType.F32, [3, 1, 2, 3], new byte[72]), Y3);

        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, 64, "silo-4"));

        Assert.Equal("silo-4", ex.SiloId);
        Assert.Equal("tensor 'x'", ex.Field);
        Assert.Equal("each example has 6 values (shape [1, 2, 3]), but the model expects 64 inputs", ex.Problem);
    }

    [Fact]
    public void Read_Uint8Safetensors_IsRefusedWithTheWayOut()
    {
        var header = Encoding.UTF8.GetBytes("{\"x\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[0,2]},\"y\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[2,18]}}");
        var file = BitConverter.GetBytes((ulong)header.Length).Concat(header).Concat(new byte[18]).ToArray();

        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 2, 1, "silo-1"));

        Assert.Contains("'U8'", ex.Problem, StringComparison.Ordinal);
        Assert.Contains("store them as F32", ex.Problem, StringComparison.Ordinal);
        Assert.Contains(".npz", ex.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("x", "has no tensor 'x'")]
    [InlineData("y", "has no tensor 'y'")]
    public void Read_MissingTensor_IsRefused(string missing, string expected)
    {
        var file = File([.. new[] { T("x", TensorDType.F32, [3, 1], new byte[12]), Y3 }.Where(t => t.Name != missing)]);
        Assert.Contains(expected, Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, 1, null)).Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new long[] { 3, 1 }, "has shape [3, 1]; it must be [3]")]
    [InlineData(new long[] { 2 }, "has shape [2]; it must be [3]")]
    public void Read_LabelsNotOnePerExample_AreRefused(long[] shape, string expected)
    {
        var count = (int)shape.Aggregate(1L, (p, d) => p * d);
        var file = File(T("x", TensorDType.F32, [3, 1], new byte[12]), T("y", TensorDType.I64, shape, new byte[8 * count]));
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, 1, null));
        Assert.Equal("tensor 'y'", ex.Field);
        Assert.Contains(expected, ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_LabelOutsideTheClasses_IsRefusedNamingTheExampleNotTheValue()
    {
        var file = File(T("x", TensorDType.F32, [3, 1], new byte[12]), T("y", TensorDType.I64, [3], Bytes(0L, 7L, 1L)));

        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, 1, "silo-2"));

        Assert.Equal("tensor 'y' example 2", ex.Field);
        Assert.Equal("a class id outside [0, 3)", ex.Problem);
    }

    [Theory]
    [InlineData(float.NaN, "a value that is not a finite number")]
    [InlineData(float.PositiveInfinity, "a value that is not a finite number")]
    public void Read_NonFiniteFeature_IsRefusedNamingTheExample(float bad, string expected)
    {
        var file = File(T("x", TensorDType.F32, [3, 2], Bytes(0f, 1f, 2f, bad, 4f, 5f)), Y3);
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, 2, null));
        Assert.Equal(("tensor 'x' example 2", expected), (ex.Field, ex.Problem));
    }

    [Fact]
    public void Read_DoubleBeyondFloat32_IsRefused()
    {
        var file = File(T("x", TensorDType.F64, [3], Bytes(0.0, 1e300, 2.0)), Y3);
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, 1, null));
        Assert.Equal(("tensor 'x' example 2", "a value outside the float32 range"), (ex.Field, ex.Problem));
    }

    [Theory]
    [InlineData(new long[0], "is a scalar")]
    [InlineData(new long[] { 0, 4 }, "holds no examples")]
    [InlineData(new long[] { 3, 0 }, "each example has no values")]
    public void Read_XWithoutExamplesOrValues_IsRefused(long[] shape, string expected)
    {
        var count = (int)shape.Aggregate(1L, (p, d) => p * d);
        var file = File(T("x", TensorDType.F32, shape, new byte[4 * count]), Y3);
        Assert.Contains(expected, Assert.Throws<DataValidationException>(() => TensorDataReader.Read(file, DataFormats.Safetensors, 3, null, null)).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NotSafetensors_IsRefused()
    {
        var ex = Assert.Throws<DataValidationException>(() => TensorDataReader.Read("x0,label\n1,0\n"u8.ToArray(), DataFormats.Safetensors, 2, 1, "silo-1"));
        Assert.StartsWith("not a valid safetensors file", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_StreamLongerThanTheBound_IsRefusedWhileReading()
    {
        var ex = await Assert.ThrowsAsync<DataValidationException>(() => TensorDataReader.ReadBoundedAsync(new NonSeekable(new byte[11]), 10, "silo-1", default));
        Assert.Contains("more than 10 bytes", ex.Problem, StringComparison.Ordinal);
        Assert.Equal(10, (await TensorDataReader.ReadBoundedAsync(new NonSeekable(new byte[10]), 10, null, default)).Length);
    }

    [Theory]
    [InlineData(DataFormats.Safetensors, false)]
    [InlineData(DataFormats.Npz, false)]
    [InlineData(DataFormats.Npz, true)]
    public async Task ReadAsync_WhatTensorDataWriterWrites_RoundTripsExactly(string format, bool compressed)
    {
        var table = SyntheticData.Generate(new SyntheticOptions(1, 3, 12, 50, 10, null, 4))[0].Train;
        var named = table with { FeatureNames = TensorDataReader.FeatureNames(12) };
        var bytes = format == DataFormats.Npz ? TensorDataWriter.ToNpz(table, [3, 2, 2], compressed) : TensorDataWriter.ToSafetensors(table, [3, 2, 2]);

        var read = await TensorDataReader.ReadAsync(new MemoryStream(bytes), new DataSpec { Format = format, Classes = 3 }, 12, "silo-1");

        Assert.True(named.ContentEquals(read));
        Assert.Equal([3L, 2L, 2L], TensorDataReader.Read(bytes, format, 3, 12, null).ExampleShape);
    }

    [Fact]
    public void Writer_ExampleShapeThatDoesNotHoldTheColumns_IsRefused()
    {
        var table = new TabularData(new float[6], [0, 1], 2, 3, ["a", "b", "c"]);
        Assert.Throws<ArgumentException>(() => TensorDataWriter.ToNpz(table, [2, 2]));
    }

    private sealed class NonSeekable(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
