using System.Globalization;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>The rules of an analysis spec: every violation, each with its JSON path, a rule id and a message.</summary>
public static class AnalysisSpecValidator
{
    /// <summary>Most columns an analysis names.</summary>
    public const int MaxFeatures = 200;

    /// <summary>Most bins of a histogram (a privacy filter as well as a size limit: more bins, smaller cells).</summary>
    public const int MaxBins = 200;

    /// <summary>Most quantiles of a column.</summary>
    public const int MaxQuantiles = 20;

    /// <summary>The least <c>privacy.minCount</c> of an eyes-off analysis (DataSHIELD's default threshold).</summary>
    public const int MinEyesOffCount = 3;

    /// <summary>Most columns of a covariance matrix.</summary>
    public const int MaxCovariance = 50;

    /// <summary>Most declared categories of a column.</summary>
    public const int MaxCategories = 1000;

    /// <summary>Every violation; empty when the spec is valid.</summary>
    public static IReadOnlyList<SpecError> Validate(AnalysisSpec spec, SpecLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        limits ??= SpecLimits.Default;
        var errors = new List<SpecError>();
        void Add(string path, string rule, string message) => errors.Add(new SpecError(path, rule, message));

        if (spec.AnalysisId is { } id && !RunSpecValidator.IsValidRunId(id))
        {
            Add("$.analysisId", "pattern", $"analysisId must be 3-63 characters of lowercase a-z, 0-9 and '-', starting and ending with a letter or digit; got {SpecPath.Quote(id)}.");
        }

        if (spec.Silos.Count == 0 || spec.Silos.Count > limits.MaxSilos)
        {
            Add("$.silos", "count", $"silos must name 1 to {limits.MaxSilos} silos (limit MaxSilos); got {spec.Silos.Count}.");
        }

        for (var i = 0; i < spec.Silos.Count; i++)
        {
            if (!RunSpecValidator.IsValidSiloId(spec.Silos[i]))
            {
                Add($"$.silos[{i}]", "pattern", $"silos[{i}] must be a silo id: 1-63 characters of lowercase a-z, 0-9 and '-'; got {SpecPath.Quote(spec.Silos[i])}.");
            }
            else if (spec.Silos.Take(i).Contains(spec.Silos[i], StringComparer.Ordinal))
            {
                Add($"$.silos[{i}]", "duplicate", $"silos[{i}] repeats {SpecPath.Quote(spec.Silos[i])}.");
            }
        }

        if (!DataFormats.Tables.Contains(spec.Data.Format, StringComparer.Ordinal))
        {
            Add("$.data.format", "enum", $"data.format must be one of {string.Join(", ", DataFormats.Tables)}; got {SpecPath.Quote(spec.Data.Format)}.");
        }

        // The run specs' rules: besides escaping the container, no '.' or empty segment, which storage normalises, so that
        // one blob has one spelling (a privacy budget is keyed by it).
        if ((spec.Data.Path is null ? "it is missing" : RunSpecValidator.BlobPathProblem(spec.Data.Path)) is { } problem)
        {
            Add("$.data.path", "pattern", $"data.path must be a relative blob path inside the silo's container: {problem}; got {SpecPath.Quote(spec.Data.Path)}.");
        }

        var eyesOff = spec.Privacy.Mode == PrivacyModes.EyesOff;
        ValidatePrivacy(spec.Privacy, limits, Add);
        if (spec.Privacy.DifferentialPrivacy is { } dp)
        {
            AnalysisDpValidator.Validate(spec, dp, Add);
        }

        AnalysisSecureAggregationValidator.Validate(spec, Add);

        if (spec.Features.Count == 0 || spec.Features.Count > MaxFeatures)
        {
            Add("$.features", "count", $"features must name 1 to {MaxFeatures} columns (limit MaxFeatures); got {spec.Features.Count}.");
        }

        var numeric = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < spec.Features.Count; i++)
        {
            ValidateFeature(spec.Features[i], $"$.features[{i}]", eyesOff, Add);
            if (spec.Features.Take(i).Any(f => f.Column == spec.Features[i].Column))
            {
                Add($"$.features[{i}].column", "duplicate", $"features[{i}].column repeats {SpecPath.Quote(spec.Features[i].Column)}; name each column once, with all its statistics.");
            }

            if (spec.Features[i].Statistics.Any(AnalysisStatistics.Numeric.Contains))
            {
                numeric.Add(spec.Features[i].Column);
            }
        }

