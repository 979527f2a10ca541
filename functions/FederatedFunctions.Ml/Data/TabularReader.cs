using FederatedFunctions.Core.Silos;
using System.Globalization;
using System.Numerics;
using System.Text;
using FederatedFunctions.Core.Specs;
using Parquet;
using Parquet.Schema;

namespace FederatedFunctions.Ml;

/// <summary>Reads and validates one split of a silo's tabular data, CSV or Parquet.</summary>
/// <remarks>
/// <para>
/// Nothing malformed gets through: the file must be non-empty with a header (CSV) or schema (Parquet), the label column
/// and every feature column must be present, the feature count must equal the model's inputs, every feature must be a
/// finite number (as float32), every label an integer in <c>[0, classes)</c>, and every row as long as the header.
/// The first violation throws a <see cref="DataValidationException"/> naming the silo, the column and/or row, and the
/// problem. Inputs are bounded: a CSV record longer than <see cref="MaxLineChars"/> characters or a file of more than
/// <see cref="MaxRows"/> rows fails as soon as the bound is crossed, before it can exhaust memory.
/// </para>
/// <para>
/// CSV: a header row, comma separated, UTF-8 (a byte-order mark is allowed), <c>\n</c> or <c>\r\n</c> line ends,
/// fields optionally quoted with <c>"</c> (a doubled <c>""</c> inside quotes is a literal quote), numbers in the invariant
/// culture; blank lines are skipped. Parquet: flat columns of int32, int64, float or double (nullable columns are allowed
/// but a null value is an error); a label may be float or double if its value is integral. Parquet needs a seekable
/// stream, so a non-seekable one is first copied into memory.
/// </para>
/// <para>
/// Feature columns are <see cref="DataSpec.Features"/> in that order, or, when absent, every column but the label in file
/// order. Other columns are ignored. The stream is read to the end but not closed.
/// </para>
/// </remarks>
public static class TabularReader
{
    /// <summary>Longest accepted CSV record, in characters (1 MiB of ASCII).</summary>
    public const int MaxLineChars = 1 << 20;

    /// <summary>Most accepted data rows.</summary>
    public const int MaxRows = 10_000_000;


    /// <summary>Reads and validates a split.</summary>
    /// <param name="stream">The file's bytes.</param>
    /// <param name="data">Format, label and feature columns, and number of classes.</param>
    /// <param name="expectedInputs">The model's number of inputs; the number of feature columns must equal it.</param>
    /// <param name="siloId">The silo the data belongs to, for error messages; may be null.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="DataValidationException">The data is malformed.</exception>
    /// <exception cref="ArgumentException">The format is unknown, or <paramref name="expectedInputs"/> or the class count is not positive.</exception>
    public static async Task<TabularData> ReadAsync(Stream stream, DataSpec data, int expectedInputs, string? siloId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedInputs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(data.Classes, 1, nameof(data));
        ArgumentException.ThrowIfNullOrEmpty(data.Label, nameof(data));
        var context = new ReadContext(data, expectedInputs, siloId);
        return data.Format switch
        {
            DataFormats.Csv => await ReadCsvAsync(stream, context, cancellationToken).ConfigureAwait(false),
            DataFormats.Parquet => await ReadParquetAsync(stream, context, cancellationToken).ConfigureAwait(false),
            _ => throw new ArgumentException(
                $"Unknown data format '{data.Format}'; expected one of: {string.Join(", ", DataFormats.Tables)}.", nameof(data)),
        };
    }

