using System.Numerics;
using FederatedFunctions.Core.SecureAggregation;

namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// One silo's partial of an analysis pass as a vector of integers for secure aggregation, and the sum of the silos'
/// vectors back as the merged partial: every count, exact sum and cell-coverage indicator at a fixed place, so that the
/// sum over the silos is the merged statistic and no silo's own value is ever readable.
/// </summary>
/// <remarks>
/// <para>The layout depends on the query only (its columns, declared groups, categories, edges and thresholds), never
/// on the data, so every silo's vector has the same length. Each value is split into 16-bit limbs, one per 32-bit ring
/// element: the sum of up to <see cref="MaxSilos"/> silos' limbs never wraps, and the limbs recombine to the exact total.
/// Counts take <see cref="CountLimbs"/> limbs (48 bits per silo); exact sums (<see cref="ExactSum"/>) take
/// <see cref="SumLimbs"/> limbs, in two's complement, so that negative sums add as the ring does.</para>
/// <para>A silo gives, per group and column: the present and missing counts and the exact Σx and Σx² (the first pass);
/// histogram counts; counts at or below quantile thresholds; value counts of declared categories; over the covariance
/// columns' complete rows, their count, Σxᵢ and Σxᵢxⱼ. It also gives, per reported cell, 1 when it has rows there, so
/// that the sum says how many silos fill each cell (<see cref="CellCoverage"/>), without saying which.</para>
/// <para>From the sums, the mean and the sum of squared deviations are computed in exact rational arithmetic and rounded
/// once, so the merged moments are at least as accurate as Chan's merging of per-silo moments. What the sums cannot
/// give: the min and max (not sums), histograms over the global range (they need the min and max), and groups or values
/// that were not declared (the layout must not depend on the data); the spec validator refuses those.</para>
/// </remarks>
public static class SecureAnalysisVector
{
    /// <summary>Limbs of a count (<see cref="LimbVector.CountLimbs"/>).</summary>
    public const int CountLimbs = LimbVector.CountLimbs;

    /// <summary>Limbs of an exact sum (<see cref="LimbVector.SumLimbs"/>).</summary>
    public const int SumLimbs = LimbVector.SumLimbs;

    /// <summary>Most silos whose limbs add up without wrapping (<see cref="LimbVector.MaxSilos"/>).</summary>
    public const int MaxSilos = LimbVector.MaxSilos;

    /// <summary>The group of every row when there is no group-by.</summary>
    public const string AllRows = "";

    /// <summary>The group of rows whose group-by value is missing.</summary>
    public const string MissingGroup = "(missing)";

    /// <summary>The groups of the layout: every row; or the declared groups, then <c>(other)</c> and <c>(missing)</c>.</summary>
    public static IReadOnlyList<string> Groups(AnalysisQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        return query.GroupBy is null ? [AllRows] : [.. query.Groups ?? [], AnalysisReport.OtherValues, MissingGroup];
    }

    /// <summary>Encodes one silo's partial: <paramref name="own"/> for the counts, and the present values, for the exact sums.</summary>
    /// <param name="query">The pass's query.</param>
    /// <param name="own">The silo's partial of the pass, computed as without secure aggregation.</param>
    /// <param name="values">The present values of a column in a group.</param>
    /// <param name="completeRows">A group's rows with every covariance column present, as values in the covariance's column order.</param>
    /// <exception cref="ArgumentException">A count of more than 2^48 − 1, or a group the query does not declare.</exception>
    public static uint[] Encode(AnalysisQuery query, AnalysisPartial own, Func<string, string, IEnumerable<double>> values, Func<string, IEnumerable<double[]>> completeRows)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(own);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(completeRows);
        var groups = Groups(query);
        if (own.Groups.Keys.FirstOrDefault(g => !groups.Contains(g)) is { } undeclared)
        {
            throw new ArgumentException($"Group '{undeclared}' is not in the query's declared groups: the vector's layout cannot depend on the data.", nameof(own));
        }

