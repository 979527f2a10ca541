using System.Globalization;
using FederatedFunctions.Core.Silos;
using Parquet;
using Parquet.Schema;

namespace FederatedFunctions.Ml.Tests;

public sealed class ParquetColumnsTests
{
    private static async Task<MemoryStream> TwoRowGroupsAsync()
    {
        var d = new DataField<double?>("d");
        var f = new DataField<float>("f");
        var i = new DataField<long?>("i");
        var s = new DataField<string>("s");
        var b = new DataField<bool>("b");
        var stream = new MemoryStream();
        await using (var writer = await ParquetWriter.CreateAsync(new ParquetSchema(d, f, i, s, b), stream))
        {
            using (var group = writer.CreateRowGroup())
            {
                await group.WriteAsync<double>(d, new double?[] { 0.1, null });
                await group.WriteAsync<float>(f, new[] { 0.1f, -2.5f });
                await group.WriteAsync<long>(i, new long?[] { null, -9_007_199_254_740_993 });
                await group.WriteAsync(s, new[] { " cat ", null! });
                await group.WriteAsync<bool>(b, new[] { true, false });
            }

            using (var group = writer.CreateRowGroup())
            {
                await group.WriteAsync<double>(d, new double?[] { 1e308 });
                await group.WriteAsync<float>(f, new[] { 3e-8f });
                await group.WriteAsync<long>(i, new long?[] { 7 });
                await group.WriteAsync(s, new[] { "dog" });
                await group.WriteAsync<bool>(b, new[] { true });
            }
        }

        stream.Position = 0;
        return stream;
    }

    [Fact]
    public async Task ReadAsync_EveryTypeOverRowGroups_GivesTheTextACsvWouldHold_NullAsMissing()
    {
        using var stream = await TwoRowGroupsAsync();

        var columns = await ParquetColumns.ReadAsync(stream, ["s", "d", "f", "i", "b"], "silo-1");

        Assert.Equal(["cat", string.Empty, "dog"], columns["s"]);
        Assert.Equal(["0.1", string.Empty, "1E+308"], columns["d"]);

        // A float survives as the exact double it is, not as its shortest float text.
        Assert.Equal((double)0.1f, double.Parse(columns["f"][0], CultureInfo.InvariantCulture));
        Assert.Equal([string.Empty, "-9007199254740993", "7"], columns["i"]);
        Assert.Equal(["true", "false", "true"], columns["b"]);
    }

    [Fact]
    public async Task ReadAsync_MissingColumn_NamesItAndTheSilo()
    {
        using var stream = await TwoRowGroupsAsync();

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => ParquetColumns.ReadAsync(stream, ["d", "nope"], "silo-7"));

        Assert.Equal("silo-7", ex.SiloId);
        Assert.Contains("nope", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_NotParquet_IsBadDataNotACrash()
    {
        using var stream = new MemoryStream("a,b\n1,2\n"u8.ToArray());

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => ParquetColumns.ReadAsync(stream, ["a"], "silo-1"));

        Assert.Contains("not a readable Parquet file", ex.Message, StringComparison.Ordinal);
    }
}
