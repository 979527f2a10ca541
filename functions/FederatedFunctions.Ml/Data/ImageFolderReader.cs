using FederatedFunctions.Core.Silos;

namespace FederatedFunctions.Ml;

/// <summary>A blob of a listing: its path and size.</summary>
/// <param name="Path">The blob's path in the silo's container.</param>
/// <param name="Bytes">Its size.</param>
public sealed record ImageFile(string Path, long Bytes);

/// <summary>One split read from an image folder.</summary>
/// <param name="Data">One row per image, its values channel by channel and row by row, in [0, 1]; labels are class indexes.</param>
/// <param name="Classes">The class folders, in sorted order: class id <c>i</c> is folder <c>Classes[i]</c>.</param>
/// <param name="Channels">1 (grayscale) or 3 (RGB) for every image.</param>
/// <param name="Height">Rows of every image.</param>
/// <param name="Width">Columns of every image.</param>
public sealed record ImageFolderSplit(TabularData Data, IReadOnlyList<string> Classes, int Channels, int Height, int Width);

/// <summary>Reads a split laid out as torchvision's ImageFolder: <c>{prefix}/{class}/{file}.png</c>, one folder per class.</summary>
/// <remarks>
/// <para>
/// The classes are the folder names in ordinal (byte) order, class id <c>i</c> being the <c>i</c>-th, as torchvision
/// numbers them; there must be exactly <c>data.classes</c> of them. With <c>data.classNames</c>, class id <c>i</c> is folder
/// <c>classNames[i]</c> instead, so a split may lack classes (label skew) but may have no other folder. Each blob under the prefix must be a <c>.png</c> file
/// directly inside a class folder; anything else (a file beside the class folders, a nested folder, another extension) is
/// refused by name. Empty blobs that only mark a folder (as hierarchical namespaces list them: a class folder, or any folder
/// another blob is in) are skipped, so a class folder without an image is not a class. Rows are in
/// class order, then in the files' ordinal order within the class.
/// </para>
/// <para>
/// Each image is decoded by <see cref="PngDecoder"/> to <c>[channels, height, width]</c> values in [0, 1] (alpha dropped) and
/// flattened channel by channel, row by row: the order in which a <c>cnn</c>'s <c>model.shape</c> reads a row. Every image of a
/// split must have the same size and channels as the first, and their values together must equal the model's inputs.
/// Bounds: at most <see cref="MaxFiles"/> files and <see cref="MaxBytes"/> bytes in a split, checked on the listing before any
/// image is read. Images are fetched and decoded <see cref="Parallelism"/> at a time. Every error is a
/// <see cref="DataValidationException"/> naming the silo and the blob.
/// </para>
/// </remarks>
public static class ImageFolderReader
{
    /// <summary>Most images in one split.</summary>
    public const int MaxFiles = 1_000_000;

    /// <summary>Most bytes of images (as stored) in one split: 2 GiB.</summary>
    public const long MaxBytes = 2L << 30;

    /// <summary>Images fetched and decoded at once.</summary>
    public const int Parallelism = 8;