        var w = new LimbWriter();
        foreach (var group in groups)
        {
            var g = own.Groups.GetValueOrDefault(group);
            w.Count(g?.Rows ?? 0);
            foreach (var column in query.Numeric)
            {
                var f = g?.Features.GetValueOrDefault(column);
                w.Count(f?.Missing ?? 0);
                if (query.Moments)
                {
                    var (sum, squares) = (new ExactSum(), new ExactSum());
                    foreach (var x in g is null ? [] : values(group, column))
                    {
                        sum.Add(x);
                        squares.AddProduct(x, x);
                    }

                    w.Count(f?.Moments?.Count ?? 0);
                    w.Sum(sum.ToInteger());
                    w.Sum(squares.ToInteger());
                }

                if (query.HistogramEdges.TryGetValue(column, out var edges))
                {
                    var h = f?.Histogram;
                    for (var i = 0; i < edges.Length - 1; i++)
                    {
                        w.Count(h?.Counts[i] ?? 0);
                    }

                    w.Count(h?.Below ?? 0);
                    w.Count(h?.Above ?? 0);
                }

                if (query.GroupBy is not null && query.Thresholds.TryGetValue(column, out var at))
                {
                    for (var i = 0; i < at.Length; i++)
                    {
                        w.Count(f?.CountsAtOrBelow?[i] ?? 0);
                    }
                }
            }

            foreach (var column in query.Moments ? query.Categorical : [])
            {
                var f = g?.Features.GetValueOrDefault(column);
                w.Count(f?.Missing ?? 0);
                foreach (var value in Cells(query, column))
                {
                    w.Count(f?.ValueCounts?.GetValueOrDefault(value) ?? 0);
                }
            }

            if (CovarianceColumns(query) is { } cov)
            {
                var d = cov.Count;
                var sums = Enumerable.Range(0, d).Select(_ => new ExactSum()).ToArray();
                var products = Enumerable.Range(0, d * (d + 1) / 2).Select(_ => new ExactSum()).ToArray();
                foreach (var row in g is null ? [] : completeRows(group))
                {
                    for (int i = 0, p = 0; i < d; i++)
                    {
                        sums[i].Add(row[i]);
                        for (var j = i; j < d; j++, p++)
                        {
                            products[p].AddProduct(row[i], row[j]);
                        }
                    }
                }

                w.Count(g?.CoMoments?.Count ?? 0);
                foreach (var s in sums.Concat(products))
                {
                    w.Sum(s.ToInteger());
                }
            }
        }

        foreach (var (column, at) in Thresholds(query))
        {
            var counts = own.CountsAtOrBelow.GetValueOrDefault(column);
            for (var i = 0; i < at.Length; i++)
            {
                w.Count(counts?[i] ?? 0);
            }
        }

        var coverage = CellCoverage.Of([own], 1);
        foreach (var (group, column, cell) in CoverageCells(query))
        {
            w.Count(coverage.SilosOf(group, column, cell) is { Count: > 0 } ? 1 : 0);
        }

