using System.Globalization;
using System.IO.Compression;

namespace FederatedFunctions.TestSupport;

/// <summary>Real datasets that a Debian package ships (python3-sklearn), as <see cref="RepositoryPaths.Dataset"/> finds them.</summary>
public static class RealDatasets
{
    /// <summary>
    /// The UCI optical handwritten digits (1,797 images of 8×8 pixels with values 0 to 16, classes 0 to 9), from
    /// sklearn's <c>digits.csv.gz</c>: each line is 64 pixels, row by row, then the label.
    /// </summary>
    public static (float[][] Pixels, long[] Labels) Digits()
    {
        using var file = File.OpenRead(RepositoryPaths.Dataset("digits.csv.gz"));
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var (pixels, labels) = (new List<float[]>(), new List<long>());
        while (reader.ReadLine() is { Length: > 0 } line)
        {
            var values = line.Split(',').Select(v => int.Parse(v, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            pixels.Add(values[..64].Select(v => (float)v).ToArray());
            labels.Add(values[64]);
        }

        return (pixels.ToArray(), labels.ToArray());
    }
}
