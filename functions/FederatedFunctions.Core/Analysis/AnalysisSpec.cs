using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>A federated analysis: statistics over the silos' rows, computed in each silo and combined, with privacy filters.</summary>
/// <remarks>Read with <see cref="AnalysisSpecParser"/>, which applies the same strict JSON rules as run specs.</remarks>
public sealed record AnalysisSpec
{
    /// <summary>The analysis id; generated when absent.</summary>
    public string? AnalysisId { get; init; }

    /// <summary>The silos, by registry id.</summary>
    public IReadOnlyList<string> Silos { get; init; } = [];

    /// <summary>Where the rows are inside each silo's container.</summary>
    public AnalysisDataSpec Data { get; init; } = new();

    /// <summary>The columns analysed, each with its statistics.</summary>
    public IReadOnlyList<FeatureAnalysis> Features { get; init; } = [];

    /// <summary>A categorical column whose values split every statistic (e.g. per class); null for none.</summary>
    public string? GroupBy { get; init; }

    /// <summary>Columns whose covariance and correlation matrix is wanted (complete rows only); null for none.</summary>
    public IReadOnlyList<string>? Covariance { get; init; }

    /// <summary>The privacy filters.</summary>
    public AnalysisPrivacySpec Privacy { get; init; } = new();
}

/// <summary>The rows of an analysis inside each silo's container.</summary>
public sealed record AnalysisDataSpec
{
    /// <summary><c>csv</c> or <c>parquet</c>.</summary>
    public string Format { get; init; } = DataFormats.Csv;

    /// <summary>Blob path of the rows inside each silo's container.</summary>
    public string Path { get; init; } = "data/train.csv";
}

/// <summary>One column and the statistics wanted of it.</summary>
public sealed record FeatureAnalysis
{
    /// <summary>The column's name in the data's header.</summary>
    public string Column { get; init; } = string.Empty;

    /// <summary>The statistics (<see cref="AnalysisStatistics"/>): numeric ones, or <c>valueCounts</c> for a categorical column.</summary>
    public IReadOnlyList<string> Statistics { get; init; } = [];

    /// <summary>The histogram's bins, with <c>histogram</c>.</summary>
    public HistogramSpec? Histogram { get; init; }

    /// <summary>The quantiles' probabilities, with <c>quantiles</c>.</summary>
    public IReadOnlyList<double>? Quantiles { get; init; }

    /// <summary>Declared bounds of the column's values: values are clamped to them.</summary>
    public BoundsSpec? Bounds { get; init; }
}

/// <summary>Histogram bins: explicit <see cref="Edges"/>; or <see cref="Bins"/> equal bins over [<see cref="Min"/>, <see cref="Max"/>]; or <see cref="Bins"/> alone, over the global range (an extra pass, eyes-on only).</summary>
public sealed record HistogramSpec
{
    /// <summary>Strictly increasing bin edges.</summary>
    public IReadOnlyList<double>? Edges { get; init; }

    /// <summary>The number of equal-width bins.</summary>
    public int? Bins { get; init; }

    /// <summary>The lower end of the equal-width bins.</summary>
    public double? Min { get; init; }

    /// <summary>The upper end of the equal-width bins.</summary>
    public double? Max { get; init; }
}

/// <summary>Declared bounds of a column's values.</summary>
public sealed record BoundsSpec
{
    /// <summary>The least value.</summary>
    public double Min { get; init; }

    /// <summary>The greatest value.</summary>
    public double Max { get; init; }
}

/// <summary>The privacy filters of an analysis.</summary>
public sealed record AnalysisPrivacySpec
{
    /// <summary><c>eyes-on</c> or <c>eyes-off</c>: in eyes-off no per-silo value leaves a silo except inside an aggregate over at least <see cref="MinSilos"/> silos, and min and max are withheld.</summary>
    public string Mode { get; init; } = PrivacyModes.EyesOn;

    /// <summary>The least number of rows in any reported cell (a bin, a value count, a group); each silo may raise it for its rows.</summary>
    public int MinCount { get; init; } = 5;

    /// <summary>The least number of silos an aggregate must combine to be reported.</summary>
    public int MinSilos { get; init; } = 1;
}

/// <summary>The statistics an analysis can ask for.</summary>
public static class AnalysisStatistics
{
    /// <summary>Present values.</summary>
    public const string Count = "count";

    /// <summary>Missing values.</summary>
    public const string Missing = "missing";

    /// <summary>Sum.</summary>
    public const string Sum = "sum";

    /// <summary>Mean.</summary>
    public const string Mean = "mean";

    /// <summary>Sample variance (divisor n − 1).</summary>
    public const string Variance = "variance";

    /// <summary>Sample standard deviation.</summary>
    public const string StdDev = "stddev";

    /// <summary>Least value.</summary>
    public const string Min = "min";

    /// <summary>Greatest value.</summary>
    public const string Max = "max";

    /// <summary>Counts per bin.</summary>
    public const string Histogram = "histogram";

    /// <summary>Quantiles at given probabilities.</summary>
    public const string Quantiles = "quantiles";

    /// <summary>Counts per value of a categorical column.</summary>
    public const string ValueCounts = "valueCounts";

    /// <summary>The statistics of a numeric column.</summary>
    public static readonly IReadOnlyList<string> Numeric = [Count, Missing, Sum, Mean, Variance, StdDev, Min, Max, Histogram, Quantiles];

    /// <summary>Every statistic.</summary>
    public static readonly IReadOnlyList<string> All = [.. Numeric, ValueCounts];
}
