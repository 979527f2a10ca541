using System.Collections.Concurrent;
using System.Text;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Silo;

/// <summary>Parsed data splits (standardized when the spec says so), cached by silo, path, blob version and schema, so that a silo reads a file once per change.</summary>
/// <remarks>
/// A changed file has a new version (ETag) and is read again; the entries of its older versions are dropped. An image folder's
/// version is a digest of its listing (every blob's path and version), so adding, removing or changing an image reads it again.
/// </remarks>
public sealed class SiloDataCache
{
    private readonly ConcurrentDictionary<(string Silo, string Path, string Version, string Schema), TabularData> tables = new();

    /// <summary>
    /// The split at <paramref name="path"/>, as <see cref="ReadAsync"/> reads it, and the orchestrator's <paramref name="model"/>,
    /// which downloads while the data's version is checked (and the data read, the first time).
    /// </summary>
    /// <remarks>When the data cannot be read, the download is stopped, and the data's error is the one thrown.</remarks>
    public async Task<(TabularData Data, IReadOnlyList<NamedTensor> Model)> ReadWithModelAsync(ISiloStorage storage, DataSpec spec, string path, int inputs, BlobRef model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var download = Concurrent.Begin(() => storage.ReadOrchestratorBlobAsync(model, reading.Token));
        var data = await Concurrent.AfterAsync(ReadAsync(storage, spec, path, inputs, cancellationToken), download, reading).ConfigureAwait(false);
        return (data, Safetensors.Parse(await download.ConfigureAwait(false)).Tensors);
    }

    /// <summary>The split at <paramref name="path"/> of the silo's data, parsed with the spec's schema.</summary>
    /// <exception cref="DataValidationException">The file (or folder) is missing or malformed; the message names the silo, the file and the field, never a value.</exception>
    public async Task<TabularData> ReadAsync(ISiloStorage storage, DataSpec spec, string path, int inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(spec);
        IReadOnlyList<SiloBlobInfo>? folder = null;
        string version;
        if (spec.Format == DataFormats.ImageFolder)
        {
            folder = await ListFolderAsync(storage, path, cancellationToken).ConfigureAwait(false);
            version = Hashing.Sha256Hex(Encoding.UTF8.GetBytes(string.Concat(folder.Select(b => $"{b.Path}\t{b.Version}\n"))));
        }
        else
        {
            version = await storage.GetVersionAsync(SiloArea.Data, path, cancellationToken).ConfigureAwait(false)
                ?? throw new DataValidationException(storage.SiloId, path, "the data file does not exist in the silo's container");
        }

        // The parsed table depends on the schema as much as on the file.
        var scaling = spec.Standardization is { } st ? string.Join(",", st.Mean.Concat(st.Stddev).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) : string.Empty;
        var schema = $"{spec.Format}|{spec.Label}|{spec.Classes}|{inputs}|{string.Join(",", spec.Features ?? [])}|{scaling}|{string.Join("/", spec.ClassNames ?? [])}";
        var key = (storage.SiloId, path, version, schema);
        if (tables.TryGetValue(key, out var cached))
        {
            return cached;
        }

        TabularData data;
        try
        {
            data = folder is not null
                ? (await ImageFolderReader.ReadAsync(path, [.. folder.Select(b => new ImageFile(b.Path, b.Bytes))], (p, ct) => storage.ReadAsync(SiloArea.Data, p, ct), spec.Classes, spec.ClassNames, inputs, storage.SiloId, cancellationToken).ConfigureAwait(false)).Data
                : await ReadFileAsync(storage, spec, path, inputs, cancellationToken).ConfigureAwait(false);
        }
        catch (DataValidationException ex) when (ex.Field != path && !ex.Field.StartsWith(path + "/", StringComparison.Ordinal))
        {
            // The reader knows the column and row; the error also names the file, since a silo has a train and a test split.
            throw new DataValidationException(storage.SiloId, $"{path} {ex.Field}", ex.Problem, ex);
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

    private static async Task<TabularData> ReadFileAsync(ISiloStorage storage, DataSpec spec, string path, int inputs, CancellationToken cancellationToken)
    {
        var stream = await storage.OpenReadAsync(SiloArea.Data, path, cancellationToken).ConfigureAwait(false)
            ?? throw new DataValidationException(storage.SiloId, path, "the data file does not exist in the silo's container");
        await using (stream.ConfigureAwait(false))
        {
            return DataFormats.IsTensor(spec.Format)
                ? await TensorDataReader.ReadAsync(stream, spec, inputs, storage.SiloId, cancellationToken).ConfigureAwait(false)
                : await TabularReader.ReadAsync(stream, spec, inputs, storage.SiloId, cancellationToken).ConfigureAwait(false);
        }
    }

    // The folder's blobs, in path order, at most ImageFolderReader.MaxFiles of them.
    private static async Task<IReadOnlyList<SiloBlobInfo>> ListFolderAsync(ISiloStorage storage, string path, CancellationToken cancellationToken)
    {
        var blobs = new List<SiloBlobInfo>();
        await foreach (var blob in storage.ListAsync(SiloArea.Data, path + "/", cancellationToken).ConfigureAwait(false))
        {
            if (blobs.Count == ImageFolderReader.MaxFiles)
            {
                throw new DataValidationException(storage.SiloId, path, $"more than {ImageFolderReader.MaxFiles} files");
            }

            blobs.Add(blob);
        }

        if (blobs.Count == 0)
        {
            throw new DataValidationException(storage.SiloId, path, $"the image folder does not exist in the silo's container (no blob under {path}/)");
        }

        blobs.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return blobs;
    }
}
