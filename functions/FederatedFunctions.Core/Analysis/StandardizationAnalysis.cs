using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Analysis;

/// <summary>
/// The federated analysis a training run with <c>data.standardize</c> runs before round 1: the mean and standard
/// deviation of each feature over every silo's train split, and the standardization made of them.
/// </summary>
/// <remarks>
/// The analysis uses the run's silos, data file and privacy mode, and the analysis path's own filters: eyes-off, it
/// needs at least two silos (or the run's <c>minAggregateSilos</c>, if more) and at least <see cref="MinCount"/> values
/// per feature, so no silo's own mean is ever released to the orchestrator. Its result and audit entries are stored
/// under <see cref="Id"/> beside the run's checkpoints.
/// </remarks>
public static class StandardizationAnalysis
{
    /// <summary>The least number of values a feature must have over every silo to be standardized.</summary>
    public const int MinCount = 5;

    /// <summary>The analysis id of run <paramref name="runId"/>'s standardization: also its orchestration instance id.</summary>
    /// <remarks>
    /// <c>{runId}-standardize</c>; a run id too long for that to fit an id's 63 characters is cut, with 8 hex digits of its
    /// SHA-256 in place of the rest, so every run keeps its own id.
    /// </remarks>
    public static string Id(string runId)
    {
        ArgumentNullException.ThrowIfNull(runId);
        const string Suffix = "-standardize";
        if (runId.Length + Suffix.Length <= MaxIdLength)
        {
            return runId + Suffix;
        }

        var hash = Hashing.Sha256Hex(System.Text.Encoding.UTF8.GetBytes(runId))[..8];
        return runId[..(MaxIdLength - Suffix.Length - hash.Length - 1)].TrimEnd('-') + "-" + hash + Suffix;
    }

    private const int MaxIdLength = 63;

    /// <summary>The analysis that computes the standardization of <paramref name="spec"/>'s features.</summary>
    /// <exception cref="ArgumentException">The spec does not name its features.</exception>
    public static AnalysisSpec For(string runId, RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var features = spec.Data.Features ?? throw new ArgumentException("Standardization needs data.features.", nameof(spec));
        var eyesOff = spec.Privacy.Mode == PrivacyModes.EyesOff;
        return new AnalysisSpec
        {
            AnalysisId = Id(runId),
            Silos = spec.Silos,
            Data = new AnalysisDataSpec { Format = spec.Data.Format, Path = spec.Data.Train },
            Features = [.. features.Select(f => new FeatureAnalysis { Column = f, Statistics = [AnalysisStatistics.Mean, AnalysisStatistics.StdDev] })],
            Privacy = new AnalysisPrivacySpec
            {
                Mode = spec.Privacy.Mode,
                MinCount = MinCount,
                MinSilos = eyesOff ? Math.Max(2, spec.Privacy.MinAggregateSilos) : 1,
            },
        };
    }

    /// <summary>The standardization of <paramref name="features"/> from the analysis's result.</summary>
    /// <exception cref="InvalidOperationException">A feature's mean or standard deviation was withheld (fewer values than the minimum count) or is missing.</exception>
    public static FeatureStandardization From(AnalysisResult result, IReadOnlyList<string> features)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(features);
        var (mean, stddev) = (new double[features.Count], new double[features.Count]);
        for (var i = 0; i < features.Count; i++)
        {
            if (result.Results.GetValueOrDefault(features[i]) is not { Mean: { } m, Stddev: { } s })
            {
                throw new InvalidOperationException($"Feature '{features[i]}' cannot be standardized: its federated mean or standard deviation was withheld (fewer than {MinCount} values over the silos) or it has no values.");
            }

            (mean[i], stddev[i]) = (m, s > 0 ? s : 1);
        }

        return new FeatureStandardization(mean, stddev);
    }
}
