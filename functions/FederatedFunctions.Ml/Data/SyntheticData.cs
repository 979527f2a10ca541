using System.Globalization;
using FederatedFunctions.Core;

namespace FederatedFunctions.Ml;

/// <summary>Settings of <see cref="SyntheticData.Generate"/>.</summary>
/// <param name="Silos">Number of silos, named <c>silo-1</c>..<c>silo-N</c>.</param>
/// <param name="Classes">Number of classes (at least 2).</param>
/// <param name="Features">Number of features (at least 1).</param>
/// <param name="TrainPerSilo">Train rows per silo (at least 1).</param>
/// <param name="TestPerSilo">Test rows per silo (0 or more).</param>
/// <param name="DirichletAlpha">Null for IID silos; otherwise the concentration of the Dirichlet that draws each silo's class proportions (smaller is more skewed; 0.1 is strongly skewed, 100 nearly IID).</param>
/// <param name="Seed">Seed of every draw.</param>
public sealed record SyntheticOptions(int Silos, int Classes, int Features, int TrainPerSilo, int TestPerSilo, double? DirichletAlpha, long Seed)
{
    /// <summary>Typical distance between two component means, in noise standard deviations: the difficulty knob. Default <see cref="SyntheticData.DefaultSeparation"/>.</summary>
    public double Separation { get; init; } = SyntheticData.DefaultSeparation;
}

/// <summary>One silo's synthetic train and test splits.</summary>
/// <param name="SiloId">The silo id, <c>silo-k</c>.</param>
/// <param name="Train">Train split.</param>
/// <param name="Test">Test split, drawn from the same class proportions as <paramref name="Train"/>.</param>
public sealed record SiloDataset(string SiloId, TabularData Train, TabularData Test);

/// <summary>A seeded Gaussian-mixture classification problem, split across silos IID or with Dirichlet label skew.</summary>
/// <remarks>
/// <para>
/// Each class is a mixture of <see cref="ComponentsPerClass"/> spherical Gaussians with unit variance; component means are
/// drawn from <c>N(0, s²I)</c> with <c>s = separation / √(2·features)</c> (<see cref="SyntheticOptions.Separation"/>), so two random means are
/// about that many noise standard deviations apart whatever the dimension. Classes overlap: with 10
/// classes, 16 features and the default separation, an MLP reaches roughly 85–90% accuracy on a few thousand pooled
/// examples and a linear model 65–80%, since a
/// class's two components need not lie on one side of a hyperplane. Fewer features or more classes make it harder.
/// </para>
/// <para>
/// Label skew follows the usual federated benchmark recipe: silo <c>k</c>'s class proportions <c>p_k ~ Dirichlet(α·1)</c>
/// (Gamma draws by Marsaglia–Tsang, in log space so that small α never underflows); IID silos use uniform proportions.
/// Each split gets exactly <c>round(p_k · n)</c> rows per class (largest remainder), shuffled, so a silo's test split has
/// its train split's label distribution.
/// </para>
/// <para>
/// Everything is a pure function of <see cref="SyntheticOptions"/>: every draw comes from a <see cref="Random"/> seeded by
/// <see cref="Hashing.DeriveSeed"/> of the seed and a label (the means, or the silo and split), so silos are independent
/// of each other and of the number of silos generated.
/// </para>
/// </remarks>
public static class SyntheticData
{
    /// <summary>Gaussian components per class.</summary>
    public const int ComponentsPerClass = 2;

    /// <summary>Default <see cref="SyntheticOptions.Separation"/>.</summary>
    public const double DefaultSeparation = 5.0;