        return w.ToArray();
    }

    /// <summary>Decodes the sum of the silos' vectors (self-masks removed) into the merged partial and the coverage of its cells.</summary>
    /// <param name="query">The pass's query.</param>
    /// <param name="pass">The pass.</param>
    /// <param name="sum">The unmasked sum of the silos' vectors.</param>
    /// <param name="silos">How many silos' vectors were summed.</param>
    /// <param name="minSilos">The analysis's least number of silos per cell.</param>
    /// <exception cref="ArgumentException">
    /// The sum has another length than the query's layout, or an element larger than <paramref name="silos"/> limbs can
    /// add up to: the masks did not cancel (a vector missing, altered, or masked for another attempt).
    /// </exception>
    public static (AnalysisPartial Merged, CellCoverage Coverage) Decode(AnalysisQuery query, int pass, ReadOnlySpan<uint> sum, int silos, int minSilos)
    {
        ArgumentNullException.ThrowIfNull(query);
        var r = new LimbReader(sum, silos);
        var groups = new SortedDictionary<string, GroupPartial>(StringComparer.Ordinal);
        foreach (var group in Groups(query))
        {
            var rows = r.Count();
            var features = new SortedDictionary<string, FeaturePartial>(StringComparer.Ordinal);
            foreach (var column in query.Numeric)
            {
                var missing = r.Count();
                var moments = query.Moments ? FromSums(r.Count(), r.Sum(), r.Sum()) : null;
                Histogram? histogram = null;
                if (query.HistogramEdges.TryGetValue(column, out var edges))
                {
                    var counts = Enumerable.Range(0, edges.Length - 1).Select(_ => r.Count()).ToArray();
                    histogram = new Histogram { Edges = edges, Counts = counts, Below = r.Count(), Above = r.Count() };
                }

                var atOrBelow = query.GroupBy is not null && query.Thresholds.TryGetValue(column, out var at) ? at.Select(_ => r.Count()).ToArray() : null;
                features[column] = new FeaturePartial(missing, moments, histogram, null, atOrBelow);
            }

            foreach (var column in query.Moments ? query.Categorical : [])
            {
                var missing = r.Count();
                var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
                foreach (var value in Cells(query, column))
                {
                    if (r.Count() is var c and > 0)
                    {
                        counts[value] = c;
                    }
                }

                features[column] = new FeaturePartial(missing, null, null, counts);
            }

            CoMoments? co = null;
            if (CovarianceColumns(query) is { } cov)
            {
                var n = r.Count();
                var sums = cov.Select(_ => r.Sum()).ToArray();
                var products = Enumerable.Range(0, cov.Count * (cov.Count + 1) / 2).Select(_ => r.Sum()).ToArray();
                co = FromSums(n, sums, products);
            }

            if (rows > 0)
            {
                groups[group] = new GroupPartial(rows, features, co);
            }
        }

        var thresholds = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (column, at) in Thresholds(query))
        {
            thresholds[column] = at.Select(_ => r.Count()).ToArray();
        }

        var coverage = CellCoverage.OfCounts(minSilos, CoverageCells(query).Select(c => (c.Group, c.Column, c.Cell, r.Count())).ToArray());
        r.End();
        return (new AnalysisPartial("*", pass, groups.Values.Sum(g => g.Rows), groups, thresholds), coverage);
    }

    /// <summary>The moments of values whose count, exact sum and exact sum of squares (<see cref="ExactSum"/> integers) are given; no min or max.</summary>
    public static Moments FromSums(long count, BigInteger sum, BigInteger squares)
    {
        if (count == 0)
        {
            return Moments.Empty;
        }

        var total = ExactSum.ToDouble(sum);
        return new Moments
        {
            Count = count,
            Sum = total,
            // A sum beyond the largest double is reported as infinite, as the plain merge does; it has no compensation.
            SumCompensation = double.IsFinite(total) ? ExactSum.ToDouble(sum - ExactSum.Scaled(total)) : 0,
            Mean = ExactSum.ToDouble(sum, count, ExactSum.ScaleExponent),
            M2 = ExactSum.ToDouble(Deviations(count, sum, sum, squares), count, 2 * ExactSum.ScaleExponent),
        };
    }

    /// <summary>The layout's length for <paramref name="query"/>: the number of 32-bit elements every silo's vector has, counted without building one.</summary>
    public static long Length(AnalysisQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        long perGroup = CountLimbs;
        foreach (var column in query.Numeric)
        {
            perGroup += CountLimbs
                + (query.Moments ? CountLimbs + (2L * SumLimbs) : 0)
                + (query.HistogramEdges.TryGetValue(column, out var edges) ? (edges.Length + 1L) * CountLimbs : 0)
                + (query.GroupBy is not null && query.Thresholds.TryGetValue(column, out var at) ? (long)at.Length * CountLimbs : 0);
        }

        foreach (var column in query.Moments ? query.Categorical : [])
        {
            perGroup += CountLimbs + ((long)Cells(query, column).Count() * CountLimbs);
        }

        if (CovarianceColumns(query) is { } cov)
        {
            perGroup += CountLimbs + ((cov.Count + (cov.Count * (cov.Count + 1L) / 2)) * SumLimbs);
        }

        return (Groups(query).Count * perGroup) + (Thresholds(query).Sum(t => (long)t.Value.Length) * CountLimbs) + (CoverageCells(query).LongCount() * CountLimbs);
    }

    /// <summary>The longest vector a spec may ask each silo for: 2^24 elements, 64 MiB.</summary>
    public const long MaxLength = 1L << 24;

    // n·Σxy − Σx·Σy over 2^(−2·scale), exactly: n times the sum of cross-deviations, at the scale 2^(2·scale).
    private static BigInteger Deviations(long count, BigInteger x, BigInteger y, BigInteger products) =>
        ((products << -ExactSum.ScaleExponent) * count) - (x * y);

    private static CoMoments FromSums(long count, BigInteger[] sums, BigInteger[] products)
    {
        var d = sums.Length;
        if (count == 0)
        {
            return CoMoments.Empty(d);
        }

        var c = new double[d * d];
        for (int i = 0, p = 0; i < d; i++)
        {
            for (var j = i; j < d; j++, p++)
            {
                c[(i * d) + j] = c[(j * d) + i] = ExactSum.ToDouble(Deviations(count, sums[i], sums[j], products[p]), count, 2 * ExactSum.ScaleExponent);
            }
        }

        return new CoMoments { Count = count, Means = sums.Select(s => ExactSum.ToDouble(s, count, ExactSum.ScaleExponent)).ToArray(), C = c };
    }

    private static IReadOnlyList<string>? CovarianceColumns(AnalysisQuery query) => query.Moments && query.Covariance is { Count: >= 2 } cov ? cov : null;

    // A categorical column's cells: its declared categories and (other).
    private static IEnumerable<string> Cells(AnalysisQuery query, string column) =>
        [.. query.Categories?.GetValueOrDefault(column) ?? throw new ArgumentException($"Column '{column}' has no declared categories: secure aggregation counts declared values only.", nameof(query)), AnalysisReport.OtherValues];

    private static IEnumerable<KeyValuePair<string, double[]>> Thresholds(AnalysisQuery query) => query.Thresholds.OrderBy(t => t.Key, StringComparer.Ordinal);

    // The cells whose number of silos the rule of minimum silos per cell needs: over every row and, with a group-by, per group.
    private static IEnumerable<(string? Group, string? Column, string Cell)> CoverageCells(AnalysisQuery query)
    {
        IEnumerable<string?> groups = query.GroupBy is null ? [null] : [null, .. Groups(query)];
        foreach (var group in groups)
        {
            yield return (group, null, CellCoverage.Rows);
            if (CovarianceColumns(query) is not null)
            {
                yield return (group, null, CellCoverage.CoMoments);
            }

            foreach (var column in query.Numeric)
            {
                if (query.Moments)
                {
                    yield return (group, column, CellCoverage.Values);
                }

                if (query.HistogramEdges.TryGetValue(column, out var edges))
                {
                    for (var i = 0; i < edges.Length - 1; i++)
                    {
                        yield return (group, column, CellCoverage.Bin(i));
                    }

                    yield return (group, column, "below");
                    yield return (group, column, "above");
                }
            }

            foreach (var column in query.Moments ? query.Categorical : [])
            {
                foreach (var value in Cells(query, column))
                {
                    yield return (group, column, CellCoverage.Value(value));
                }
            }
        }
    }
}
