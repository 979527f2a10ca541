using System.Globalization;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>The rules of <c>privacy.differentialPrivacy</c>, and what it asks of the rest of the spec.</summary>
/// <remarks>
/// Under differential privacy only what <see cref="DpRelease"/> can make private is accepted: each value statistic needs
/// declared bounds (its sensitivity), the categories counted must be declared (a value's name must not come from the
/// data), and statistics this design cannot release privately (min, max, quantiles, group-by, covariance, histograms over
/// the data's own range) are refused rather than released exactly.
/// </remarks>
internal static class AnalysisDpValidator
{
    /// <summary>The largest ε an analysis may spend.</summary>
    public const double MaxEpsilon = 100;

    private const string Section = "$.privacy.differentialPrivacy";

    public static void Validate(AnalysisSpec spec, AnalysisDifferentialPrivacySpec dp, Action<string, string, string> add)
    {
        if (!DpMechanisms.All.Contains(dp.Mechanism, StringComparer.Ordinal))
        {
            add($"{Section}.mechanism", "enum", $"privacy.differentialPrivacy.mechanism must be one of {string.Join(", ", DpMechanisms.All)}; got {SpecPath.Quote(dp.Mechanism)}.");
        }

        if (!(dp.Epsilon > 0 && dp.Epsilon <= MaxEpsilon))
        {
            add($"{Section}.epsilon", "range", $"privacy.differentialPrivacy.epsilon must be more than 0 and at most {MaxEpsilon.ToString(CultureInfo.InvariantCulture)}; got {dp.Epsilon.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (dp.Mechanism == DpMechanisms.Gaussian && dp.Delta is not { } delta)
        {
            add($"{Section}.delta", "required", "privacy.differentialPrivacy.delta is required with the gaussian mechanism, which is (epsilon, delta)-DP; choose it well below 1/rows.");
        }
        else if (dp.Mechanism == DpMechanisms.Gaussian && !(dp.Delta is > 0 and < 1))
        {
            add($"{Section}.delta", "range", $"privacy.differentialPrivacy.delta must be more than 0 and less than 1; got {dp.Delta!.Value.ToString(CultureInfo.InvariantCulture)}.");
        }
        else if (dp.Mechanism == DpMechanisms.Laplace && dp.Delta is not null)
        {
            add($"{Section}.delta", "not-allowed", "privacy.differentialPrivacy.delta is set but the laplace mechanism is pure epsilon-DP (delta 0); leave it out, or use gaussian.");
        }

        if (!RunSpecValidator.IsValidSiloId(dp.Budget))
        {
            add($"{Section}.budget", "pattern", $"privacy.differentialPrivacy.budget must be a budget key of the host's configuration (Analysis:Budgets:{{key}}): 1-63 characters of lowercase a-z, 0-9 and '-'; got {SpecPath.Quote(dp.Budget)}.");
        }

        if (spec.GroupBy is not null)
        {
            add("$.groupBy", "dp", "groupBy is not available with privacy.differentialPrivacy: the groups' names come from the data (not built yet).");
        }

        if (spec.Covariance is not null)
        {
            add("$.covariance", "dp", "covariance is not available with privacy.differentialPrivacy (not built yet).");
        }

        for (var i = 0; i < spec.Features.Count; i++)
        {
            Feature(spec.Features[i], $"$.features[{i}]", add);
        }
    }

    private static void Feature(FeatureAnalysis feature, string path, Action<string, string, string> add)
    {
        for (var j = 0; j < feature.Statistics.Count; j++)
        {
            var reason = feature.Statistics[j] switch
            {
                AnalysisStatistics.Min or AnalysisStatistics.Max => "an extreme is one row's value, and its bound is the declared bound",
                AnalysisStatistics.Quantiles => "the quantile search is not made private in this design",
                _ => null,
            };
            if (reason is not null)
            {
                add($"{path}.statistics[{j}]", "dp", $"{path[2..]}.statistics[{j}]: {feature.Statistics[j]} is not available with privacy.differentialPrivacy: {reason}.");
            }
        }

        var value = feature.Statistics.FirstOrDefault(s => s is AnalysisStatistics.Sum or AnalysisStatistics.Mean or AnalysisStatistics.Variance or AnalysisStatistics.StdDev);
        if (value is not null && feature.Bounds is null)
        {
            add($"{path}.bounds", "required", $"{path[2..]}.bounds is required with privacy.differentialPrivacy for {value}: the declared min and max set its sensitivity (values are clamped to them).");
        }

        if (feature.Histogram is { Edges: null, Min: null })
        {
            add($"{path}.histogram", "dp", $"{path[2..]}.histogram over the global range is not available with privacy.differentialPrivacy: the range would come from the data; give edges, or bins with min and max.");
        }

        if (feature.Statistics.Contains(AnalysisStatistics.ValueCounts) && feature.Categories is null)
        {
            add($"{path}.categories", "required", $"{path[2..]}.categories is required for valueCounts with privacy.differentialPrivacy: the values reported must not come from the data.");
        }
    }
}