    /// <summary>Reads and validates a split.</summary>
    /// <param name="prefix">The split's folder (<c>data.train</c> or <c>data.test</c>), without a trailing <c>/</c>.</param>
    /// <param name="files">Every blob whose path starts with <c>{prefix}/</c>, in any order.</param>
    /// <param name="read">Reads a blob's bytes; null when it has gone.</param>
    /// <param name="classes">The number of classes, or null to take the folders as they are (to describe a folder).</param>
    /// <param name="classNames">The folder of each class id (<c>data.classNames</c>), or null for the sorted folder names.</param>
    /// <param name="expectedInputs">The model's inputs, or null to accept any image size.</param>
    /// <param name="siloId">The silo, for error messages.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="DataValidationException">The layout, an image, the sizes or the classes are wrong.</exception>
    public static async Task<ImageFolderSplit> ReadAsync(
        string prefix,
        IReadOnlyList<ImageFile> files,
        Func<string, CancellationToken, Task<byte[]?>> read,
        int? classes,
        IReadOnlyList<string>? classNames,
        int? expectedInputs,
        string? siloId,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(read);
        var (names, images) = Plan(prefix, files, classes, classNames, siloId);

        var firstPath = images[0].Path;
        var first = await ReadImageAsync(firstPath, read, siloId, cancellationToken).ConfigureAwait(false);
        var header = Header(first, firstPath, siloId);
        var values = header.Values;
        if (expectedInputs is { } inputs && values != inputs)
        {
            throw new DataValidationException(siloId, firstPath, $"the images are {Describe(header)}, {values} values, but the model expects {inputs} inputs");
        }

        if (values * images.Length > Array.MaxLength)
        {
            throw new DataValidationException(siloId, prefix, $"too many values: {images.Length} images × {values} exceed {Array.MaxLength}");
        }

        var features = new float[values * images.Length];
        var labels = new long[images.Length];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, images.Length),
            new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken },
            async (i, token) =>
            {
                var (path, label) = images[i];
                var bytes = i == 0 ? first : await ReadImageAsync(path, read, siloId, token).ConfigureAwait(false);
                var own = Header(bytes, path, siloId);
                if ((own.Width, own.Height, own.Channels) != (header.Width, header.Height, header.Channels))
                {
                    throw new DataValidationException(siloId, path, $"the image is {Describe(own)}, but {firstPath} is {Describe(header)}: every image of a split must have the same size and channels");
                }

                PngImage image;
                try
                {
                    image = PngDecoder.Decode(bytes);
                }
                catch (InvalidDataException ex)
                {
                    throw new DataValidationException(siloId, path, ex.Message, ex);
                }

                image.Values.CopyTo(features.AsSpan((int)(i * values), (int)values));
                labels[i] = label;
            }).ConfigureAwait(false);

        var data = new TabularData(features, labels, images.Length, (int)values, TensorDataReader.FeatureNames((int)values));
        return new ImageFolderSplit(data, names, header.Channels, header.Height, header.Width);
    }

    /// <summary>Checks the layout and returns the class names and the images in row order, each with its class id.</summary>
    /// <exception cref="DataValidationException">
    /// Too many files or bytes, a blob outside the layout, no image, a folder not in <paramref name="classNames"/>, or, without
    /// them, not <paramref name="classes"/> folders.
    /// </exception>
    public static (IReadOnlyList<string> Classes, (string Path, int Label)[] Images) Plan(string prefix, IReadOnlyList<ImageFile> files, int? classes, IReadOnlyList<string>? classNames, string? siloId)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        ArgumentNullException.ThrowIfNull(files);
        var root = prefix + "/";
        if (files.Count > MaxFiles)
        {
            throw new DataValidationException(siloId, prefix, $"more than {MaxFiles} files");
        }

        if (files.Sum(f => f.Bytes) is var total && total > MaxBytes)
        {
            throw new DataValidationException(siloId, prefix, $"the images are {total} bytes, more than {MaxBytes}");
        }

        // Every folder some blob is in: an empty blob with such a name marks the folder rather than holding an image.
        var folders = files.Select(f => f.Path[..Math.Max(0, f.Path.LastIndexOf('/'))]).ToHashSet(StringComparer.Ordinal);
        var found = new List<(string Class, string File, string Path)>(files.Count);
        foreach (var file in files)
        {
            if (!file.Path.StartsWith(root, StringComparison.Ordinal))
            {
                throw new ArgumentException($"'{file.Path}' is not under '{root}'.", nameof(files));
            }

            var relative = file.Path[root.Length..];
            if (file.Bytes == 0 && (!relative.Contains('/', StringComparison.Ordinal) || file.Path.EndsWith('/') || folders.Contains(file.Path)))
            {
                // A folder marker (a hierarchical namespace's directory, or a tool's placeholder), not an image.
                continue;
            }

            var parts = relative.Split('/');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            {
                throw new DataValidationException(siloId, file.Path, $"is not an image of a class folder: the layout is {prefix}/{{class}}/{{file}}.png, one folder per class");
            }

            if (!parts[1].EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            {
                throw new DataValidationException(siloId, file.Path, "is not a .png file: an image folder holds PNG images only");
            }

            found.Add((parts[0], parts[1], file.Path));
        }

        if (found.Count == 0)
        {
            throw new DataValidationException(siloId, prefix, $"there are no images under {root} (the layout is {prefix}/{{class}}/{{file}}.png)");
        }

        var classFolders = found.Select(f => f.Class).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        string[] names;
        if (classNames is not null)
        {
            names = [.. classNames];
            if (classFolders.FirstOrDefault(f => !classNames.Contains(f, StringComparer.Ordinal)) is { } unknown)
            {
                throw new DataValidationException(siloId, $"{prefix}/{unknown}", "the class folder is not one of data.classNames");
            }
        }
        else
        {
            names = classFolders;
            if (classes is { } expected && names.Length != expected)
            {
                var shown = string.Join(", ", names.Take(10).Select(n => $"'{n}'")) + (names.Length > 10 ? ", …" : string.Empty);
                throw new DataValidationException(siloId, prefix, $"there are {names.Length} class folders ({shown}), but data.classes is {expected}: the classes are the folder names in sorted order, so every split of every silo needs one folder per class, with at least one image; a silo that lacks a class needs data.classNames");
            }
        }

        var index = names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);
        var images = found
            .OrderBy(f => index[f.Class])
            .ThenBy(f => f.File, StringComparer.Ordinal)
            .Select(f => (f.Path, index[f.Class]))
            .ToArray();
        return (names, images);
    }

    private static async Task<byte[]> ReadImageAsync(string path, Func<string, CancellationToken, Task<byte[]?>> read, string? siloId, CancellationToken cancellationToken)
    {
        var bytes = await read(path, cancellationToken).ConfigureAwait(false)
            ?? throw new DataValidationException(siloId, path, "the image disappeared while the folder was read");
        return bytes.LongLength <= MaxBytes ? bytes : throw new DataValidationException(siloId, path, $"the image is more than {MaxBytes} bytes");
    }

    private static PngHeader Header(byte[] bytes, string path, string? siloId)
    {
        try
        {
            return PngDecoder.ReadHeader(bytes);
        }
        catch (InvalidDataException ex)
        {
            throw new DataValidationException(siloId, path, ex.Message, ex);
        }
    }

    private static string Describe(PngHeader header) =>
        $"{header.Channels}×{header.Height}×{header.Width} ({(header.Channels == 1 ? "grayscale" : "RGB")}, {header.Height} rows of {header.Width} pixels)";
}
