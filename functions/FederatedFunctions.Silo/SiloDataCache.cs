using System.Collections.Concurrent;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Silo;

/// <summary>Parsed data splits (standardized when the spec says so), cached by silo, path, blob version and schema, so that a silo reads a file once per change.</summary>
/// <remarks>A changed file has a new version (ETag) and is read again; the entries of its older versions are dropped.</remarks>
public sealed class SiloDataCache
{
    private readonly ConcurrentDictionary<(string Silo, string Path, string Version, string Schema), TabularData> tables = new();

    /// <summary>The split at <paramref name="path"/> of the silo's data, parsed with the spec's schema.</summary>
    /// <exception cref="DataValidationException">The file is missing or malformed; the message names the silo, the file and the field, never a value.</exception>
    public async Task<TabularData> ReadAsync(ISiloStorage storage, DataSpec spec, string path, int inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(spec);
        var version = await storage.GetVersionAsync(SiloArea.Data, path, cancellationToken).ConfigureAwait(false)
            ?? throw new DataValidationException(storage.SiloId, path, "the data file does not exist in the silo's container");

        // The parsed table depends on the schema as much as on the file.
        var scaling = spec.Standardization is { } st ? string.Join(",", st.Mean.Concat(st.Stddev).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) : string.Empty;
        var schema = $"{spec.Format}|{spec.Label}|{spec.Classes}|{inputs}|{string.Join(",", spec.Features ?? [])}|{scaling}";
        var key = (storage.SiloId, path, version, schema);
        if (tables.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var stream = await storage.OpenReadAsync(SiloArea.Data, path, cancellationToken).ConfigureAwait(false)
            ?? throw new DataValidationException(storage.SiloId, path, "the data file does not exist in the silo's container");
        TabularData data;
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                data = await TabularReader.ReadAsync(stream, spec, inputs, storage.SiloId, cancellationToken).ConfigureAwait(false);
            }
            catch (DataValidationException ex)
            {
                // The reader knows the column and row; the error also names the file, since a silo has a train and a test split.
                throw new DataValidationException(storage.SiloId, $"{path} {ex.Field}", ex.Problem, ex);
            }
        }

        if (spec.Standardization is { } standardization)
        {
            if (!data.FeatureNames.SequenceEqual(spec.Features ?? [], StringComparer.Ordinal))
            {
                throw new DataValidationException(storage.SiloId, path, "the standardization is for data.features, but the file's features are not those columns in that order");
            }

            data = data.Standardized(standardization);
        }

        foreach (var stale in tables.Keys.Where(k => k.Silo == storage.SiloId && k.Path == path))
        {
            tables.TryRemove(stale, out _);
        }

        tables[key] = data;
        return data;
    }
}