    /// <summary>
    /// Reads some columns of a CSV file as their raw text (trimmed; an empty field is an empty string), for analyses,
    /// which decide themselves what is missing and what is a number. The file rules are training's: UTF-8, a header,
    /// every row as wide as the header, at most <see cref="MaxRows"/> rows and <see cref="MaxLineChars"/> characters a line.
    /// </summary>
    /// <exception cref="DataValidationException">The file is malformed, or a column is not in its header.</exception>
    public static async Task<IReadOnlyDictionary<string, string[]>> ReadCsvColumnsAsync(Stream stream, IReadOnlyList<string> columns, string? siloId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(columns);
        var context = new ReadContext(new DataSpec { Format = DataFormats.Csv }, 1, siloId);
        using var text = new StreamReader(stream, new UTF8Encoding(false, true), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16, leaveOpen: true);
        var records = new CsvRecordReader(text, context);
        try
        {
            if (!await records.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw context.Error("file", "the file is empty (no header row)");
            }

            var header = Enumerable.Range(0, records.FieldCount).Select(i => records.Field(i, trim: true).ToString()).ToArray();
            var sources = columns.Select(c => Array.IndexOf(header, c) is var i and >= 0 ? i : throw context.Error("header", $"has no column '{c}'")).ToArray();
            var values = columns.Select(_ => new List<string>()).ToArray();
            long row = 0;
            while (await records.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (++row > MaxRows)
                {
                    throw context.Error("file", $"more than {MaxRows} rows");
                }

                if (records.FieldCount != header.Length)
                {
                    throw context.Error($"row {row}", $"has {records.FieldCount} fields, but the header has {header.Length}");
                }

                for (var j = 0; j < sources.Length; j++)
                {
                    values[j].Add(records.Field(sources[j], trim: true).ToString());
                }
            }

            return columns.Select((c, j) => KeyValuePair.Create(c, values[j].ToArray())).ToDictionary(StringComparer.Ordinal);
        }
        catch (DecoderFallbackException ex)
        {
            throw context.Error(records.RecordNumber == 0 ? "header" : $"row {records.RecordNumber}", "the file is not valid UTF-8 text", ex);
        }
    }

    private static async Task<TabularData> ReadCsvAsync(Stream stream, ReadContext context, CancellationToken cancellationToken)
    {
        using var text = new StreamReader(stream, new UTF8Encoding(false, true), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16, leaveOpen: true);
        var records = new CsvRecordReader(text, context);
        try
        {
            if (!await records.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw context.Error("file", "the file is empty (no header row)");
            }

            var header = new string[records.FieldCount];
            for (var i = 0; i < header.Length; i++)
            {
                header[i] = records.Field(i, trim: true).ToString();
            }

            var plan = context.Resolve(header);
            var builder = new TableBuilder(context, plan, initialRows: 1024);
            var label = context.Data.Label;
            while (await records.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var row = builder.Rows + 1;
                if (row > MaxRows)
                {
                    throw context.Error("file", $"more than {MaxRows} rows");
                }

                if (records.FieldCount != header.Length)
                {
                    throw context.Error($"row {row}", $"has {records.FieldCount} fields, but the header has {header.Length}");
                }

                var features = builder.AppendRow();
                for (var j = 0; j < plan.FeatureSource.Length; j++)
                {
                    features[j] = ParseFeature(context, records.Field(plan.FeatureSource[j], trim: true), plan.FeatureNames[j], row);
                }

                builder.SetLabel(ParseLabel(context, records.Field(plan.LabelSource, trim: true), label, row));
            }

            return builder.Build();
        }
        catch (DecoderFallbackException ex)
        {
            throw context.Error(records.RecordNumber == 0 ? "header" : $"row {records.RecordNumber}", "the file is not valid UTF-8 text", ex);
        }
    }

    private static float ParseFeature(ReadContext context, ReadOnlySpan<char> text, string column, long row)
    {
        if (text.IsEmpty)
        {
            throw context.Error($"column '{column}' row {row}", "empty value");
        }

        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw context.Error($"column '{column}' row {row}", "not a number");
        }

        if (!float.IsFinite(value))
        {
            throw context.Error($"column '{column}' row {row}", "not a finite number");
        }

