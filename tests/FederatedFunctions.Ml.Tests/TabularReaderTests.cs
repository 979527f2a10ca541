using FederatedFunctions.Core.Silos;
using System.Text;
using FederatedFunctions.Core.Specs;
using Parquet;
using Parquet.Schema;

namespace FederatedFunctions.Ml.Tests;

public sealed class TabularReaderTests
{
    private static readonly DataSpec Csv = new() { Format = "csv", Label = "label", Classes = 3 };
    private static readonly DataSpec ParquetSpec = Csv with { Format = "parquet" };

    private static TabularData Sample() => new(
        [0.1f, -2.5f, 3e-8f, 1f, float.MaxValue, -0f, 123456.789f, 1e-40f, 7f],
        [0, 2, 1],
        3,
        3,
        ["x0", "x1", "x2"]);

    private static Task<TabularData> ReadCsvAsync(string text, DataSpec? spec = null, int inputs = 2) =>
        TabularReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(text)), spec ?? Csv, inputs, "silo-2");

    private static async Task<DataValidationException> RejectCsvAsync(string text, DataSpec? spec = null, int inputs = 2) =>
        await Assert.ThrowsAsync<DataValidationException>(() => ReadCsvAsync(text, spec, inputs));

    [Fact]
    public async Task ReadAsync_CsvWrittenByTabularWriter_RoundTripsExactly()
    {
        var data = Sample();
        using var stream = new MemoryStream();
        await TabularWriter.WriteCsvAsync(stream, data, "label");
        stream.Position = 0;

        var read = await TabularReader.ReadAsync(stream, Csv, 3, "silo-1");

        Assert.True(data.ContentEquals(read));
        Assert.StartsWith("x0,x1,x2,label\n", Encoding.UTF8.GetString(stream.ToArray()));
    }

    [Fact]
    public async Task ReadAsync_ParquetWrittenByTabularWriter_RoundTripsExactly()
    {
        var data = Sample();
        using var stream = new MemoryStream();
        await TabularWriter.WriteParquetAsync(stream, data, "label");
        stream.Position = 0;

        var read = await TabularReader.ReadAsync(stream, ParquetSpec, 3, "silo-1");

        Assert.True(data.ContentEquals(read));
    }

    [Fact]
    public async Task ReadAsync_ParquetFromNonSeekableStream_Reads()
    {
        var data = SyntheticData.Generate(new SyntheticOptions(1, 3, 4, 500, 0, null, 1))[0].Train;
        using var stream = new MemoryStream();
        await TabularWriter.WriteParquetAsync(stream, data, "label");

        var read = await TabularReader.ReadAsync(new ForwardOnlyStream(stream.ToArray()), ParquetSpec, 4, null);

        Assert.True(data.ContentEquals(read));
    }

    [Fact]
    public async Task ReadAsync_ParquetIntAndDoubleColumnsWithIntegralFloatLabel_Converts()
    {
        var a = new DataField<int>("a");
        var b = new DataField<double>("b");
        var c = new DataField<long>("c");
        var label = new DataField<double>("label");
        using var stream = new MemoryStream();
        await using (var writer = await ParquetWriter.CreateAsync(new ParquetSchema(a, b, c, label), stream))
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync<int>(a, new[] { 1, -2 });
            await group.WriteAsync<double>(b, new[] { 0.5, 2.25 });
            await group.WriteAsync<long>(c, new[] { 7L, 8L });
            await group.WriteAsync<double>(label, new[] { 2.0, 0.0 });
        }

        stream.Position = 0;
        var read = await TabularReader.ReadAsync(stream, ParquetSpec with { Features = ["c", "a"] }, 2, "silo-1");

        Assert.Equal([7f, 1f, 8f, -2f], read.Features);
        Assert.Equal([2L, 0L], read.Labels);
        Assert.Equal(["c", "a"], read.FeatureNames);
    }

    [Fact]
    public async Task ReadAsync_ParquetNonIntegerLabel_NamesColumnAndRow()
    {
        var x = new DataField<float>("x0");
        var label = new DataField<float>("label");
        using var stream = new MemoryStream();
        await using (var writer = await ParquetWriter.CreateAsync(new ParquetSchema(x, label), stream))
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync<float>(x, new[] { 1f, 2f });
            await group.WriteAsync<float>(label, new[] { 1f, 1.5f });
        }

        stream.Position = 0;
        var ex = await Assert.ThrowsAsync<DataValidationException>(() => TabularReader.ReadAsync(stream, ParquetSpec, 1, "silo-3"));

        Assert.Equal("column 'label' row 2", ex.Field);
        Assert.StartsWith("silo 'silo-3': column 'label' row 2: not an integer", ex.Message);
    }

    [Fact]
    public async Task ReadAsync_ParquetStringColumn_RejectedWithType()
    {
        var x = new DataField<string>("x0");
        var label = new DataField<long>("label");
        using var stream = new MemoryStream();
        await using (var writer = await ParquetWriter.CreateAsync(new ParquetSchema(x, label), stream))
        {
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(x, new[] { "a" });
            await group.WriteAsync<long>(label, new[] { 1L });
        }

        stream.Position = 0;
        var ex = await Assert.ThrowsAsync<DataValidationException>(() => TabularReader.ReadAsync(stream, ParquetSpec, 1, "silo-3"));

        Assert.Equal("column 'x0'", ex.Field);
        Assert.Equal("has type string; expected int32, int64, float or double", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_ParquetGarbage_RejectedAsFile()
    {
        var ex = await Assert.ThrowsAsync<DataValidationException>(() =>
            TabularReader.ReadAsync(new MemoryStream(Encoding.ASCII.GetBytes("x0,label\n1,0\n")), ParquetSpec, 1, "silo-1"));

        Assert.Equal("file", ex.Field);
        Assert.Contains("Parquet", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_CsvQuotedCrLfBomAndFeatureSubset_Parses()
    {
        var text = "\uFEFF\"a\",b,\"la\"\"bel\",c\r\n\"1.5\", 2 ,1,9\r\n\r\n3,4,\"0\",9\r\n";

        var read = await ReadCsvAsync(text, Csv with { Label = "la\"bel", Features = ["b", "a"] });

        Assert.Equal([2f, 1.5f, 4f, 3f], read.Features);
        Assert.Equal([1L, 0L], read.Labels);
        Assert.Equal(2, read.Rows);
    }

    [Fact]
    public async Task ReadAsync_MissingLabelColumn_NamesColumn()
    {
        var ex = await RejectCsvAsync("x0,x1,y\n1,2,0\n");

        Assert.Equal("column 'label'", ex.Field);
        Assert.Equal("silo-2", ex.SiloId);
        Assert.StartsWith("silo 'silo-2': column 'label': ", ex.Message);
    }

    [Fact]
    public async Task ReadAsync_MissingFeatureColumn_NamesColumn()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n1,2,0\n", Csv with { Features = ["x0", "x3"] });

        Assert.Equal("column 'x3'", ex.Field);
        Assert.Contains("missing", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_NonNumericValue_NamesColumnAndRowButNotTheValue()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n1,2,0\n3,abc,1\n");

        Assert.Equal("silo 'silo-2': column 'x1' row 2: not a number", ex.Message);
        Assert.Equal("column 'x1' row 2", ex.Field);
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("1e39")]
    public async Task ReadAsync_NonFiniteValue_Rejected(string value)
    {
        var ex = await RejectCsvAsync($"x0,x1,label\n1,{value},0\n");

        Assert.Equal("column 'x1' row 1", ex.Field);
        Assert.Contains("not a finite number", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_LabelOutOfRange_NamesColumnAndRow()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n1,2,0\n1,2,3\n");

        Assert.Equal("column 'label' row 2", ex.Field);
        Assert.Contains("outside [0, 3)", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_NegativeLabel_Rejected()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n1,2,-1\n");

        Assert.Equal("column 'label' row 1", ex.Field);
    }

    [Fact]
    public async Task ReadAsync_NonIntegerLabel_NamesColumnAndRow()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n1,2,1.5\n");

        Assert.Equal("column 'label' row 1", ex.Field);
        Assert.Contains("not an integer", ex.Problem);
        Assert.DoesNotContain("1.5", ex.Message, StringComparison.Ordinal); // the value is silo data

    }

    [Fact]
    public async Task ReadAsync_IntegralFloatLabel_Accepted()
    {
        var read = await ReadCsvAsync("x0,x1,label\n1,2,2.0\n");

        Assert.Equal([2L], read.Labels);
    }

    [Fact]
    public async Task ReadAsync_EmptyFile_RejectedAsFile()
    {
        var ex = await RejectCsvAsync("");

        Assert.Equal("file", ex.Field);
        Assert.Contains("empty", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_EmptyParquetFile_RejectedAsFile()
    {
        var ex = await Assert.ThrowsAsync<DataValidationException>(() => TabularReader.ReadAsync(new MemoryStream(), ParquetSpec, 1, "silo-1"));

        Assert.Equal("file", ex.Field);
        Assert.Contains("empty", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_HeaderOnly_NoRows()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n");

        Assert.Equal("file", ex.Field);
        Assert.Contains("no rows", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_ParquetWithZeroRows_NoRows()
    {
        using var stream = new MemoryStream();
        await TabularWriter.WriteParquetAsync(stream, new TabularData([], [], 0, 1, ["x0"]), "label");
        stream.Position = 0;

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => TabularReader.ReadAsync(stream, ParquetSpec, 1, "silo-1"));

        Assert.Contains("no rows", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_TwoMiBLine_RejectedWithoutReadingItAll()
    {
        var header = "x0,x1,label\n";
        var huge = new string('1', 2 << 20);
        var ex = await RejectCsvAsync(header + huge + ",2,0\n");

        Assert.Equal("row 1", ex.Field);
        Assert.Contains("longer than 1048576", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_TwoMiBHeader_RejectedAsHeader()
    {
        var ex = await RejectCsvAsync(new string('x', 2 << 20));

        Assert.Equal("header", ex.Field);
    }

    [Fact]
    public async Task ReadAsync_RaggedRow_NamesRowAndCounts()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n1,2,0\n1,2\n");

        Assert.Equal("row 2", ex.Field);
        Assert.Equal("has 2 fields, but the header has 3", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_WrongFeatureCount_RejectedAsHeader()
    {
        var ex = await RejectCsvAsync("x0,x1,x2,label\n1,2,3,0\n", inputs: 2);

        Assert.Equal("header", ex.Field);
        Assert.Contains("3 feature columns, but the model expects 2 inputs", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_UnclosedQuote_Rejected()
    {
        var ex = await RejectCsvAsync("x0,x1,label\n\"1,2,0\n");

        Assert.Equal("row 1", ex.Field);
        Assert.Contains("quoted", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_DuplicateHeaderColumn_Rejected()
    {
        var ex = await RejectCsvAsync("x0,x0,label\n1,2,0\n");

        Assert.Equal("header", ex.Field);
        Assert.Contains("'x0'", ex.Problem);
    }

    [Fact]
    public async Task ReadAsync_NoSiloId_MessageStartsWithField()
    {
        var ex = await Assert.ThrowsAsync<DataValidationException>(() =>
            TabularReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes("x0,x1,label\n1,x,0\n")), Csv, 2, null));

        Assert.Null(ex.SiloId);
        Assert.Equal("column 'x1' row 1: not a number", ex.Message);
    }

    [Fact]
    public async Task ReadAsync_ManyRows_GrowsAndKeepsOrder()
    {
        var builder = new StringBuilder("x0,x1,label\n");
        for (var i = 0; i < 5000; i++)
        {
            builder.Append(i).Append(',').Append(-i).Append(',').Append(i % 3).Append('\n');
        }

        var read = await ReadCsvAsync(builder.ToString());

        Assert.Equal(5000, read.Rows);
        Assert.Equal(4999f, read.Features[2 * 4999]);
        Assert.Equal(-4999f, read.Features[2 * 4999 + 1]);
        Assert.Equal(4999 % 3, read.Labels[4999]);
    }

    /// <summary>A stream that can only be read forwards, like an HTTP response body.</summary>
    private sealed class ForwardOnlyStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
