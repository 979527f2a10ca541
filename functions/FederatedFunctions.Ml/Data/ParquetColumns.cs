using System.Globalization;
using FederatedFunctions.Core.Silos;
using Parquet;
using Parquet.Schema;

namespace FederatedFunctions.Ml;

/// <summary>Reads some columns of a Parquet file as text, for analyses; and opens Parquet files for every reader here.</summary>
/// <remarks>
/// An analysis decides itself what is missing and what is a number, so each value comes back as the text a CSV file would
/// hold: integers in decimal, float and double in round-trip form (<c>R</c>, of the value as a double, so it survives exactly), booleans as
/// <c>true</c>/<c>false</c>, strings as they are (trimmed), and null as the empty string (missing). The file rules are
/// training's: flat columns, at most <see cref="TabularReader.MaxRows"/> rows.
/// </remarks>
public static class ParquetColumns
{
    /// <summary>The named columns of a Parquet file, each as one string per row.</summary>
    /// <exception cref="DataValidationException">The file is empty, not Parquet, too long, or lacks a column or has it in a type without a text form.</exception>
    public static Task<IReadOnlyDictionary<string, string[]>> ReadAsync(Stream stream, IReadOnlyList<string> columns, string? siloId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(columns);
        return OpenAsync(stream, siloId, reader => ReadColumnsAsync(reader, columns, siloId, cancellationToken), cancellationToken);
    }

    /// <summary>Opens <paramref name="stream"/> as Parquet (through a memory copy when it cannot seek) and runs <paramref name="read"/> on it.</summary>
    /// <exception cref="DataValidationException">The file is empty or not readable Parquet.</exception>
    internal static async Task<T> OpenAsync<T>(Stream stream, string? siloId, Func<ParquetReader, Task<T>> read, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Stream seekable = stream;
        MemoryStream? copy = null;
        try
        {
            if (!stream.CanSeek || stream.Position != 0)
            {
                copy = new MemoryStream();
                await stream.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
                copy.Position = 0;
                seekable = copy;
            }

            if (seekable.Length == 0)
            {
                throw new DataValidationException(siloId, "file", "the file is empty");
            }

            ParquetReader reader;
            try
            {
                reader = await ParquetReader.CreateAsync(seekable, null, leaveStreamOpen: true, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new DataValidationException(siloId, "file", $"not a readable Parquet file ({Shorten(ex.Message, 160)})", ex);
            }

            await using (reader.ConfigureAwait(false))
            {
                return await read(reader).ConfigureAwait(false);
            }
        }
        finally
        {
            if (copy is not null)
            {
                await copy.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary><paramref name="text"/> cut to <paramref name="max"/> characters, with an ellipsis when cut.</summary>
    internal static string Shorten(string text, int max) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");

    private static async Task<IReadOnlyDictionary<string, string[]>> ReadColumnsAsync(ParquetReader reader, IReadOnlyList<string> columns, string? siloId, CancellationToken cancellationToken)
    {
        var fields = columns.Select(c => reader.Schema.Fields.FirstOrDefault(f => f.Name == c) switch
        {
            DataField { IsArray: false } f => f,
            null => throw new DataValidationException(siloId, "header", $"has no column '{c}'"),
            var other => throw new DataValidationException(siloId, $"column '{c}'", $"is {other.SchemaType.ToString().ToLowerInvariant()}, not a flat column"),
        }).ToArray();
        long total = 0;
        foreach (var group in reader.RowGroups)
        {
            total += group.RowCount;
        }

        if (total > TabularReader.MaxRows)
        {
            throw new DataValidationException(siloId, "file", $"more than {TabularReader.MaxRows} rows ({total})");
        }

        var values = fields.Select(_ => new string[total]).ToArray();
        long first = 0;
        foreach (var group in reader.RowGroups)
        {
            var count = checked((int)group.RowCount);
            for (var j = 0; j < fields.Length; j++)
            {
                string[] text;
                try
                {
                    text = await ReadTextAsync(group, fields[j], count, siloId, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not (OperationCanceledException or DataValidationException))
                {
                    throw new DataValidationException(siloId, $"column '{fields[j].Name}'", $"cannot be read ({Shorten(ex.Message, 160)})", ex);
                }

                text.CopyTo(values[j], first);
            }

            first += count;
        }

        return columns.Select((c, j) => KeyValuePair.Create(c, values[j])).ToDictionary(StringComparer.Ordinal);
    }

    private static async Task<string[]> ReadTextAsync(ParquetRowGroupReader group, DataField field, int count, string? siloId, CancellationToken cancellationToken)
    {
        var type = field.ClrType;
        if (type == typeof(string) || type == typeof(ReadOnlyMemory<char>))
        {
            var strings = new string?[count];
            await group.ReadAsync(field, strings.AsMemory(), null, cancellationToken).ConfigureAwait(false);
            return Array.ConvertAll(strings, s => s?.Trim() ?? string.Empty);
        }

        return type == typeof(int) ? await ReadAsync<int>(group, field, count, cancellationToken).ConfigureAwait(false)
            : type == typeof(long) ? await ReadAsync<long>(group, field, count, cancellationToken).ConfigureAwait(false)
            : type == typeof(short) ? await ReadAsync<short>(group, field, count, cancellationToken).ConfigureAwait(false)
            : type == typeof(float) ? await ReadAsync<float>(group, field, count, cancellationToken).ConfigureAwait(false)
            : type == typeof(double) ? await ReadAsync<double>(group, field, count, cancellationToken).ConfigureAwait(false)
            : type == typeof(bool) ? await ReadAsync<bool>(group, field, count, cancellationToken).ConfigureAwait(false)
            : throw new DataValidationException(siloId, $"column '{field.Name}'", $"has type {type.Name}; expected a number, boolean or string");
    }

    private static async Task<string[]> ReadAsync<T>(ParquetRowGroupReader group, DataField field, int count, CancellationToken cancellationToken)
        where T : struct
    {
        if (field.IsNullable)
        {
            var nullable = new T?[count];
            await group.ReadAsync<T>(field, nullable.AsMemory(), null, cancellationToken).ConfigureAwait(false);
            return Array.ConvertAll(nullable, v => v is { } x ? Text(x) : string.Empty);
        }

        var values = new T[count];
        await group.ReadAsync<T>(field, values.AsMemory(), null, cancellationToken).ConfigureAwait(false);
        return Array.ConvertAll(values, Text);
    }

    private static string Text<T>(T value) => value switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? string.Empty,
    };
}