        if (spec.GroupBy is { } group && !IsColumnName(group))
        {
            Add("$.groupBy", "pattern", $"groupBy must be a column name; got {SpecPath.Quote(group)}.");
        }
        else if (spec.GroupBy is { } g && numeric.Contains(g))
        {
            Add("$.groupBy", "conflict", $"groupBy {SpecPath.Quote(g)} is analysed as a numeric column; a group-by column is categorical.");
        }

        if (spec.Covariance is { } covariance)
        {
            if (covariance.Count < 2 || covariance.Count > MaxCovariance)
            {
                Add("$.covariance", "count", $"covariance must name 2 to {MaxCovariance} columns (limit MaxCovariance); got {covariance.Count}.");
            }

            for (var i = 0; i < covariance.Count; i++)
            {
                if (!numeric.Contains(covariance[i]))
                {
                    Add($"$.covariance[{i}]", "not-numeric", $"covariance[{i}] {SpecPath.Quote(covariance[i])} must be one of the features analysed as numeric.");
                }
                else if (covariance.Take(i).Contains(covariance[i], StringComparer.Ordinal))
                {
                    Add($"$.covariance[{i}]", "duplicate", $"covariance[{i}] repeats {SpecPath.Quote(covariance[i])}.");
                }
            }
        }

        if (errors.Count == 0)
        {
            AnalysisSecureAggregationValidator.ValidateSize(spec, Add);
        }

