using System.Numerics;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tests.Analysis;

/// <summary>
/// The secure-aggregation layout of an analysis pass: the sum of the silos' vectors decodes to the merge of their
/// partials (counts equal, moments to double precision or better) and to how many silos fill each cell.
/// </summary>
public sealed class SecureAnalysisVectorTests
{
    private static readonly string[] Groups = ["a", "b"];

    private static AnalysisQuery Query(bool moments = true) => new(
        new AnalysisDataSpec(),
        ["x", "y"],
        moments ? ["colour"] : [],
        "g",
        moments ? ["x", "y"] : null,
        moments,
        new Dictionary<string, double[]> { ["x"] = [-1, 0, 1, 2] },
        moments ? new Dictionary<string, double[]>() : new Dictionary<string, double[]> { ["y"] = [0.5, 1e6], ["x"] = [0] },
        new Dictionary<string, BoundsSpec>(),
        new Dictionary<string, IReadOnlyList<string>> { ["colour"] = ["red", "blue"] },
        Groups);

    // One silo's rows: group, x (null when missing), y, colour.
    private sealed record Row(string Group, double? X, double? Y, string? Colour);

    private static Row[] Rows(Random random, int n, double offset) => Enumerable.Range(0, n).Select(_ => new Row(
        random.Next(5) switch { 0 => "(missing)", 1 => "(other)", 2 => "a", _ => "b" },
        random.Next(8) == 0 ? null : offset + random.NextDouble() * 3 - 1,
        random.Next(8) == 0 ? null : random.NextDouble() * 1e6,
        random.Next(6) switch { 0 => null, 1 => "green", 2 => "red", _ => "blue" })).ToArray();

    // The partial a silo computes without secure aggregation (what SiloAnalysisStep does), from its rows.
    private static AnalysisPartial Partial(string silo, AnalysisQuery q, Row[] rows)
    {
        double? Value(Row r, string c) => c == "x" ? r.X : r.Y;
        var groups = new SortedDictionary<string, GroupPartial>(StringComparer.Ordinal);
        foreach (var members in rows.GroupBy(r => r.Group))
        {
            var features = new SortedDictionary<string, FeaturePartial>(StringComparer.Ordinal);
            foreach (var c in q.Numeric)
            {
                var present = members.Select(r => Value(r, c)).OfType<double>().ToArray();
                features[c] = new FeaturePartial(
                    members.Count() - present.Length,
                    q.Moments ? Moments.Of(present) : null,
                    q.HistogramEdges.TryGetValue(c, out var edges) ? Histogram.Of(present, edges) : null,
                    null,
                    q.Thresholds.TryGetValue(c, out var at) ? QuantileSearch.CountAtOrBelow(present, at) : null);
            }

            if (q.Moments)
            {
                features["colour"] = new FeaturePartial(
                    members.LongCount(r => r.Colour is null),
                    null,
                    null,
                    new SortedDictionary<string, long>(members.Where(r => r.Colour is not null).GroupBy(r => r.Colour is "red" or "blue" ? r.Colour! : "(other)").ToDictionary(g => g.Key, g => g.LongCount()), StringComparer.Ordinal));
            }

            var co = q.Moments ? CoMoments.Of(members.Where(r => r.X is not null && r.Y is not null).Select(r => new[] { r.X!.Value, r.Y!.Value }), 2) : null;
            groups[members.Key] = new GroupPartial(members.Count(), features, co);
        }

        var thresholds = q.Thresholds.ToDictionary(t => t.Key, t => QuantileSearch.CountAtOrBelow(rows.Select(r => Value(r, t.Key)).OfType<double>().ToArray(), t.Value), StringComparer.Ordinal);
        return new AnalysisPartial(silo, 1, rows.Length, groups, thresholds);
    }

    private static uint[] Encode(AnalysisQuery q, AnalysisPartial partial, Row[] rows) => SecureAnalysisVector.Encode(
        q,
        partial,
        (g, c) => rows.Where(r => r.Group == g).Select(r => c == "x" ? r.X : r.Y).OfType<double>(),
        g => rows.Where(r => r.Group == g && r.X is not null && r.Y is not null).Select(r => new[] { r.X!.Value, r.Y!.Value }));

    private static uint[] Sum(IEnumerable<uint[]> vectors) =>
        vectors.Aggregate((a, b) => a.Zip(b, (x, y) => unchecked(x + y)).ToArray());

