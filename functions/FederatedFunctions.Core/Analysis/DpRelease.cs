using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Analysis;

/// <summary>What a differentially private result spent, and the noise of each query it released.</summary>
/// <param name="Mechanism"><c>laplace</c> or <c>gaussian</c>.</param>
/// <param name="Budget">The budget charged.</param>
/// <param name="Epsilon">The ε of the whole result (the sum of the queries').</param>
/// <param name="Delta">The δ of the whole result (gaussian); null for laplace.</param>
/// <param name="EpsilonPerQuery">Each query's share of ε.</param>
/// <param name="DeltaPerQuery">Each query's share of δ (gaussian).</param>
/// <param name="Queries">Every query released, in the order its noise was drawn.</param>
/// <param name="Execution">The execution of the analysis that drew the noise: one execution releases one result.</param>
public sealed record DpReleaseInfo(string Mechanism, string Budget, double Epsilon, double? Delta, double EpsilonPerQuery, double? DeltaPerQuery, IReadOnlyList<DpQuery> Queries, string Execution);

/// <summary>One query of a differentially private result and its noise.</summary>
/// <param name="Name"><c>{column}.{query}</c>: <c>counts</c> (present, missing), <c>sum</c>, <c>m2</c> (sum of squared deviations), <c>histogram</c> or <c>valueCounts</c>.</param>
/// <param name="Sensitivity">Its sensitivity under adding or removing one row: L1 for laplace, L2 for gaussian (equal here, since one row changes one coordinate).</param>
/// <param name="Scale">The noise's scale: b of Lap(b), or σ of N(0, σ²).</param>
/// <param name="StandardDeviation">The noise's standard deviation per coordinate (√2·b, or σ).</param>
public sealed record DpQuery(string Name, double Sensitivity, double Scale, double StandardDeviation);

/// <summary>
/// The differentially private result of an analysis: noise added once, centrally, to the merged exact statistics, then
/// post-processed (rounding, clamping, suppression) without looking at the exact values again.
/// </summary>
/// <remarks>
/// <para><b>Neighbouring datasets</b>: adding or removing one row of one silo. Values are clamped to the declared bounds
/// [a, b] in the silo, so the sensitivities are: <c>counts</c> (present and missing, one row is one of them) 1; <c>sum</c>
/// max(|a|, |b|); <c>m2</c>, the sum of squared deviations from the mean, (b − a)² (adding x to n rows of mean μ adds
/// n/(n+1)·(x − μ)² ≤ (b − a)²); a histogram's cells (bins, below, above) 1; value counts (each category, other, missing) 1.</para>
/// <para><b>Split</b>: the analysis's ε (and δ) is split equally over the queries (<see cref="Plan"/>); by basic composition
/// the whole result is (ε, δ)-DP. Laplace noise has scale Δ/ε_q; Gaussian noise has the analytic σ for (ε_q, δ_q)
/// (<see cref="NoiseCalibration"/>).</para>
/// <para><b>Post-processing</b>, which costs nothing: counts are rounded and at least 0; mean = noisy sum / noisy count,
/// clamped to the bounds; variance = noisy m2 / (noisy count − 1), clamped to [0, (b − a)²·n/(4(n − 1))]; stddev its root.
/// Small-cell suppression is decided on the noisy counts, never on the exact ones (a decision on exact counts would be
/// a release outside the mechanism).</para>
/// <para>Not guaranteed: the floating-point samplers leak through the pattern of representable doubles (Mironov 2012);
/// rows read is not released.</para>
/// </remarks>
public static class DpRelease
{
    /// <summary>The queries a spec releases, with their sensitivities and, from its ε (and δ), their noise.</summary>
    /// <exception cref="ArgumentException">The spec has no differential privacy, or is not valid under it.</exception>
    public static IReadOnlyList<DpQuery> Plan(AnalysisSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var dp = spec.Privacy.DifferentialPrivacy ?? throw new ArgumentException("The spec has no differential privacy.", nameof(spec));
        var named = new List<(string Name, double Sensitivity)>();
        foreach (var feature in spec.Features)
        {
            var stats = feature.Statistics;
            if (stats.Contains(AnalysisStatistics.ValueCounts))
            {
                named.Add(($"{feature.Column}.valueCounts", 1));
                continue;
            }

            named.Add(($"{feature.Column}.counts", 1));
            var (a, b) = feature.Bounds is { } bounds ? (bounds.Min, bounds.Max) : (double.NaN, double.NaN);
            if (stats.Contains(AnalysisStatistics.Sum) || stats.Contains(AnalysisStatistics.Mean))
            {
                named.Add(($"{feature.Column}.sum", Math.Max(Math.Abs(a), Math.Abs(b))));
            }

            if (stats.Contains(AnalysisStatistics.Variance) || stats.Contains(AnalysisStatistics.StdDev))
            {
                named.Add(($"{feature.Column}.m2", (b - a) * (b - a)));
            }

            if (stats.Contains(AnalysisStatistics.Histogram))
            {
                named.Add(($"{feature.Column}.histogram", 1));
            }
        }

        if (named.Any(q => !double.IsFinite(q.Sensitivity)))
        {
            throw new ArgumentException("A value statistic under differential privacy needs finite declared bounds.", nameof(spec));
        }

        var (epsilon, delta) = Share(dp, named.Count);
        return named.Select(q =>
        {
            var scale = dp.Mechanism == DpMechanisms.Laplace
                ? NoiseCalibration.LaplaceScale(q.Sensitivity, epsilon)
                : NoiseCalibration.AnalyticGaussianSigma(q.Sensitivity, epsilon, delta!.Value);
            return new DpQuery(q.Name, q.Sensitivity, scale, dp.Mechanism == DpMechanisms.Laplace ? Math.Sqrt(2) * scale : scale);
        }).ToArray();
    }

