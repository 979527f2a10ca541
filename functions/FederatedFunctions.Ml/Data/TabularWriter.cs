using System.Globalization;
using System.Text;
using Parquet;
using Parquet.Schema;

namespace FederatedFunctions.Ml;

/// <summary>Writes a <see cref="TabularData"/> as CSV or Parquet that <see cref="TabularReader"/> reads back exactly.</summary>
/// <remarks>
/// Columns are the feature names in order, then the label. CSV is UTF-8 without a byte-order mark, <c>\n</c> line ends,
/// floats in the invariant culture's shortest round-trip form (so reading gives back the same bits), names quoted only
/// when they contain a comma, quote or line break. Parquet has float columns for features and an int64 label column,
/// in row groups of at most <see cref="ParquetRowGroupRows"/> rows. The destination is not closed.
/// </remarks>
public static class TabularWriter
{
    /// <summary>Most rows in one Parquet row group.</summary>
    public const int ParquetRowGroupRows = 1 << 20;

    private const int CsvRowsPerFlush = 4096;

    /// <summary>Writes CSV with a header row.</summary>
    /// <exception cref="ArgumentException">The table is inconsistent, or the label name is empty or also a feature name.</exception>
    public static async Task WriteCsvAsync(Stream destination, TabularData data, string labelColumn, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        CheckTable(data, labelColumn);
        var writer = new StreamWriter(destination, new UTF8Encoding(false), bufferSize: 1 << 16, leaveOpen: true) { NewLine = "\n" };
        await using (writer.ConfigureAwait(false))
        {
            var line = new StringBuilder();
            foreach (var name in data.FeatureNames)
            {
                line.Append(Escape(name)).Append(',');
            }

            line.Append(Escape(labelColumn)).Append('\n');
            var number = new char[32];
            for (var row = 0; row < data.Rows; row++)
            {
                var features = data.Features.AsSpan(row * data.Columns, data.Columns);
                foreach (var value in features)
                {
                    value.TryFormat(number, out var written, "R", CultureInfo.InvariantCulture);
                    line.Append(number, 0, written).Append(',');
                }

                line.Append(data.Labels[row].ToString(CultureInfo.InvariantCulture)).Append('\n');
                if (row % CsvRowsPerFlush == CsvRowsPerFlush - 1)
                {
                    await writer.WriteAsync(line, ct).ConfigureAwait(false);
                    line.Clear();
                }
            }

            await writer.WriteAsync(line, ct).ConfigureAwait(false);
            await writer.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Writes Parquet: one float column per feature and an int64 label column.</summary>
    /// <remarks>A non-seekable destination is written through a memory buffer, since the Parquet writer needs positions.</remarks>
    /// <exception cref="ArgumentException">The table is inconsistent, or the label name is empty or also a feature name.</exception>
    public static async Task WriteParquetAsync(Stream destination, TabularData data, string labelColumn, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        CheckTable(data, labelColumn);
        if (!destination.CanSeek)
        {
            using var buffer = new MemoryStream();
            await WriteParquetCoreAsync(buffer, data, labelColumn, ct).ConfigureAwait(false);
            buffer.Position = 0;
            await buffer.CopyToAsync(destination, ct).ConfigureAwait(false);
            return;
        }

        await WriteParquetCoreAsync(destination, data, labelColumn, ct).ConfigureAwait(false);
    }

    private static async Task WriteParquetCoreAsync(Stream destination, TabularData data, string labelColumn, CancellationToken ct)
    {
        var featureFields = data.FeatureNames.Select(name => new DataField<float>(name)).ToArray();
        var labelField = new DataField<long>(labelColumn);
        var schema = new ParquetSchema([.. featureFields, labelField]);
        var writer = await ParquetWriter.CreateAsync(schema, destination, null, false, ct).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            var column = new float[Math.Min(data.Rows, ParquetRowGroupRows)];
            for (var start = 0; start < data.Rows || (start == 0 && data.Rows == 0); start += ParquetRowGroupRows)
            {
                var count = Math.Min(ParquetRowGroupRows, data.Rows - start);
                using var group = writer.CreateRowGroup();
                for (var j = 0; j < data.Columns; j++)
                {
                    for (var i = 0; i < count; i++)
                    {
                        column[i] = data.Features[(start + i) * data.Columns + j];
                    }

                    await group.WriteAsync<float>(featureFields[j], column.AsMemory(0, count), null, null, ct).ConfigureAwait(false);
                }

                await group.WriteAsync<long>(labelField, data.Labels.AsMemory(start, count), null, null, ct).ConfigureAwait(false);
                if (data.Rows == 0)
                {
                    break;
                }
            }
        }
    }

    private static void CheckTable(TabularData data, string labelColumn)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrEmpty(labelColumn);
        data.EnsureConsistent();
        if (data.FeatureNames.Contains(labelColumn, StringComparer.Ordinal))
        {
            throw new ArgumentException($"'{labelColumn}' is both the label and a feature name.", nameof(labelColumn));
        }

        if (data.FeatureNames.Distinct(StringComparer.Ordinal).Count() != data.Columns)
        {
            throw new ArgumentException("Feature names must be distinct.", nameof(data));
        }
    }

    private static string Escape(string name) =>
        name.AsSpan().IndexOfAny(",\"\r\n") < 0 && name.Trim().Length == name.Length
            ? name
            : "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