        return errors;
    }

    /// <summary>Throws when the spec is invalid, listing every violation.</summary>
    /// <exception cref="ArgumentException">The spec is invalid.</exception>
    public static void EnsureValid(AnalysisSpec spec)
    {
        var errors = Validate(spec);
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid analysis spec: " + string.Join(" ", errors.Select(e => $"{e.Path}: {e.Message}")), nameof(spec));
        }
    }

    private static void ValidatePrivacy(AnalysisPrivacySpec privacy, SpecLimits limits, Action<string, string, string> add)
    {
        if (privacy.Mode is not (PrivacyModes.EyesOn or PrivacyModes.EyesOff))
        {
            add("$.privacy.mode", "enum", $"privacy.mode must be one of {PrivacyModes.EyesOn}, {PrivacyModes.EyesOff}; got {SpecPath.Quote(privacy.Mode)}.");
        }

        if (privacy.MinCount is < 1 or > 1_000_000)
        {
            add("$.privacy.minCount", "range", $"privacy.minCount must be from 1 to 1000000; got {privacy.MinCount}.");
        }
        else if (privacy.Mode == PrivacyModes.EyesOff && privacy.MinCount < MinEyesOffCount)
        {
            add("$.privacy.minCount", "eyes-off", $"privacy.minCount must be at least {MinEyesOffCount} in eyes-off mode: a cell of fewer rows can name one row's value (a quantile at 0 or 1 is the min or max); got {privacy.MinCount}.");
        }

        if (privacy.MinSilos < 1 || privacy.MinSilos > limits.MaxSilos)
        {
            add("$.privacy.minSilos", "range", $"privacy.minSilos must be from 1 to {limits.MaxSilos}; got {privacy.MinSilos}.");
        }
        else if (privacy.Mode == PrivacyModes.EyesOff && privacy.MinSilos < 2)
        {
            add("$.privacy.minSilos", "eyes-off", "privacy.minSilos must be at least 2 in eyes-off mode: an aggregate of one silo is that silo's value.");
        }
    }

    private static void ValidateFeature(FeatureAnalysis feature, string path, bool eyesOff, Action<string, string, string> add)
    {
        if (!IsColumnName(feature.Column))
        {
            add($"{path}.column", "pattern", $"{path[2..]}.column must be a column name (1-128 characters, no control characters); got {SpecPath.Quote(feature.Column)}.");
        }

        if (feature.Statistics.Count == 0)
        {
            add($"{path}.statistics", "count", $"{path[2..]}.statistics must name at least one statistic: {string.Join(", ", AnalysisStatistics.All)}.");
        }

        for (var j = 0; j < feature.Statistics.Count; j++)
        {
            var statistic = feature.Statistics[j];
            if (!AnalysisStatistics.All.Contains(statistic, StringComparer.Ordinal))
            {
                add($"{path}.statistics[{j}]", "enum", $"{path[2..]}.statistics[{j}] must be one of {string.Join(", ", AnalysisStatistics.All)}; got {SpecPath.Quote(statistic)}.");
            }
            else if (feature.Statistics.Take(j).Contains(statistic, StringComparer.Ordinal))
            {
                add($"{path}.statistics[{j}]", "duplicate", $"{path[2..]}.statistics[{j}] repeats {SpecPath.Quote(statistic)}.");
            }
            else if (eyesOff && statistic is AnalysisStatistics.Min or AnalysisStatistics.Max)
            {
                add($"{path}.statistics[{j}]", "eyes-off", $"{path[2..]}.statistics[{j}]: {statistic} is not reported in eyes-off mode; an extreme value is one row's value.");
            }
        }

        if (feature.Statistics.Contains(AnalysisStatistics.ValueCounts) && feature.Statistics.Any(AnalysisStatistics.Numeric.Contains))
        {
            add($"{path}.statistics", "conflict", $"{path[2..]}.statistics mixes valueCounts (a categorical column) with numeric statistics.");
        }

        var wantsHistogram = feature.Statistics.Contains(AnalysisStatistics.Histogram);
        if (wantsHistogram != feature.Histogram is not null)
        {
            add($"{path}.histogram", wantsHistogram ? "required" : "not-allowed", wantsHistogram
                ? $"{path[2..]}.histogram is required with the histogram statistic: edges, or bins with min and max, or bins alone (eyes-on)."
                : $"{path[2..]}.histogram is set but the histogram statistic is not asked for.");
        }

        if (feature.Histogram is { } histogram)
        {
            ValidateHistogram(histogram, $"{path}.histogram", eyesOff, add);
        }

        var wantsQuantiles = feature.Statistics.Contains(AnalysisStatistics.Quantiles);
        if (wantsQuantiles != feature.Quantiles is not null)
        {
            add($"{path}.quantiles", wantsQuantiles ? "required" : "not-allowed", wantsQuantiles
                ? $"{path[2..]}.quantiles is required with the quantiles statistic: the probabilities, e.g. [0.25, 0.5, 0.75]."
                : $"{path[2..]}.quantiles is set but the quantiles statistic is not asked for.");
        }

        if (feature.Quantiles is { } quantiles)
        {
            if (quantiles.Count == 0 || quantiles.Count > MaxQuantiles)
            {
                add($"{path}.quantiles", "count", $"{path[2..]}.quantiles must hold 1 to {MaxQuantiles} probabilities (limit MaxQuantiles); got {quantiles.Count}.");
            }

            for (var q = 0; q < quantiles.Count; q++)
            {
                if (!(quantiles[q] is >= 0 and <= 1))
                {
                    add($"{path}.quantiles[{q}]", "range", $"{path[2..]}.quantiles[{q}] must be a probability from 0 to 1; got {quantiles[q].ToString(CultureInfo.InvariantCulture)}.");
                }
            }
        }

        if (feature.Categories is { } categories)
        {
            ValidateCategories(categories, feature.Statistics.Contains(AnalysisStatistics.ValueCounts), $"{path}.categories", add);
        }

        if (feature.Bounds is { } bounds && !(double.IsFinite(bounds.Min) && double.IsFinite(bounds.Max) && bounds.Min < bounds.Max))
        {
            add($"{path}.bounds", "range", $"{path[2..]}.bounds must have finite min < max; got [{bounds.Min.ToString(CultureInfo.InvariantCulture)}, {bounds.Max.ToString(CultureInfo.InvariantCulture)}].");
        }
    }

    private static void ValidateCategories(IReadOnlyList<string> categories, bool valueCounts, string path, Action<string, string, string> add)
    {
        if (!valueCounts)
        {
            add(path, "not-allowed", $"{path[2..]} is set but the valueCounts statistic is not asked for.");
        }

        if (categories.Count == 0 || categories.Count > MaxCategories)
        {
            add(path, "count", $"{path[2..]} must hold 1 to {MaxCategories} values (limit MaxCategories); got {categories.Count}.");
        }

        for (var i = 0; i < categories.Count; i++)
        {
            if (categories[i] is null or { Length: 0 or > 256 } || categories[i] == AnalysisReport.OtherValues)
            {
                add($"{path}[{i}]", "pattern", $"{path[2..]}[{i}] must be 1-256 characters and not {SpecPath.Quote(AnalysisReport.OtherValues)}; got {SpecPath.Quote(categories[i])}.");
            }
            else if (categories.Take(i).Contains(categories[i], StringComparer.Ordinal))
            {
                add($"{path}[{i}]", "duplicate", $"{path[2..]}[{i}] repeats {SpecPath.Quote(categories[i])}.");
            }
        }
    }

    private static void ValidateHistogram(HistogramSpec histogram, string path, bool eyesOff, Action<string, string, string> add)
    {
        if (histogram.Edges is { } edges)
        {
            if (histogram.Bins is not null || histogram.Min is not null || histogram.Max is not null)
            {
                add(path, "conflict", $"{path[2..]} sets edges and bins, min or max; give edges, or bins with min and max.");
            }

            if (edges.Count < 2 || edges.Count > MaxBins + 1)
            {
                add($"{path}.edges", "count", $"{path[2..]}.edges must hold 2 to {MaxBins + 1} edges ({MaxBins} bins, limit MaxBins); got {edges.Count}.");
            }

            for (var i = 1; i < edges.Count; i++)
            {
                if (!(edges[i] > edges[i - 1]) || !double.IsFinite(edges[i]) || !double.IsFinite(edges[i - 1]))
                {
                    add($"{path}.edges[{i}]", "order", $"{path[2..]}.edges must be finite and strictly increasing; edges[{i}] is {edges[i].ToString(CultureInfo.InvariantCulture)} after {edges[i - 1].ToString(CultureInfo.InvariantCulture)}.");
                }
            }

            return;
        }

        if (histogram.Bins is not { } bins)
        {
            add($"{path}.bins", "required", $"{path[2..]}.bins is required without edges.");
            return;
        }

        if (bins < 1 || bins > MaxBins)
        {
            add($"{path}.bins", "range", $"{path[2..]}.bins must be from 1 to {MaxBins} (limit MaxBins); got {bins}.");
        }

        if ((histogram.Min is null) != (histogram.Max is null))
        {
            add(path, "required", $"{path[2..]} needs both min and max, or neither (the global range, eyes-on only).");
        }
        else if (histogram.Min is { } min && histogram.Max is { } max && !(double.IsFinite(min) && double.IsFinite(max) && min < max))
        {
            add(path, "range", $"{path[2..]} needs finite min < max; got [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}].");
        }
        else if (histogram.Min is null && eyesOff)
        {
            add(path, "eyes-off", $"{path[2..]} over the global range needs the global min and max, which eyes-off mode does not report: give min and max, or edges.");
        }
    }

    private static bool IsColumnName(string? name) => name is { Length: >= 1 and <= 128 } && !name.Any(char.IsControl) && name.Trim() == name;
}