    /// <summary>
    /// The result: the merged first pass's statistics with noise from <paramref name="source"/>, drawn in the order of
    /// <see cref="Plan"/> (and, within a query, of its coordinates), then post-processed.
    /// </summary>
    /// <param name="analysisId">The analysis.</param>
    /// <param name="spec">Its spec, with differential privacy.</param>
    /// <param name="silos">The silos that took part.</param>
    /// <param name="first">The merged first pass.</param>
    /// <param name="k">The least rows per reported cell, applied to the noisy counts.</param>
    /// <param name="execution">The execution whose noise this is.</param>
    /// <param name="source">The noise: <see cref="CryptoGaussianSource"/> for real privacy.</param>
    public static AnalysisResult Build(string analysisId, AnalysisSpec spec, IReadOnlyList<string> silos, AnalysisPartial first, int k, string execution, INoiseSource source)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(source);
        var dp = spec.Privacy.DifferentialPrivacy ?? throw new ArgumentException("The spec has no differential privacy.", nameof(spec));
        var plan = Plan(spec);
        var queries = plan.ToDictionary(q => q.Name, StringComparer.Ordinal);
        var overall = AnalysisReport.Overall(first);
        double Noisy(double exact, DpQuery q) =>
            exact + (q.Scale * (dp.Mechanism == DpMechanisms.Laplace ? source.NextStandardLaplace() : source.NextStandardNormal()));
        long Count(long exact, DpQuery q) => (long)Math.Clamp(Math.Round(Noisy(exact, q)), 0, 1e15);

        var results = new Dictionary<string, FeatureResult>(StringComparer.Ordinal);
        foreach (var feature in spec.Features)
        {
            var stats = feature.Statistics;
            var partial = overall.Features.GetValueOrDefault(feature.Column) ?? new FeaturePartial(0, Moments.Empty, null, null);
            if (queries.GetValueOrDefault($"{feature.Column}.valueCounts") is { } vq)
            {
                var cells = AnalysisReport.Cells(partial.ValueCounts, feature.Categories).ToDictionary(c => c.Key, c => Count(c.Value, vq), StringComparer.Ordinal);
                results[feature.Column] = new FeatureResult { Missing = Count(partial.Missing, vq), ValueCounts = AnalysisReport.ValueCounts(cells, k) };
                continue;
            }

            var m = partial.Moments ?? Moments.Empty;
            var cq = queries[$"{feature.Column}.counts"];
            var (n, missing) = (Count(m.Count, cq), Count(partial.Missing, cq));
            double? sum = queries.GetValueOrDefault($"{feature.Column}.sum") is { } sq ? Noisy(m.Total, sq) : null;
            double? m2 = queries.GetValueOrDefault($"{feature.Column}.m2") is { } mq ? Noisy(m.M2, mq) : null;
            var histogram = queries.GetValueOrDefault($"{feature.Column}.histogram") is { } hq && partial.Histogram is { } h
                ? new Histogram { Edges = h.Edges, Counts = h.Counts.Select(c => Count(c, hq)).ToArray(), Below = Count(h.Below, hq), Above = Count(h.Above, hq) }
                : null;
            long? reportedMissing = stats.Contains(AnalysisStatistics.Missing) ? missing : null;
            if (!CellSuppression.Reportable(n, k))
            {
                results[feature.Column] = new FeatureResult { Missing = reportedMissing, Suppressed = true };
                continue;
            }

            var (a, b) = feature.Bounds is { } bounds ? (bounds.Min, bounds.Max) : (0.0, 0.0);
            double? variance = m2 is { } s2 && n >= 2 ? Math.Clamp(s2 / (n - 1), 0, (b - a) * (b - a) * n / (4.0 * (n - 1))) : null;
            results[feature.Column] = new FeatureResult
            {
                Count = stats.Contains(AnalysisStatistics.Count) ? n : null,
                Missing = reportedMissing,
                Sum = stats.Contains(AnalysisStatistics.Sum) ? sum : null,
                Mean = stats.Contains(AnalysisStatistics.Mean) && sum is { } total && n > 0 ? Math.Clamp(total / n, a, b) : null,
                Variance = stats.Contains(AnalysisStatistics.Variance) ? variance : null,
                Stddev = stats.Contains(AnalysisStatistics.StdDev) && variance is { } v ? Math.Sqrt(v) : null,
                Histogram = histogram is null ? null : AnalysisReport.Suppress(histogram, k),
            };
        }

        var (epsilon, delta) = Share(dp, plan.Count);
        var info = new DpReleaseInfo(dp.Mechanism, dp.Budget, dp.Epsilon, dp.Delta, epsilon, delta, plan, execution);
        return new AnalysisResult(analysisId, silos, spec.Privacy.Mode, k, null, results, null, null, info);
    }

    // Each query's equal share of ε and δ (basic composition).
    private static (double Epsilon, double? Delta) Share(AnalysisDifferentialPrivacySpec dp, int queries) =>
        queries == 0 ? (dp.Epsilon, dp.Delta) : (dp.Epsilon / queries, dp.Delta / queries);
}
