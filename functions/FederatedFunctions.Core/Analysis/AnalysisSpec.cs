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

    /// <summary>
    /// The group-by column's values, declared: rows of any other value form the group <c>(other)</c>. Optional; required
    /// with secure aggregation, whose layout must not depend on the data. Without it the groups are the values found.
    /// </summary>
    public IReadOnlyList<string>? Groups { get; init; }

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

    /// <summary>Declared bounds of the column's values: values are clamped to them. Required under differential privacy for sum, mean, variance and stddev: they set the sensitivity.</summary>
    public BoundsSpec? Bounds { get; init; }

    /// <summary>
    /// The values a <c>valueCounts</c> column is counted by; any other value is counted in <c>(other)</c>. Required under
    /// differential privacy, where the values reported must not depend on the data; optional otherwise.
    /// </summary>
    public IReadOnlyList<string>? Categories { get; init; }
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

    /// <summary>Differential privacy of the released statistics, charged to a per-dataset budget; absent means none (exact statistics).</summary>
    public AnalysisDifferentialPrivacySpec? DifferentialPrivacy { get; init; }

    /// <summary>
    /// Secure aggregation of every pass: each silo masks its partial (counts and exact sums as integers) with pairwise masks
    /// that cancel in the sum, so the aggregator reads the sum over the silos and never one silo's partial
    /// (<see cref="SecureAnalysisVector"/>). Min, max, histograms over the global range and undeclared groups or values are
    /// then unavailable. Absent: on in eyes-off mode, where it cannot be turned off, and off in eyes-on mode.
    /// </summary>
    public bool? SecureAggregation { get; init; }

    /// <summary>Whether the analysis is securely aggregated: as <see cref="SecureAggregation"/> says, or by default in eyes-off mode.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool SecurelyAggregated => SecureAggregation ?? Mode == PrivacyModes.EyesOff;
}

/// <summary>Differential privacy of an analysis's result: noise added once, centrally, to the merged statistics.</summary>
/// <remarks>
/// <see cref="Epsilon"/> (and, for the Gaussian mechanism, <see cref="Delta"/>) is the whole analysis's: it is split equally
/// over the queries the result releases (<see cref="DpRelease"/>), so by basic composition the result is
/// (<see cref="Epsilon"/>, <see cref="Delta"/>)-DP with respect to adding or removing one row. Before any silo reads a row,
/// <see cref="Epsilon"/> is charged to the budget named <see cref="Budget"/>, whose total the host's configuration sets; an
/// analysis that would take the budget past its total is refused. See <c>docs/federated-analysis.md</c>.
/// </remarks>
public sealed record AnalysisDifferentialPrivacySpec
{
    /// <summary><c>laplace</c> (pure ε-DP) or <c>gaussian</c> ((ε, δ)-DP, analytic calibration).</summary>
    public string Mechanism { get; init; } = string.Empty;

    /// <summary>The ε the whole analysis spends.</summary>
    public double Epsilon { get; init; }

    /// <summary>The δ the whole analysis spends; required with <c>gaussian</c>, refused with <c>laplace</c>.</summary>
    public double? Delta { get; init; }

    /// <summary>The key of the dataset's budget in the host's configuration (<c>Analysis:Budgets:{key}</c>).</summary>
    public string Budget { get; init; } = string.Empty;
}

/// <summary>The noise mechanisms of differentially private analyses.</summary>
public static class DpMechanisms
{
    /// <summary>Laplace noise, scale Δ₁/ε per query: ε-DP.</summary>
    public const string Laplace = "laplace";

    /// <summary>Gaussian noise, analytic calibration per query: (ε, δ)-DP.</summary>
    public const string Gaussian = "gaussian";

    /// <summary>Every mechanism.</summary>
    public static readonly IReadOnlyList<string> All = [Laplace, Gaussian];
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
