namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// The co-moments of several columns over the rows where all are present (complete cases): count, means and the matrix
/// of sums of cross-deviations, mergeable across silos with the multivariate form of Chan's formula. Covariance and
/// correlation follow from it as the central computation over the union would give them.
/// </summary>
public sealed record CoMoments
{
    /// <summary>Complete rows seen.</summary>
    public long Count { get; init; }

    /// <summary>The column means.</summary>
    public required double[] Means { get; init; }

    /// <summary>The co-moment matrix, row-major: C[i, j] = Σ (x_i − mean_i)(x_j − mean_j).</summary>
    public required double[] C { get; init; }

    /// <summary>The number of columns.</summary>
    public int Dimension => Means.Length;

    /// <summary>No row, over <paramref name="dimension"/> columns.</summary>
    public static CoMoments Empty(int dimension) => new() { Means = new double[dimension], C = new double[dimension * dimension] };

    /// <summary>The co-moments of <paramref name="rows"/>, each of <paramref name="dimension"/> values.</summary>
    /// <remarks>
    /// Two passes, as <see cref="Moments.Of"/>: the means (each column's compensated moments), then the cross-deviations
    /// from them. A row-by-row update would carry the rounding of each running mean into every later deviation, which on
    /// data far from zero costs more than the 1e-9 the result must keep.
    /// </remarks>
    /// <exception cref="ArgumentException">A row of another length.</exception>
    public static CoMoments Of(IEnumerable<double[]> rows, int dimension)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var all = rows.ToArray();
        if (all.FirstOrDefault(r => r.Length != dimension) is { } wrong)
        {
            throw new ArgumentException($"A row has {wrong.Length} values; the co-moments are over {dimension} columns.", nameof(rows));
        }

        if (all.Length == 0)
        {
            return Empty(dimension);
        }

        var means = Enumerable.Range(0, dimension).Select(i => Moments.Of(all.Select(r => r[i]).ToArray()).Mean).ToArray();
        var c = new double[dimension * dimension];
        var deviations = new double[dimension];
        foreach (var row in all)
        {
            for (var i = 0; i < dimension; i++)
            {
                deviations[i] = row[i] - means[i];
            }

            for (var i = 0; i < dimension; i++)
            {
                for (var j = i; j < dimension; j++)
                {
                    c[(i * dimension) + j] += deviations[i] * deviations[j];
                }
            }
        }

        for (var i = 0; i < dimension; i++)
        {
            for (var j = 0; j < i; j++)
            {
                c[(i * dimension) + j] = c[(j * dimension) + i];
            }
        }

        return new CoMoments { Count = all.Length, Means = means, C = c };
    }

    /// <summary>The co-moments of the union of two disjoint sets of rows.</summary>
    /// <exception cref="ArgumentException">The two have different dimensions.</exception>
    public static CoMoments Merge(CoMoments a, CoMoments b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Dimension != b.Dimension)
        {
            throw new ArgumentException($"Co-moments over {a.Dimension} and {b.Dimension} columns cannot be merged.", nameof(b));
        }

        if (a.Count == 0)
        {
            return b;
        }

        if (b.Count == 0)
        {
            return a;
        }

        var d = a.Dimension;
        var n = a.Count + b.Count;
        var factor = (double)a.Count * b.Count / n;
        var delta = new double[d];
        var means = new double[d];
        for (var i = 0; i < d; i++)
        {
            delta[i] = b.Means[i] - a.Means[i];
            means[i] = a.Means[i] + (delta[i] * b.Count / n);
        }

        var c = new double[d * d];
        for (var i = 0; i < d; i++)
        {
            for (var j = 0; j < d; j++)
            {
                c[(i * d) + j] = a.C[(i * d) + j] + b.C[(i * d) + j] + (delta[i] * delta[j] * factor);
            }
        }

        return new CoMoments { Count = n, Means = means, C = c };
    }

    /// <summary>The sample covariance of columns <paramref name="i"/> and <paramref name="j"/>; null below 2 rows.</summary>
    public double? Covariance(int i, int j) => Count < 2 ? null : C[(i * Dimension) + j] / (Count - 1);

    /// <summary>The Pearson correlation of columns <paramref name="i"/> and <paramref name="j"/>; null below 2 rows or for a constant column.</summary>
    public double? Correlation(int i, int j)
    {
        var d = Dimension;
        var denominator = Math.Sqrt(C[(i * d) + i] * C[(j * d) + j]);
        return Count < 2 || denominator == 0 ? null : C[(i * d) + j] / denominator;
    }
}
