using System.Globalization;
using System.IO.Compression;

namespace FederatedFunctions.Ml;

/// <summary>
/// The UCI handwritten digits (1,797 images of 8×8 pixels with values 0-16, 10 classes) as python3-sklearn ships them
/// (<c>digits.csv.gz</c>: 64 pixel columns then the label, no header), split over silos with label skew.
/// </summary>
public static class DigitsDataset
{
    /// <summary>Pixels per image (the model's inputs).</summary>
    public const int Pixels = 64;

    /// <summary>Classes (the digits 0-9).</summary>
    public const int Classes = 10;

    /// <summary>Where <c>scripts/setup.sh datasets</c> puts the file, under the repository root.</summary>
    public static string PathUnder(string root) => Path.Combine(root, "tools", "datasets", "sklearn", "digits.csv.gz");

    /// <summary>Every image (pixels as read, 0-16) and its label.</summary>
    /// <exception cref="FileNotFoundException">The file is missing (the setup did not run).</exception>
    /// <exception cref="InvalidDataException">A line that is not 65 whole numbers, or a label outside 0-9.</exception>
    public static (float[][] Pixels, long[] Labels) Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} is missing: run scripts/setup.sh datasets (./fl and ./scripts/test.sh run it).", path);
        }

        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var (pixels, labels) = (new List<float[]>(), new List<long>());
        var line = 0;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Length == 0)
            {
                continue;
            }

            var parts = text.Split(',');
            if (parts.Length != Pixels + 1 || !parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                throw new InvalidDataException($"{path} line {line}: expected {Pixels + 1} whole numbers.");
            }

            var values = parts.Select(p => int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            if (values[Pixels] >= Classes)
            {
                throw new InvalidDataException($"{path} line {line}: label {values[Pixels]} is not a digit.");
            }

            pixels.Add(values[..Pixels].Select(v => (float)v).ToArray());
            labels.Add(values[Pixels]);
        }

        return (pixels.ToArray(), labels.ToArray());
    }

    /// <summary>
    /// The images split over <paramref name="silos"/> silos: each goes to the silo of its label (label mod silos) with
    /// probability <paramref name="skew"/>, else to a silo drawn uniformly; each silo keeps <paramref name="testFraction"/>
    /// of its images (rounded down) for test. Pixels are scaled to [0, 1]; columns are named <c>p0</c>…<c>p63</c>.
    /// </summary>
    /// <remarks>Seeded by <paramref name="seed"/>: the same arguments give the same split.</remarks>
    public static SiloDataset[] LabelSkewed((float[][] Pixels, long[] Labels) digits, IReadOnlyList<string> silos, int seed, double skew = 0.8, double testFraction = 0.2)
    {
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentOutOfRangeException.ThrowIfLessThan(silos.Count, 1, nameof(silos));
        if (!(skew is >= 0 and <= 1) || !(testFraction is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(skew), "The skew must be in [0, 1] and the test fraction in (0, 1).");
        }

        var (pixels, labels) = digits;
        var random = new Random(seed);
        var owner = labels.Select(l => random.NextDouble() < skew ? (int)(l % silos.Count) : random.Next(silos.Count)).ToArray();
        var names = Enumerable.Range(0, Pixels).Select(i => "p" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        TabularData Table(int[] rows) => new(rows.SelectMany(r => pixels[r].Select(p => p / 16f)).ToArray(), rows.Select(r => labels[r]).ToArray(), rows.Length, Pixels, names);
        return Enumerable.Range(0, silos.Count).Select(s =>
        {
            var rows = Enumerable.Range(0, labels.Length).Where(r => owner[r] == s).OrderBy(_ => random.Next()).ToArray();
            var test = (int)(rows.Length * testFraction);
            return new SiloDataset(silos[s], Table(rows[test..]), Table(rows[..test]));
        }).ToArray();
    }
}
