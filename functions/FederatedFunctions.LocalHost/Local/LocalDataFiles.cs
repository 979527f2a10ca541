using System.Globalization;
using Azure.Storage.Blobs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;

namespace FederatedFunctions.LocalHost.Local;

/// <summary>A local file or folder, checked as one data split, and the blobs it becomes in a silo's container.</summary>
/// <param name="Source">The local file or folder.</param>
/// <param name="BlobPath">Its path in the container: the spec's <c>data.train</c> or <c>data.test</c>.</param>
/// <param name="Format">Its data format, or null when the extension says none (the file is uploaded unchecked).</param>
/// <param name="Description">What it holds, for the user (examples, shape, labels or classes).</param>
/// <param name="Files">Each local file and its blob path: the file itself, or every image of a folder.</param>
public sealed record LocalSplit(string Source, string BlobPath, string? Format, string Description, IReadOnlyList<(string Local, string Blob)> Files);

/// <summary>What <c>fl data put</c> does with a local split: recognize its format, check it as a silo will read it, and upload it.</summary>
/// <remarks>
/// The format follows the name: a folder is an <c>imagefolder</c> (<c>{class}/{file}.png</c>), and <c>.npz</c>,
/// <c>.safetensors</c>, <c>.csv</c> and <c>.parquet</c> files are those formats. Array files and image folders are read with the
/// silo's own readers before anything is uploaded, so a malformed split fails on the user's machine with the message a silo
/// would give; CSV and Parquet depend on the spec's columns and are uploaded as they are.
/// </remarks>
public static class LocalDataFiles
{
    /// <summary>The data format of a local file or folder, or null for an unknown extension.</summary>
    public static string? FormatOf(FileSystemInfo source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source is DirectoryInfo ? DataFormats.ImageFolder : source.Extension.ToLowerInvariant() switch
        {
            ".csv" => DataFormats.Csv,
            ".parquet" => DataFormats.Parquet,
            ".npz" => DataFormats.Npz,
            ".safetensors" => DataFormats.Safetensors,
            _ => null,
        };
    }

    /// <summary>Where a split goes by default: <c>data/{split}</c> for a folder, <c>data/{split}{.ext}</c> for a file.</summary>
    public static string DefaultBlobPath(string split, FileSystemInfo source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source is DirectoryInfo ? $"data/{split}" : $"data/{split}{source.Extension.ToLowerInvariant()}";
    }

    /// <summary>Checks a local split as a silo would read it (without a model or a class count) and lists its blobs.</summary>
    /// <exception cref="Core.Silos.DataValidationException">The file or folder is not valid data of its format.</exception>
    /// <exception cref="FileNotFoundException">It does not exist.</exception>
    public static async Task<LocalSplit> CheckAsync(FileSystemInfo source, string blobPath, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(blobPath);
        source.Refresh();
        if (!source.Exists)
        {
            throw new FileNotFoundException($"'{source.FullName}' does not exist", source.FullName);
        }

        var format = FormatOf(source);
        if (source is DirectoryInfo folder)
        {
            var locals = new Dictionary<string, string>(StringComparer.Ordinal);
            var files = new List<ImageFile>();
            foreach (var file in folder.EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (files.Count == ImageFolderReader.MaxFiles)
                {
                    throw new Core.Silos.DataValidationException(null, source.FullName, $"more than {ImageFolderReader.MaxFiles} files");
                }

                var blob = blobPath + "/" + Path.GetRelativePath(folder.FullName, file.FullName).Replace(Path.DirectorySeparatorChar, '/');
                locals[blob] = file.FullName;
                files.Add(new ImageFile(blob, file.Length));
            }

            var split = await ImageFolderReader.ReadAsync(
                blobPath,
                files,
                async (blob, ct) => await File.ReadAllBytesAsync(locals[blob], ct).ConfigureAwait(false),
                classes: null,
                classNames: null,
                expectedInputs: null,
                siloId: null,
                cancellationToken).ConfigureAwait(false);
            var names = string.Join(", ", split.Classes.Take(10)) + (split.Classes.Count > 10 ? ", …" : string.Empty);
            var description = string.Create(CultureInfo.InvariantCulture, $"{split.Data.Rows} images in {split.Classes.Count} classes ({names}), each {split.Channels}×{split.Height}×{split.Width} ({split.Data.Columns} inputs)");
            return new LocalSplit(source.FullName, blobPath, format, description, [.. locals.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => (l.Value, l.Key))]);
        }

        var fileInfo = (FileInfo)source;
        string text;
        if (format is DataFormats.Npz or DataFormats.Safetensors)
        {
            byte[] bytes;
            await using (var stream = fileInfo.OpenRead())
            {
                bytes = await TensorDataReader.ReadBoundedAsync(stream, TensorDataReader.MaxFileBytes, null, cancellationToken).ConfigureAwait(false);
            }

            var split = TensorDataReader.Read(bytes, format, classes: null, expectedInputs: null, siloId: null);
            var labels = split.Data.Labels;
            text = string.Create(CultureInfo.InvariantCulture, $"{split.Data.Rows} examples of shape {DataArray.FormatShape(split.ExampleShape)} ({split.Data.Columns} inputs, stored as {split.FeatureType}), labels {labels.Min()} to {labels.Max()}");
        }
        else
        {
            text = string.Create(CultureInfo.InvariantCulture, $"{fileInfo.Length} bytes");
        }

        return new LocalSplit(source.FullName, blobPath, format, text, [(fileInfo.FullName, blobPath)]);
    }

    /// <summary>Blobs already under a folder split's path that the folder does not have (none for a file).</summary>
    /// <remarks>
    /// A silo reads every blob under the folder, so these would become part of the split (or make it invalid). A silo's own
    /// credential may not delete blobs, so <c>fl data put</c> refuses instead of replacing them.
    /// </remarks>
    public static async Task<IReadOnlyList<string>> StaleBlobsAsync(BlobContainerClient container, LocalSplit split, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(split);
        if (split.Format != DataFormats.ImageFolder)
        {
            return [];
        }

        var kept = split.Files.Select(f => f.Blob).ToHashSet(StringComparer.Ordinal);
        var stale = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, split.BlobPath + "/", cancellationToken).ConfigureAwait(false))
        {
            if (!kept.Contains(blob.Name))
            {
                stale.Add(blob.Name);
            }
        }

        return stale;
    }

    /// <summary>Uploads a checked split into a silo's data container, overwriting blobs of the same names, up to 8 files at a time.</summary>
    public static async Task UploadAsync(BlobContainerClient container, LocalSplit split, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(split);
        await Parallel.ForEachAsync(split.Files, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (file, ct) =>
        {
            var stream = File.OpenRead(file.Local);
            await using (stream.ConfigureAwait(false))
            {
                await container.GetBlobClient(file.Blob).UploadAsync(stream, overwrite: true, ct).ConfigureAwait(false);
            }
        }).ConfigureAwait(false);
    }
}