        return value;
    }

    private static long ParseLabel(ReadContext context, ReadOnlySpan<char> text, string column, long row)
    {
        if (text.IsEmpty)
        {
            throw context.Error($"column '{column}' row {row}", "empty label");
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw context.Error($"column '{column}' row {row}", "not a number");
        }

        return context.CheckLabel(value, column, row, text);
    }

    private static Task<TabularData> ReadParquetAsync(Stream stream, ReadContext context, CancellationToken cancellationToken) =>
        ParquetColumns.OpenAsync(stream, context.SiloId, reader => ReadParquetTableAsync(reader, context, cancellationToken), cancellationToken);

    private static async Task<TabularData> ReadParquetTableAsync(ParquetReader reader, ReadContext context, CancellationToken cancellationToken)
    {
        var topLevel = reader.Schema.Fields;
        var plan = context.Resolve(topLevel.Select(f => f.Name).ToArray());
        var label = context.Data.Label;
        DataField Numeric(int index, string column)
        {
            if (topLevel[index] is not DataField { IsArray: false } field
                || (field.ClrType != typeof(int) && field.ClrType != typeof(long) && field.ClrType != typeof(float) && field.ClrType != typeof(double)))
            {
                var type = topLevel[index] is DataField df ? (df.IsArray ? "an array of " + TypeName(df.ClrType) : TypeName(df.ClrType)) : topLevel[index].SchemaType.ToString().ToLowerInvariant();
                throw context.Error($"column '{column}'", $"has type {type}; expected int32, int64, float or double");
            }

            return field;
        }

        var featureFields = plan.FeatureSource.Select((source, j) => Numeric(source, plan.FeatureNames[j])).ToArray();
        var labelField = Numeric(plan.LabelSource, label);

        long total = 0;
        foreach (var group in reader.RowGroups)
        {
            total += group.RowCount;
        }

        if (total == 0)
        {
            throw context.Error("file", "no rows");
        }

        if (total > MaxRows)
        {
            throw context.Error("file", $"more than {MaxRows} rows ({total})");
        }

        if (total * featureFields.Length > Array.MaxLength)
        {
            throw context.Error("file", $"too many values: {total} rows × {featureFields.Length} columns exceed {Array.MaxLength}");
        }

        var builder = new TableBuilder(context, plan, initialRows: (int)total);
        long firstRow = 0;
        foreach (var group in reader.RowGroups)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = checked((int)group.RowCount);
            if (count == 0)
            {
                continue;
            }

            var start = builder.AppendRows(count);
            for (var j = 0; j < featureFields.Length; j++)
            {
                var values = await ReadColumnAsync(group, featureFields[j], count, firstRow, context, plan.FeatureNames[j], cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < count; i++)
                {
                    var value = (float)values[i];
                    if (!float.IsFinite(value))
                    {
                        var problem = double.IsFinite(values[i])
                            ? "outside the float32 range"
                            : "not a finite number";
                        throw context.Error($"column '{plan.FeatureNames[j]}' row {firstRow + i + 1}", problem);
                    }

                    builder.Features[(start + i) * featureFields.Length + j] = value;
                }
            }

            var labels = await ReadColumnAsync(group, labelField, count, firstRow, context, label, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < count; i++)
            {
                builder.Labels[start + i] = context.CheckLabel(labels[i], label, firstRow + i + 1, default);
            }

            firstRow += count;
        }

        return builder.Build();
    }

    private static string TypeName(Type type) =>
        type == typeof(string) || type == typeof(ReadOnlyMemory<char>) ? "string"
        : type == typeof(byte[]) || type == typeof(ReadOnlyMemory<byte>) ? "binary"
        : type == typeof(bool) ? "boolean"
        : type.Name;

    private static Task<double[]> ReadColumnAsync(ParquetRowGroupReader group, DataField field, int count, long firstRow, ReadContext context, string column, CancellationToken cancellationToken) =>
        field.ClrType == typeof(int) ? ReadColumnAsync<int>(group, field, count, firstRow, context, column, cancellationToken)
        : field.ClrType == typeof(long) ? ReadColumnAsync<long>(group, field, count, firstRow, context, column, cancellationToken)
        : field.ClrType == typeof(float) ? ReadColumnAsync<float>(group, field, count, firstRow, context, column, cancellationToken)
        : ReadColumnAsync<double>(group, field, count, firstRow, context, column, cancellationToken);

    private static async Task<double[]> ReadColumnAsync<T>(ParquetRowGroupReader group, DataField field, int count, long firstRow, ReadContext context, string column, CancellationToken cancellationToken)
        where T : struct, INumberBase<T>
    {
        var result = new double[count];
        try
        {
            if (field.IsNullable)
            {
                var values = new T?[count];
                await group.ReadAsync<T>(field, values.AsMemory(), null, cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < count; i++)
                {
                    result[i] = values[i] is { } value
                        ? double.CreateTruncating(value)
                        : throw context.Error($"column '{column}' row {firstRow + i + 1}", "missing value (null)");
                }
            }
            else
            {
                var values = new T[count];
                await group.ReadAsync<T>(field, values.AsMemory(), null, cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < count; i++)
                {
                    result[i] = double.CreateTruncating(values[i]);
                }
            }
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or DataValidationException))
        {
            throw context.Error($"column '{column}'", $"cannot be read ({ParquetColumns.Shorten(ex.Message, 160)})", ex);
        }

        return result;
    }


    /// <summary>Which source columns become features and the label.</summary>
    private sealed record ColumnPlan(int LabelSource, int[] FeatureSource, string[] FeatureNames);

    /// <summary>The spec, the model's width and the silo, plus the rules shared by both formats.</summary>
    private sealed class ReadContext(DataSpec data, int expectedInputs, string? siloId)
    {
        public DataSpec Data { get; } = data;

        public string? SiloId { get; } = siloId;

        public DataValidationException Error(string field, string problem, Exception? inner = null) => new(SiloId, field, problem, inner);

        public ColumnPlan Resolve(IReadOnlyList<string> header)
        {
            var index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < header.Count; i++)
            {
                if (!index.TryAdd(header[i], i))
                {
                    throw Error("header", $"column '{header[i]}' appears more than once");
                }
            }

            if (!index.TryGetValue(Data.Label, out var labelSource))
            {
                throw Error($"column '{Data.Label}'", "the label column is missing from the header");
            }

            string[] names;
            if (Data.Features is { } features)
            {
                foreach (var name in features)
                {
                    if (name == Data.Label)
                    {
                        throw Error($"column '{name}'", "is both the label and a feature");
                    }

                    if (!index.ContainsKey(name))
                    {
                        throw Error($"column '{name}'", "the feature column is missing from the header");
                    }
                }

                if (features.Distinct(StringComparer.Ordinal).Count() != features.Count)
                {
                    throw Error("features", "the feature list names a column more than once");
                }

                names = [.. features];
            }
            else
            {
                names = header.Where(h => h != Data.Label).ToArray();
            }

            if (names.Length != expectedInputs)
            {
                throw Error("header", $"{names.Length} feature columns, but the model expects {expectedInputs} inputs");
            }

            return new ColumnPlan(labelSource, names.Select(n => index[n]).ToArray(), names);
        }

        /// <summary>The class id a label value denotes; <paramref name="text"/> is the source text, or empty to print the value.</summary>
        public long CheckLabel(double value, string column, long row, ReadOnlySpan<char> text)
        {
            if (double.IsFinite(value) && double.IsInteger(value) && value >= 0 && value < Data.Classes)
            {
                return (long)value;
            }

            // The offending value itself is silo data: errors name the column, the row and the rule, never the value.
            _ = text;
            var problem = !double.IsFinite(value) ? "not a finite number"
                : !double.IsInteger(value) ? "not an integer class id"
                : $"a class id outside [0, {Data.Classes})";
            throw Error($"column '{column}' row {row}", problem);
        }
    }

    /// <summary>Growable row-major storage for the table being read.</summary>
    private sealed class TableBuilder(ReadContext context, ColumnPlan plan, int initialRows)
    {
        private readonly int columns = plan.FeatureSource.Length;

        public float[] Features { get; private set; } = new float[checked(Math.Max(initialRows, 1) * (long)plan.FeatureSource.Length)];

        public long[] Labels { get; private set; } = new long[Math.Max(initialRows, 1)];

        public int Rows { get; private set; }

        /// <summary>Adds one row and returns its feature slots.</summary>
        public Span<float> AppendRow()
        {
            var start = AppendRows(1);
            return Features.AsSpan(start * columns, columns);
        }

        /// <summary>Adds rows and returns the index of the first.</summary>
        public int AppendRows(int count)
        {
            var needed = (long)Rows + count;
            if (needed * columns > Array.MaxLength)
            {
                throw context.Error("file", $"too many values: {needed} rows × {columns} columns exceed {Array.MaxLength}");
            }

            if (needed > Labels.Length)
            {
                var capacity = (int)Math.Min(Math.Max(needed, Labels.Length * 2L), Math.Min(MaxRows, Array.MaxLength / Math.Max(columns, 1)));
                capacity = (int)Math.Max(capacity, needed);
                var features = Features;
                Array.Resize(ref features, checked(capacity * columns));
                Features = features;
                var labels = Labels;
                Array.Resize(ref labels, capacity);
                Labels = labels;
            }

            var start = Rows;
            Rows = (int)needed;
            return start;
        }

        public void SetLabel(long label) => Labels[Rows - 1] = label;

        public TabularData Build()
        {
            if (Rows == 0)
            {
                throw context.Error("file", "no rows (the file has a header only)");
            }

            var features = Features;
            var labels = Labels;
            if (labels.Length != Rows)
            {
                Array.Resize(ref features, Rows * columns);
                Array.Resize(ref labels, Rows);
            }

            return new TabularData(features, labels, Rows, columns, plan.FeatureNames);
        }
    }

    /// <summary>Splits CSV text into records without ever holding more than one bounded record.</summary>
    private sealed class CsvRecordReader(TextReader reader, ReadContext context)
    {
        private readonly char[] buffer = new char[1 << 16];
        private readonly List<(int Start, int Length, bool Quoted)> fields = [];
        private char[] record = new char[256];
        private int position;
        private int length;
        private bool endOfInput;
        private int recordLength;
        private int rawLength;
        private int fieldStart;
        private bool fieldQuoted;
        private bool inQuotes;
        private bool pendingQuote;

        /// <summary>0 while reading the header, then the 1-based number of the data row last read.</summary>
        public long RecordNumber { get; private set; } = -1;

        public int FieldCount => fields.Count;

        public ReadOnlySpan<char> Field(int index, bool trim)
        {
            var (start, count, quoted) = fields[index];
            var span = record.AsSpan(start, count);
            return trim && !quoted ? span.Trim() : span;
        }

        /// <summary>Reads the next non-blank record; false at the end of the input.</summary>
        public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
        {
            RecordNumber++;
            while (true)
            {
                BeginRecord();
                while (true)
                {
                    if (Scan())
                    {
                        break;
                    }

                    if (endOfInput)
                    {
                        if (inQuotes && !pendingQuote)
                        {
                            throw context.Error(Where(), "a quoted value is not closed before the end of the file");
                        }

                        if (rawLength == 0)
                        {
                            return false;
                        }

                        EndField();
                        break;
                    }

                    cancellationToken.ThrowIfCancellationRequested();
                    length = await reader.ReadAsync(buffer.AsMemory(), cancellationToken).ConfigureAwait(false);
                    position = 0;
                    endOfInput = length == 0;
                }

                var blank = fields.Count == 1 && fields[0].Length == 0 && !fields[0].Quoted;
                if (!blank)
                {
                    return true;
                }
            }
        }

        private string Where() => RecordNumber == 0 ? "header" : $"row {RecordNumber}";

        private void BeginRecord()
        {
            fields.Clear();
            recordLength = 0;
            rawLength = 0;
            fieldStart = 0;
            fieldQuoted = false;
            inQuotes = false;
            pendingQuote = false;
        }

        /// <summary>Consumes buffered characters; true when a record ended at a line break.</summary>
        private bool Scan()
        {
            while (position < length)
            {
                var c = buffer[position++];
                if (++rawLength > MaxLineChars)
                {
                    throw context.Error(Where(), $"the line is longer than {MaxLineChars} characters");
                }

                if (inQuotes)
                {
                    if (pendingQuote)
                    {
                        pendingQuote = false;
                        if (c == '"')
                        {
                            Append('"');
                            continue;
                        }

                        inQuotes = false;
                    }
                    else
                    {
                        if (c == '"')
                        {
                            pendingQuote = true;
                        }
                        else
                        {
                            Append(c);
                        }

                        continue;
                    }
                }

                switch (c)
                {
                    case ',':
                        EndField();
                        break;
                    case '\n':
                        rawLength--;
                        EndField();
                        return true;
                    case '\r':
                        // Part of a \r\n line end (or stray): never part of a value.
                        break;
                    case '"' when recordLength == fieldStart && !fieldQuoted:
                        inQuotes = true;
                        fieldQuoted = true;
                        break;
                    default:
                        Append(c);
                        break;
                }
            }

            return false;
        }

        private void Append(char c)
        {
            if (recordLength == record.Length)
            {
                Array.Resize(ref record, Math.Min(record.Length * 2, MaxLineChars));
            }

            record[recordLength++] = c;
        }

        private void EndField()
        {
            fields.Add((fieldStart, recordLength - fieldStart, fieldQuoted));
            fieldStart = recordLength;
            fieldQuoted = false;
        }
    }
}