    // The truth, exactly: n·Σxy − Σx·Σy over n, from each double's exact integer at the accumulator's scale
    // (ExactSumTests.Reference, which does not use the accumulator), rounded once.
    private static double Central(IReadOnlyList<(double X, double Y)> pairs)
    {
        BigInteger sx = 0, sy = 0, sxy = 0;
        foreach (var (x, y) in pairs)
        {
            var (a, b) = (ExactSumTests.Reference(x), ExactSumTests.Reference(y));
            (sx, sy, sxy) = (sx + a, sy + b, sxy + (a * b));
        }

        // At the scale 2^(2s): n·Σxy − Σx·Σy, with Σxy already at 2^(2s).
        return ExactSum.ToDouble((sxy * pairs.Count) - (sx * sy), pairs.Count, 2 * ExactSum.ScaleExponent);
    }

    // Decoded from exact sums, a statistic is the truth rounded once; the merge of per-silo moments (Chan's formula) is
    // within the 1e-9 of it, not exact: far from zero, the difference of two silos' means loses digits. A
    // cross-moment of nearly uncorrelated columns is near zero, so its merge is measured against √(Cxx·Cyy) (the
    // correlation's scale), the usual normwise error: no floating-point merge keeps relative digits of a near-zero value.
    private static void Close(double truth, double merged, double decoded, string what, double? scale = null)
    {
        Assert.True(Math.Abs(truth - decoded) <= 2.3e-16 * Math.Abs(truth), $"{what}: truth {truth:R}, decoded {decoded:R}");
        Assert.True(Math.Abs(truth - merged) <= 1e-9 * (scale ?? Math.Abs(truth)), $"{what}: truth {truth:R}, merged {merged:R}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheSumOfTheSilosVectors_DecodesToTheMergeOfTheirPartials(bool firstPass)
    {
        var q = Query(firstPass);
        var random = new Random(5);
        // Far from zero, so that a sum of squares in doubles would lose every digit; one silo without rows.
        var silos = new[] { Rows(random, 300, 1e8), Rows(random, 41, 1e8), Rows(random, 0, 1e8), Rows(random, 1000, 1e8) };
        var partials = silos.Select((rows, i) => Partial($"silo-{i}", q, rows)).ToArray();
        var vectors = silos.Select((rows, i) => Encode(q, partials[i], rows)).ToArray();
        Assert.All(vectors, v => Assert.Equal(SecureAnalysisVector.Length(q), v.Length));

        var (decoded, coverage) = SecureAnalysisVector.Decode(q, 1, Sum(vectors), silos.Length, 2);
        var merged = AnalysisMerge.Merge(partials);
        var sets = CellCoverage.Of(partials, 2);

        Assert.Equal(merged.Rows, decoded.Rows);
        Assert.Equal(merged.Groups.Keys, decoded.Groups.Keys);
        Assert.Equal(merged.CountsAtOrBelow.Keys.Order(), decoded.CountsAtOrBelow.Keys.Order());
        foreach (var (column, counts) in merged.CountsAtOrBelow)
        {
            Assert.Equal(counts, decoded.CountsAtOrBelow[column]);
        }

        foreach (var (name, expected) in merged.Groups)
        {
            var actual = decoded.Groups[name];
            Assert.Equal(expected.Rows, actual.Rows);
            Assert.Equal(coverageOf(sets, name, null, CellCoverage.Rows), coverageOf(coverage, name, null, CellCoverage.Rows));
            foreach (var (column, f) in expected.Features)
            {
                var d = actual.Features[column];
                Assert.Equal(f.Missing, d.Missing);
                Assert.Equal(f.ValueCounts, d.ValueCounts);
                Assert.Equal(f.CountsAtOrBelow, d.CountsAtOrBelow);
                Assert.Equal(f.Histogram?.Counts, d.Histogram?.Counts);
                Assert.Equal((f.Histogram?.Below, f.Histogram?.Above), (d.Histogram?.Below, d.Histogram?.Above));
                if (f.Moments is { } m)
                {
                    var values = silos.SelectMany(rows => rows).Where(r => r.Group == name).Select(r => column == "x" ? r.X : r.Y).OfType<double>().ToArray();
                    Assert.Equal(m.Count, d.Moments!.Count);
                    var total = values.Aggregate(BigInteger.Zero, (t, v) => t + ExactSumTests.Reference(v));
                    Close(ExactSum.ToDouble(total, 1, ExactSum.ScaleExponent), m.Total, d.Moments.Total, $"{name}/{column} sum");
                    Close(ExactSum.ToDouble(total, values.Length, ExactSum.ScaleExponent), m.Mean, d.Moments.Mean, $"{name}/{column} mean");
                    Close(Central([.. values.Select(v => (v, v))]), m.M2, d.Moments.M2, $"{name}/{column} M2");
                    Assert.Equal(coverageOf(sets, name, column, CellCoverage.Values), coverageOf(coverage, name, column, CellCoverage.Values));
                }

                for (var i = 0; i < (f.Histogram?.Counts.Length ?? 0); i++)
                {
                    Assert.Equal(coverageOf(sets, name, column, CellCoverage.Bin(i)), coverageOf(coverage, name, column, CellCoverage.Bin(i)));
                }

                foreach (var value in f.ValueCounts?.Keys ?? [])
                {
                    Assert.Equal(coverageOf(sets, name, column, CellCoverage.Value(value)), coverageOf(coverage, name, column, CellCoverage.Value(value)));
                }
            }

            if (expected.CoMoments is { } co)
            {
                var complete = silos.SelectMany(rows => rows).Where(r => r.Group == name && r.X is not null && r.Y is not null).ToArray();
                Assert.Equal(co.Count, actual.CoMoments!.Count);
                Close(Central([.. complete.Select(r => (r.X!.Value, r.X!.Value))]), co.C[0], actual.CoMoments.C[0], $"{name} C[x, x]");
                Close(Central([.. complete.Select(r => (r.X!.Value, r.Y!.Value))]), co.C[1], actual.CoMoments.C[1], $"{name} C[x, y]", Math.Sqrt(co.C[0] * co.C[3]));
                Assert.Equal(actual.CoMoments.C[1], actual.CoMoments.C[2]);
                Close(Central([.. complete.Select(r => (r.Y!.Value, r.Y!.Value))]), co.C[3], actual.CoMoments.C[3], $"{name} C[y, y]");
            }
        }

        // Over every row, too: how many silos have rows at all.
        Assert.Equal(3, coverage.SilosOf(null, null, CellCoverage.Rows)!.Count);

        static int? coverageOf(CellCoverage c, string? group, string? column, string cell) => c.SilosOf(group, column, cell)?.Count;
    }

    [Fact]
    public void ExactSums_GiveTheVarianceThatDoublesLose()
    {
        // 1e16 + {1, 2, 3}: the mean and M2 of the exact values are 1e16 + 2 and 2; in doubles, x² loses the digits.
        var values = new[] { 1e16 + 2, 1e16 + 4, 1e16 + 6 };
        var (sum, squares) = (new ExactSum(), new ExactSum());
        foreach (var x in values)
        {
            sum.Add(x);
            squares.AddProduct(x, x);
        }

        var m = SecureAnalysisVector.FromSums(3, sum.ToInteger(), squares.ToInteger());
        Assert.Equal(1e16 + 4, m.Mean);
        Assert.Equal(8, m.M2);
        Assert.Equal(4, m.Variance);
        Assert.Equal(3e16 + 12, m.Total);
    }

    [Fact]
    public void ASumWhoseMasksDidNotCancel_OrOfAnotherLayout_IsRefused()
    {
        var q = Query();
        var rows = Rows(new Random(1), 50, 0);
        var vector = Encode(q, Partial("silo-0", q, rows), rows);
        var masked = (uint[])vector.Clone();
        masked[3] = unchecked(masked[3] + 0x8000_0000u);
        Assert.Throws<ArgumentException>(() => SecureAnalysisVector.Decode(q, 1, masked, 2, 2));
        Assert.Throws<ArgumentException>(() => SecureAnalysisVector.Decode(q, 1, vector[..^1], 2, 2));
        Assert.Throws<ArgumentException>(() => SecureAnalysisVector.Decode(q, 1, [.. vector, 0u], 2, 2));

        // A group the query does not declare never enters a vector: the layout must not depend on the data.
        var stray = Partial("silo-0", q, [new Row("c", 1, 1, "red")]);
        Assert.Throws<ArgumentException>(() => SecureAnalysisVector.Encode(q, stray, (_, _) => [], _ => []));
    }

    [Fact]
    public void TheMaskingRunOfAnAnalysis_IsNeverARunId_SoNoTrainingRunSharesItsMasksOrRecords()
    {
        var run = MaskingAttempt.ForAnalysis("abc", "0123456789abcdef");
        Assert.Equal("abc-0123456789abcdef-", run);
        Assert.False(RunSpecValidator.IsValidRunId(run));
        Assert.True(RunSpecValidator.IsValidRunId(run[..^1]));
    }

    [Fact]
    public void ASumBeyondTheLargestDouble_IsInfinite_AsThePlainMergeReportsIt()
    {
        var q = Query() with { GroupBy = null, Groups = null, Categorical = [], Covariance = null, HistogramEdges = new Dictionary<string, double[]>() };
        var rows = new[] { new Row(SecureAnalysisVector.AllRows, 1.5e308, 1, null) };
        var vectors = Enumerable.Range(0, 2).Select(i => Encode(q, Partial($"silo-{i}", q, rows), rows)).ToArray();

        var (merged, _) = SecureAnalysisVector.Decode(q, 1, Sum(vectors), 2, 1);

        var x = merged.Groups[SecureAnalysisVector.AllRows].Features["x"].Moments!;
        Assert.Equal(double.PositiveInfinity, x.Total);
        Assert.Equal(1.5e308, x.Mean);
    }
}
