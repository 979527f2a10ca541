using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>The rules of <c>groups</c> and of <c>privacy.secureAggregation</c>, and what secure aggregation asks of the rest of the spec.</summary>
/// <remarks>
/// Secure aggregation is on by default in eyes-off mode, and cannot be turned off there. Under it the aggregator reads sums only (<see cref="SecureAnalysisVector"/>), so every statistic must be
/// a sum whose place in the vector the spec fixes: min and max (not sums) and histograms over the global range (they need
/// them) are refused, and the values counted and the groups must be declared.
/// </remarks>
internal static class AnalysisSecureAggregationValidator
{
    public static void Validate(AnalysisSpec spec, Action<string, string, string> add)
    {
        if (spec.Groups is { } groups)
        {
            ValidateGroups(spec, groups, add);
        }

        if (spec.Privacy.Mode == PrivacyModes.EyesOff && spec.Privacy.SecureAggregation == false)
        {
            add("$.privacy.secureAggregation", "eyes-off", "privacy.secureAggregation cannot be false in eyes-off mode: each silo's partial would be readable outside the silo, and eyes-off lets only aggregates out.");
        }

        if (!spec.Privacy.SecurelyAggregated)
        {
            return;
        }

        // Eyes-off refuses extremes, global ranges and a single silo under its own rule already: not reported twice.
        const string Why = "secure aggregation reveals sums over the silos only";
        var eyesOff = spec.Privacy.Mode == PrivacyModes.EyesOff;
        if (spec.Privacy.MinSilos < 2 && !eyesOff)
        {
            add("$.privacy.minSilos", "secure-aggregation", $"privacy.minSilos must be at least 2 with privacy.secureAggregation: a lone silo's masked partial has no mask; got {spec.Privacy.MinSilos}.");
        }

        if (spec.Silos.Count > SecureAnalysisVector.MaxSilos)
        {
            add("$.silos", "secure-aggregation", $"silos may name at most {SecureAnalysisVector.MaxSilos} silos with privacy.secureAggregation (the sums' limbs would wrap); got {spec.Silos.Count}.");
        }

        if (spec.GroupBy is not null && spec.Groups is null)
        {
            add("$.groups", "secure-aggregation", "groups is required with groupBy and privacy.secureAggregation: the groups must be declared, because " + Why + " at places the spec fixes.");
        }

        for (var i = 0; i < spec.Features.Count; i++)
        {
            var feature = spec.Features[i];
            var path = $"$.features[{i}]";
            for (var j = 0; j < feature.Statistics.Count; j++)
            {
                if (feature.Statistics[j] is AnalysisStatistics.Min or AnalysisStatistics.Max && !eyesOff)
                {
                    add($"{path}.statistics[{j}]", "secure-aggregation", $"{path[2..]}.statistics[{j}]: {feature.Statistics[j]} is not available with privacy.secureAggregation; an extreme is not a sum, and {Why}.");
                }
            }

            if (feature.Statistics.Contains(AnalysisStatistics.ValueCounts) && feature.Categories is null)
            {
                add($"{path}.categories", "secure-aggregation", $"{path[2..]}.categories is required for valueCounts with privacy.secureAggregation: the values counted must be declared.");
            }

            if (feature.Histogram is { Edges: null, Min: null, Bins: not null } && !eyesOff)
            {
                add($"{path}.histogram", "secure-aggregation", $"{path[2..]}.histogram over the global range needs the global min and max, which {Why}: give min and max, or edges.");
            }
        }
    }

    /// <summary>Refuses a securely aggregated spec whose vector would be over <see cref="SecureAnalysisVector.MaxLength"/>; call it on a spec with no other error.</summary>
    public static void ValidateSize(AnalysisSpec spec, Action<string, string, string> add)
    {
        if (!spec.Privacy.SecurelyAggregated)
        {
            return;
        }

        var length = SecureAnalysisVector.Length(AnalysisQuery.FirstPass(spec));
        if (length > SecureAnalysisVector.MaxLength)
        {
            add("$.features", "size", $"Under secure aggregation each silo would send {length} ring elements per pass, more than {SecureAnalysisVector.MaxLength}: every exact sum takes {SecureAnalysisVector.SumLimbs}. Ask for fewer groups, columns or covariance columns.");
        }
    }

    private static void ValidateGroups(AnalysisSpec spec, IReadOnlyList<string> groups, Action<string, string, string> add)
    {
        if (spec.GroupBy is null)
        {
            add("$.groups", "not-allowed", "groups is set but groupBy is not.");
        }

        if (groups.Count == 0 || groups.Count > AnalysisSpecValidator.MaxCategories)
        {
            add("$.groups", "count", $"groups must hold 1 to {AnalysisSpecValidator.MaxCategories} values (limit MaxCategories); got {groups.Count}.");
        }

        for (var i = 0; i < groups.Count; i++)
        {
            if (groups[i] is null or { Length: 0 or > 256 } || groups[i] is AnalysisReport.OtherValues or SecureAnalysisVector.MissingGroup)
            {
                add($"$.groups[{i}]", "pattern", $"groups[{i}] must be 1-256 characters and neither {SpecPath.Quote(AnalysisReport.OtherValues)} nor {SpecPath.Quote(SecureAnalysisVector.MissingGroup)}; got {SpecPath.Quote(groups[i])}.");
            }
            else if (groups.Take(i).Contains(groups[i], StringComparer.Ordinal))
            {
                add($"$.groups[{i}]", "duplicate", $"groups[{i}] repeats {SpecPath.Quote(groups[i])}.");
            }
        }
    }
}