    /// <summary>Generates every silo's splits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count out of range, or an alpha that is not a positive finite number.</exception>
    public static IReadOnlyList<SiloDataset> Generate(SyntheticOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Silos, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Classes, 2, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Features, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TrainPerSilo, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(options.TestPerSilo, nameof(options));
        if (options.DirichletAlpha is { } alpha && !(double.IsFinite(alpha) && alpha > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(options), alpha, "The Dirichlet alpha must be a positive finite number.");
        }

        if (!(double.IsFinite(options.Separation) && options.Separation > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Separation, "The separation must be a positive finite number.");
        }

        if ((long)Math.Max(options.TrainPerSilo, options.TestPerSilo) * options.Features > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Rows × features exceeds the largest array.");
        }

        var means = ComponentMeans(options);
        var names = Enumerable.Range(0, options.Features).Select(i => "x" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var silos = new SiloDataset[options.Silos];
        for (var k = 0; k < options.Silos; k++)
        {
            var siloId = "silo-" + (k + 1).ToString(CultureInfo.InvariantCulture);
            var proportions = options.DirichletAlpha is { } a
                ? SampleDirichlet(NewRandom(options.Seed, "synthetic", "proportions", siloId), a, options.Classes)
                : Enumerable.Repeat(1.0 / options.Classes, options.Classes).ToArray();
            var train = Sample(NewRandom(options.Seed, "synthetic", "train", siloId), means, proportions, options.TrainPerSilo, names);
            var test = Sample(NewRandom(options.Seed, "synthetic", "test", siloId), means, proportions, options.TestPerSilo, names);
            silos[k] = new SiloDataset(siloId, train, test);
        }

        return silos;
    }

    /// <summary>A Gamma(<paramref name="shape"/>, 1) draw, as its natural logarithm.</summary>
    /// <remarks>Marsaglia and Tsang (2000) for shape ≥ 1; for shape &lt; 1, <c>Gamma(a) = Gamma(a+1)·U^(1/a)</c>.</remarks>
    internal static double SampleLogGamma(Random random, double shape)
    {
        if (shape < 1)
        {
            var u = 1.0 - random.NextDouble();
            return SampleLogGamma(random, shape + 1) + Math.Log(u) / shape;
        }

        var d = shape - 1.0 / 3.0;
        var c = 1.0 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = StandardNormal(random);
                v = 1 + c * x;
            }
            while (v <= 0);

            v = v * v * v;
            var u = 1.0 - random.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v)))
            {
                return Math.Log(d * v);
            }
        }
    }

    /// <summary>A Gamma(<paramref name="shape"/>, 1) draw.</summary>
    internal static double SampleGamma(Random random, double shape) => Math.Exp(SampleLogGamma(random, shape));

    /// <summary>A draw from the symmetric Dirichlet(<paramref name="alpha"/>·1) over <paramref name="categories"/> categories.</summary>
    internal static double[] SampleDirichlet(Random random, double alpha, int categories)
    {
        var logs = new double[categories];
        for (var i = 0; i < categories; i++)
        {
            logs[i] = SampleLogGamma(random, alpha);
        }

        var max = logs.Max();
        var p = logs.Select(l => Math.Exp(l - max)).ToArray();
        var sum = p.Sum();
        for (var i = 0; i < categories; i++)
        {
            p[i] /= sum;
        }

        return p;
    }

    /// <summary>A standard normal draw (Box–Muller).</summary>
    internal static double StandardNormal(Random random)
    {
        var u1 = 1.0 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Exact per-class row counts for <paramref name="rows"/> rows: floor shares, then the largest remainders.</summary>
    internal static int[] Apportion(IReadOnlyList<double> proportions, int rows)
    {
        var counts = new int[proportions.Count];
        var remainders = new (double Remainder, int Class)[proportions.Count];
        var assigned = 0;
        for (var c = 0; c < counts.Length; c++)
        {
            var exact = proportions[c] * rows;
            counts[c] = (int)Math.Floor(exact);
            assigned += counts[c];
            remainders[c] = (exact - counts[c], c);
        }

        foreach (var (_, c) in remainders.OrderByDescending(r => r.Remainder).ThenBy(r => r.Class).Take(rows - assigned))
        {
            counts[c]++;
        }

        return counts;
    }

    /// <summary>A generator seeded from <paramref name="seed"/> and <paramref name="labels"/> (<see cref="Hashing.DeriveSeed"/>).</summary>
    internal static Random NewRandom(long seed, params string[] labels) =>
        new((int)(Hashing.DeriveSeed(seed, labels) & int.MaxValue));

    /// <summary>Fisher–Yates from the end, <c>j = random.Next(i + 1)</c>: the order every seeded split here depends on.</summary>
    internal static void Shuffle<T>(Span<T> items, Random random)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static float[][] ComponentMeans(SyntheticOptions options)
    {
        var random = NewRandom(options.Seed, "synthetic", "means");
        var scale = options.Separation / Math.Sqrt(2.0 * options.Features);
        var means = new float[options.Classes * ComponentsPerClass][];
        for (var m = 0; m < means.Length; m++)
        {
            means[m] = new float[options.Features];
            for (var f = 0; f < options.Features; f++)
            {
                means[m][f] = (float)(scale * StandardNormal(random));
            }
        }

        return means;
    }

    private static TabularData Sample(Random random, float[][] means, double[] proportions, int rows, string[] names)
    {
        var counts = Apportion(proportions, rows);
        var labels = new long[rows];
        var next = 0;
        for (var c = 0; c < counts.Length; c++)
        {
            labels.AsSpan(next, counts[c]).Fill(c);
            next += counts[c];
        }

        // Fisher–Yates, so classes are interleaved.
        Shuffle(labels.AsSpan(), random);

        var columns = names.Length;
        var features = new float[rows * columns];
        for (var r = 0; r < rows; r++)
        {
            var mean = means[labels[r] * ComponentsPerClass + random.Next(ComponentsPerClass)];
            var row = features.AsSpan(r * columns, columns);
            for (var f = 0; f < columns; f++)
            {
                row[f] = mean[f] + (float)StandardNormal(random);
            }
        }

        return new TabularData(features, labels, rows, columns, names);
    }
}
