using System.Globalization;

namespace FederatedFunctions.Core.Specs;

/// <summary>Checks a <see cref="RunSpec"/> against the product's rules and a set of <see cref="SpecLimits"/>.</summary>
/// <remarks>
/// <para>
/// <see cref="Validate"/> reports every violation in one pass, in document order, so a user fixes a spec in one
/// round trip; it never throws for a bad value, including nulls that a caller forced into non-nullable members.
/// Each error carries the JSON path of the field, a stable kebab-case rule id that callers may switch on,
/// and a message that names the limit and the offending value.
/// </para>
/// <para>
/// Ids are checked character by character against ASCII ranges, not with a culture- or Unicode-aware class
/// such as <c>\d</c> or <see cref="char.IsLetter(char)"/>: look-alike letters (Cyrillic <c>а</c> for Latin <c>a</c>)
/// and non-ASCII digits are rejected, so two ids that render alike are always the same id.
/// </para>
/// </remarks>
public static partial class RunSpecValidator
{
    /// <summary>Widest accepted hidden layer.</summary>
    public const int MaxHiddenWidth = Models.MultilayerPerceptronModel.MaxHiddenWidth;

    /// <summary>Longest accepted data blob path, the Azure Blob Storage limit on blob names.</summary>
    public const int MaxBlobPathLength = 1024;

    /// <summary>Largest accepted <see cref="RobustnessSpec.MaxNormRatio"/>.</summary>
    public const double MaxNormRatio = 1000;

    /// <summary>Most silos a run with <c>evaluation.crossSite</c> may have: it makes (n + 1) × n evaluations.</summary>
    public const int MaxCrossSiteSilos = 16;

    /// <summary>Largest accepted learning rate.</summary>
    public const double MaxLearningRate = 10;

    /// <summary>Returns every violation in <paramref name="spec"/>; an empty list means it is valid.</summary>
    /// <param name="spec">The spec to check.</param>
    /// <param name="limits">Limits to enforce; <see cref="SpecLimits.Default"/> when null.</param>
    public static IReadOnlyList<SpecError> Validate(RunSpec spec, SpecLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        limits ??= SpecLimits.Default;
        var errors = new List<SpecError>();
        var report = new Reporter(errors);

        if (spec.RunId is not null && !IsValidRunId(spec.RunId))
        {
            report.Add("$.runId", "pattern", $"runId must be 3-63 characters of lowercase a-z, 0-9 and '-', starting and ending with a letter or digit; got {SpecPath.Quote(spec.RunId)}.");
        }

        ValidateModel(spec, limits, report);
        ValidateData(spec.Data, spec.Privacy, limits, report);
        ValidateTraining(spec.Training, limits, report);

        if (report.Required(spec.Strategy, "$.strategy") && report.Required(spec.Strategy.Name, "$.strategy.name"))
        {
            report.Enum(spec.Strategy.Name, StrategyNames.All, "$.strategy.name");
            var silos = Silos.VirtualSilos.ParticipantCount(spec);
            var sampled = spec.Participation is { } participation && (participation.SampleCount is null or > 0) && (participation.SampleFraction is null or (> 0 and <= 1))
                ? Strategies.ParticipationPolicy.SampleSize(participation, silos)
                : silos;
            Strategies.StrategyCatalog.Validate(spec, sampled, report.Add);
        }

        ValidateSilos(spec.Silos, limits, report);

        if (report.Required(spec.Evaluation, "$.evaluation"))
        {
            // Against an invalid round count the bound is meaningless; the wider limit avoids a second, derived error.
            var rounds = spec.Training is { Rounds: var r } && r >= 1 && r <= limits.MaxRounds ? r : limits.MaxRounds;
            report.Range(spec.Evaluation.EveryRounds, 0, rounds, "$.evaluation.everyRounds", "training.rounds");
            ValidateCrossSite(spec, report);
        }

        if (report.Required(spec.Checkpoints, "$.checkpoints")
            && report.Required(spec.Checkpoints.Container, "$.checkpoints.container")
            && !IsValidContainerName(spec.Checkpoints.Container))
        {
            report.Add("$.checkpoints.container", "pattern", $"checkpoints.container must be an Azure container name: 3-63 characters of lowercase a-z, 0-9 and single hyphens, starting and ending with a letter or digit; got {SpecPath.Quote(spec.Checkpoints.Container)}.");
        }

        if (report.Required(spec.Orchestration, "$.orchestration"))
        {
            report.Range(spec.Orchestration.RoundsPerInstance, 1, limits.MaxRoundsPerInstance, "$.orchestration.roundsPerInstance", nameof(SpecLimits.MaxRoundsPerInstance));
        }

        ValidateParticipation(spec, report);
        ValidateSimulation(spec, limits, report);
        ValidateRetry(spec.Retry, report);
        ValidateRobustness(spec.Robustness, report);
        ValidateResumeFrom(spec, limits, report);
        ValidatePrivacy(spec, report);
        ValidateModelSize(spec, limits, report);
        return errors;
    }

    /// <summary>Throws unless <paramref name="spec"/> is valid.</summary>
    /// <exception cref="InvalidRunSpecException">The spec has at least one violation; all of them are in <see cref="InvalidRunSpecException.Errors"/>.</exception>
    public static void EnsureValid(RunSpec spec, SpecLimits? limits = null)
    {
        var errors = Validate(spec, limits);
        if (errors.Count > 0)
        {
            throw new InvalidRunSpecException(errors);
        }
    }

    /// <summary>True for 3-63 characters of ASCII <c>a-z</c>, <c>0-9</c> and <c>-</c>, starting and ending with a letter or digit.</summary>
    /// <remarks>Run ids name orchestration instances and blob prefixes, so they are kept to a set every store accepts.</remarks>
    public static bool IsValidRunId(string? id) => IsLowercaseId(id, 3, 63);

    /// <summary>True for 1-63 characters of ASCII <c>a-z</c>, <c>0-9</c> and <c>-</c>, starting and ending with a letter or digit.</summary>
    /// <remarks>
    /// Silo ids become blob path segments and registry keys, so <c>/</c>, <c>\</c>, <c>..</c>, uppercase and every
    /// non-ASCII character (including look-alikes such as Cyrillic <c>а</c>) are rejected.
    /// </remarks>
    public static bool IsValidSiloId(string? id) => IsLowercaseId(id, 1, 63);

    /// <summary>Trainable parameters (weights and biases) of <paramref name="model"/> for the given sizes: its plan's (<see cref="Models.ModelCatalog"/>).</summary>
    /// <exception cref="ArgumentException">An unknown architecture, or a model the validator refuses.</exception>
    /// <exception cref="OverflowException">The count does not fit in 64 bits.</exception>
    public static long CountParameters(ModelSpec model, int inputs, int classes) => Models.ModelCatalog.Plan(model, inputs, classes).Parameters;

    /// <summary>The model's input width: <c>model.inputs</c> when given, otherwise the number of <c>data.features</c>.</summary>
    /// <exception cref="ArgumentException">Neither is given (a spec that fails validation).</exception>
    public static int ResolveInputs(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.Model?.Inputs
            ?? spec.Data?.Features?.Count
            ?? throw new ArgumentException("The spec gives neither model.inputs nor data.features.", nameof(spec));
    }

    private static void ValidateModel(RunSpec spec, SpecLimits limits, Reporter report)
    {
        if (!report.Required(spec.Model, "$.model"))
        {
            return;
        }

        var model = spec.Model;
        if (report.Required(model.Architecture, "$.model.architecture"))
        {
            report.Enum(model.Architecture, Models.ModelCatalog.Names, "$.model.architecture");
        }

        if (report.Required(model.Hidden, "$.model.hidden"))
        {
            Models.ModelCatalog.Find(model.Architecture)?.Validate(model, model.Inputs ?? spec.Data?.Features?.Count, limits, report.Add);
        }

        if (model.Script is not null && model.Architecture != ModelArchitectures.TorchScript)
        {
            report.Add("$.model.script", "not-allowed", $"model.script is for a torchscript model; a {model.Architecture} model is declared by the spec (start it from saved weights with model.pretrained).");
        }

        if (model.Script is { } script)
        {
            if ((script.Path is null ? "it is missing" : BlobPathProblem(script.Path)) is { } problem)
            {
                report.Add("$.model.script.path", "path", $"model.script.path must be a relative blob path inside the checkpoint container: {problem}; got {SpecPath.Quote(script.Path)}.");
            }

            if (!Hashing.IsSha256Hex(script.Sha256))
            {
                report.Add("$.model.script.sha256", "pattern", $"model.script.sha256 must be 64 lowercase hex digits (fl model put prints it); got {SpecPath.Quote(script.Sha256)}.");
            }
        }

        if (model.Pretrained is { } pretrained)
        {
            if ((pretrained.Path is null ? "it is missing" : BlobPathProblem(pretrained.Path)) is { } problem)
            {
                report.Add("$.model.pretrained.path", "path", $"model.pretrained.path must be a relative blob path inside the checkpoint container: {problem}; got {SpecPath.Quote(pretrained.Path)}.");
            }

            if (!Hashing.IsSha256Hex(pretrained.Sha256))
            {
                report.Add("$.model.pretrained.sha256", "pattern", $"model.pretrained.sha256 must be 64 lowercase hex digits (fl model put prints it); got {SpecPath.Quote(pretrained.Sha256)}.");
            }

            if (spec.ResumeFrom is not null)
            {
                report.Add("$.model.pretrained", "conflict", "model.pretrained and resumeFrom both give the starting weights; give one.");
            }
        }

        var features = spec.Data?.Features;
        if (model.Inputs is { } inputs)
        {
            if (features is not null && inputs != features.Count)
            {
                report.Add("$.model.inputs", "mismatch", $"model.inputs is {inputs} but data.features lists {features.Count} columns; they must agree.");
            }

            report.Range(inputs, 1, limits.MaxInputs, "$.model.inputs", nameof(SpecLimits.MaxInputs));
        }
        else if (features is null)
        {
            report.Add("$.model.inputs", "required", "model.inputs is required when data.features is absent.");
        }
        else if (features.Count > limits.MaxInputs)
        {
            report.Add("$.data.features", "count", $"data.features lists {features.Count} columns; the limit MaxInputs is {limits.MaxInputs}.");
        }
    }

    private static void ValidateData(DataSpec? data, PrivacySpec? privacy, SpecLimits limits, Reporter report)
    {
        if (!report.Required(data, "$.data"))
        {
            return;
        }

        if (report.Required(data.Format, "$.data.format"))
        {
            report.Enum(data.Format, DataFormats.All, "$.data.format");
        }

        ValidateBlobPath(data.Train, "$.data.train", report);
        ValidateBlobPath(data.Test, "$.data.test", report);

        var labelPresent = report.Required(data.Label, "$.data.label");
        if (labelPresent && data.Label.Length == 0)
        {
            report.Add("$.data.label", "required", "data.label must name the label column; got an empty string.");
        }

        var tensor = DataFormats.IsTensor(data.Format);
        if (tensor && data.Features is not null)
        {
            // Arrays and images have no columns to pick: every value of an example is a feature, named p0, p1, ...
            report.Add("$.data.features", "not-allowed", $"data.features names columns, which the {data.Format} format does not have: each example's values are its features, in order (named p0, p1, ...); leave data.features out and give model.inputs.");
        }
        else if (data.Features is { } features)
        {
            if (features.Count == 0)
            {
                report.Add("$.data.features", "count", "data.features, when present, must list at least one column; omit it to use every column but the label.");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < features.Count; i++)
            {
                var path = SpecPath.Index("$.data.features", i);
                var feature = features[i];
                if (!report.Required(feature, path))
                {
                    continue;
                }

                if (feature.Length == 0)
                {
                    report.Add(path, "required", "Feature column names must not be empty.");
                }
                else if (!seen.Add(feature))
                {
                    report.Add(path, "duplicate", $"Feature column {SpecPath.Quote(feature)} is listed more than once.");
                }
                else if (labelPresent && feature == data.Label)
                {
                    report.Add(path, "conflict", $"Feature column {SpecPath.Quote(feature)} is also the label column.");
                }
            }
        }

        report.Range(data.Classes, 2, limits.MaxClasses, "$.data.classes", nameof(SpecLimits.MaxClasses));
        ValidateClassNames(data, report);
        ValidateStandardization(data, privacy, report);
    }

    // The class folders of an image folder: one name per class id, each a single blob path segment.
    private static void ValidateClassNames(DataSpec data, Reporter report)
    {
        if (data.ClassNames is not { } names)
        {
            return;
        }

        if (data.Format != DataFormats.ImageFolder)
        {
            report.Add("$.data.classNames", "not-allowed", $"data.classNames names the class folders of the imagefolder format; the {data.Format} format's labels are class ids already.");
            return;
        }

        if (names.Count != data.Classes)
        {
            report.Add("$.data.classNames", "count", $"data.classNames lists {names.Count} folder names for data.classes {data.Classes}; give one per class id, in order.");
        }

        for (var i = 0; i < names.Count; i++)
        {
            var path = SpecPath.Index("$.data.classNames", i);
            if (!report.Required(names[i], path))
            {
                continue;
            }

            if (names[i] is "" or "." or ".." || names[i].Length > 255 || names[i].Any(c => char.IsControl(c) || c is '/' or '\\' or '?' or '#' or '%'))
            {
                report.Add(path, "pattern", $"data.classNames[{i}] must be a folder name: 1-255 characters, not . or .., without /, \\, ?, # or % or control characters; got {SpecPath.Quote(names[i])}.");
            }
            else if (names.Take(i).Contains(names[i], StringComparer.Ordinal))
            {
                report.Add(path, "duplicate", $"data.classNames[{i}] repeats {SpecPath.Quote(names[i])}.");
            }
        }
    }

    private static void ValidateStandardization(DataSpec data, PrivacySpec? privacy, Reporter report)
    {
        if ((data.Standardize || data.Standardization is not null) && DataFormats.IsTensor(data.Format))
        {
            report.Add(data.Standardize ? "$.data.standardize" : "$.data.standardization", "not-allowed", $"Standardization is per named feature column, which the {data.Format} format does not have; scale the values before storing them (uint8 images are read as value / 255).");
            return;
        }

        if ((data.Standardize || data.Standardization is not null) && data.Features is null)
        {
            report.Add(data.Standardize ? "$.data.standardize" : "$.data.standardization", "requires", "Standardization needs data.features: the columns to standardize, in order.");
        }

        if (data.Standardize && privacy?.DifferentialPrivacy is not null)
        {
            report.Add("$.data.standardize", "conflict", "data.standardize releases exact federated means and standard deviations, which the run's differential privacy would not cover; give data.standardization (values known in advance) instead.");
        }

        if (data.Standardization is not { } s)
        {
            return;
        }

        foreach (var (values, name) in new[] { (s.Mean, "mean"), (s.Stddev, "stddev") })
        {
            var path = "$.data.standardization." + name;
            if (!report.Required(values, path))
            {
                continue;
            }

            if (data.Features is { } features && values.Count != features.Count)
            {
                report.Add(path, "count", $"data.standardization.{name} has {values.Count} values for {features.Count} features.");
            }

            for (var i = 0; i < values.Count; i++)
            {
                if (!double.IsFinite(values[i]) || (name == "stddev" && values[i] <= 0))
                {
                    report.Add(SpecPath.Index(path, i), "range", $"data.standardization.{name}[{i}] must be a finite number{(name == "stddev" ? " above 0" : string.Empty)}; got {values[i].ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
                }
            }
        }
    }

    private static void ValidateBlobPath(string? path, string jsonPath, Reporter report)
    {
        if (!report.Required(path, jsonPath))
        {
            return;
        }

        var problem = BlobPathProblem(path);
        if (problem is not null)
        {
            report.Add(jsonPath, "path", $"{jsonPath[2..]} must be a relative blob path inside the silo's container: {problem}; got {SpecPath.Quote(path)}.");
        }
    }

    /// <summary>Why <paramref name="path"/> is not a safe relative blob path, or null if it is.</summary>
    /// <remarks>
    /// Beyond the obvious (absolute paths, backslashes, <c>..</c>), <c>.</c> and empty segments are refused because
    /// storage services normalise them differently, and <c>?</c>, <c>#</c> and <c>%</c> because the path becomes part of a
    /// URI: a percent-encoded <c>data%2F..%2Fother</c> would be decoded by some client or service into segments this check
    /// never saw.
    /// </remarks>
    public static string? BlobPathProblem(string path)
    {
        if (path.Length == 0)
        {
            return "it is empty";
        }

        if (path.Length > MaxBlobPathLength)
        {
            return $"it is {path.Length} characters, more than {MaxBlobPathLength}";
        }

        foreach (var c in path)
        {
            if (char.IsControl(c))
            {
                return "it contains a control character";
            }

            if (c is '\\' or '?' or '#' or '%')
            {
                return $"it contains '{c}'";
            }
        }

        if (path[0] == '/')
        {
            return "it starts with '/'";
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment is "..")
            {
                return "it contains a '..' segment";
            }

            if (segment is "." or "")
            {
                return "it contains an empty or '.' segment";
            }
        }

        return null;
    }

    private static void ValidateTraining(TrainingSpec? training, SpecLimits limits, Reporter report)
    {
        if (!report.Required(training, "$.training"))
        {
            return;
        }

        report.Range(training.Rounds, 1, limits.MaxRounds, "$.training.rounds", nameof(SpecLimits.MaxRounds));
        report.Range(training.LocalEpochs, 1, limits.MaxLocalEpochs, "$.training.localEpochs", nameof(SpecLimits.MaxLocalEpochs));
        report.Range(training.BatchSize, 1, limits.MaxBatchSize, "$.training.batchSize", nameof(SpecLimits.MaxBatchSize));

        var rate = training.LearningRate;
        if (!double.IsFinite(rate) || rate <= 0 || rate > MaxLearningRate)
        {
            report.Add("$.training.learningRate", "range", $"training.learningRate must be a finite number greater than 0 and at most {MaxLearningRate.ToString(CultureInfo.InvariantCulture)}; got {rate.ToString("R", CultureInfo.InvariantCulture)}.");
        }

        if (report.Required(training.Optimizer, "$.training.optimizer"))
        {
            report.Enum(training.Optimizer, Optimizers.All, "$.training.optimizer");
        }

        if (training.Seed < 0)
        {
            report.Add("$.training.seed", "range", $"training.seed must be 0 or more; got {training.Seed}.");
        }
    }

    private static void ValidateSilos(IReadOnlyList<string>? silos, SpecLimits limits, Reporter report)
    {
        if (!report.Required(silos, "$.silos"))
        {
            return;
        }

        if (silos.Count < 1 || silos.Count > limits.MaxSilos)
        {
            report.Add("$.silos", "count", $"A run needs 1 to {limits.MaxSilos} silos (limit MaxSilos); got {silos.Count}.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < silos.Count; i++)
        {
            var path = SpecPath.Index("$.silos", i);
            var silo = silos[i];
            if (!report.Required(silo, path))
            {
                continue;
            }

            if (!IsValidSiloId(silo))
            {
                report.Add(path, "pattern", $"Silo ids must be 1-63 characters of lowercase ASCII a-z, 0-9 and '-', starting and ending with a letter or digit; got {SpecPath.Quote(silo)}.");
            }

            if (!seen.Add(silo))
            {
                report.Add(path, "duplicate", $"Silo {SpecPath.Quote(silo)} is listed more than once.");
            }
        }
    }

    /// <summary>Longest accepted round deadline: a week, the length of a long run.</summary>
    public const int MaxRoundDeadlineSeconds = 7 * 24 * 3600;

    private static void ValidateParticipation(RunSpec spec, Reporter report)
    {
        if (!report.Required(spec.Participation, "$.participation"))
        {
            return;
        }

        var p = spec.Participation;
        var silos = Silos.VirtualSilos.ParticipantCount(spec);
        var max = Math.Max(1, silos);
        report.Range(p.MinSilos, 1, max, "$.participation.minSilos", "the number of silos");
        if (p.SampleCount is not null && p.SampleFraction is not null)
        {
            report.Add("$.participation.sampleFraction", "conflict", "participation.sampleCount and participation.sampleFraction are exclusive; give one.");
        }

        if (p.SampleCount is { } count)
        {
            report.Range(count, Math.Max(1, p.MinSilos), max, "$.participation.sampleCount", "participation.minSilos and the number of silos");
        }

        if (p.SampleFraction is { } fraction)
        {
            if (!double.IsFinite(fraction) || fraction <= 0 || fraction > 1)
            {
                report.Add("$.participation.sampleFraction", "range", $"participation.sampleFraction must be in (0, 1]; got {fraction.ToString(CultureInfo.InvariantCulture)}.");
            }
            else if (silos > 0 && Math.Ceiling(fraction * silos) < p.MinSilos)
            {
                report.Add("$.participation.sampleFraction", "range", $"participation.sampleFraction samples {Math.Ceiling(fraction * silos)} of {silos} silos, fewer than participation.minSilos ({p.MinSilos}).");
            }
        }

        if (p.RoundDeadlineSeconds is { } deadline)
        {
            report.Range(deadline, 1, MaxRoundDeadlineSeconds, "$.participation.roundDeadlineSeconds", nameof(MaxRoundDeadlineSeconds));
        }

        if (report.Required(p.FailurePolicy, "$.participation.failurePolicy"))
        {
            report.Enum(p.FailurePolicy, FailurePolicies.All, "$.participation.failurePolicy");
        }
    }

    private static void ValidateRetry(RetrySpec? retry, Reporter report)
    {
        if (!report.Required(retry, "$.retry"))
        {
            return;
        }

        report.Range(retry.MaxAttempts, 1, 10, "$.retry.maxAttempts", "10");
        void Seconds(double value, double min, double max, string path)
        {
            if (!double.IsFinite(value) || value < min || value > max)
            {
                report.Add(path, "range", $"{path[2..]} must be from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}; got {value.ToString(CultureInfo.InvariantCulture)}.");
            }
        }

        Seconds(retry.FirstIntervalSeconds, 0.1, 3600, "$.retry.firstIntervalSeconds");
        Seconds(retry.BackoffCoefficient, 1, 10, "$.retry.backoffCoefficient");
        Seconds(retry.MaxIntervalSeconds, 0.1, 86400, "$.retry.maxIntervalSeconds");
    }

    private static void ValidateRobustness(RobustnessSpec? robustness, Reporter report)
    {
        if (report.Required(robustness, "$.robustness") && robustness.MaxNormRatio is { } ratio && (!double.IsFinite(ratio) || ratio < 1 || ratio > MaxNormRatio))
        {
            report.Add("$.robustness.maxNormRatio", "range", $"robustness.maxNormRatio must be from 1 to {MaxNormRatio}; got {ratio.ToString(CultureInfo.InvariantCulture)}.");
        }
    }

    private static void ValidatePrivacy(RunSpec spec, Reporter report)
    {
        if (!report.Required(spec.Privacy, "$.privacy"))
        {
            return;
        }

        var p = spec.Privacy;
        if (report.Required(p.Mode, "$.privacy.mode"))
        {
            report.Enum(p.Mode, PrivacyModes.All, "$.privacy.mode");
        }

        // An aggregate over one silo is that silo's value, so eyes-off needs at least two.
        var silos = Math.Max(2, spec.Silos?.Count ?? 0);
        report.Range(p.MinAggregateSilos, p.Mode == PrivacyModes.EyesOff ? 2 : 1, silos, "$.privacy.minAggregateSilos", "2 (eyes-off) and the number of silos");

        ValidateSecureAggregation(spec, report);
        if (p.DifferentialPrivacy is not { } dp)
        {
            return;
        }

        void Number(double value, double min, double max, bool minExclusive, string path)
        {
            if (!double.IsFinite(value) || value > max || (minExclusive ? value <= min : value < min))
            {
                report.Add(path, "range", $"{path[2..]} must be {(minExclusive ? "more than" : "from")} {min.ToString(CultureInfo.InvariantCulture)} {(minExclusive ? "and at most" : "to")} {max.ToString(CultureInfo.InvariantCulture)}; got {value.ToString(CultureInfo.InvariantCulture)}.");
            }
        }

        if (spec.Robustness?.MaxNormRatio is not null)
        {
            // The median screen makes one silo's acceptance depend on the others' updates, which breaks the sensitivity
            // bound the accountant assumes; clipping already bounds each silo's influence.
            report.Add("$.robustness.maxNormRatio", "conflict", "robustness.maxNormRatio cannot be combined with privacy.differentialPrivacy: clipping bounds each silo's influence instead.");
        }

        Number(dp.ClipNorm, 0, 1e6, minExclusive: true, "$.privacy.differentialPrivacy.clipNorm");
        Number(dp.NoiseMultiplier, 0.1, 100, minExclusive: false, "$.privacy.differentialPrivacy.noiseMultiplier");
        Number(dp.Delta, 0, 0.1, minExclusive: true, "$.privacy.differentialPrivacy.delta");
        if (dp.EpsilonBudget is { } budget)
        {
            Number(budget, 0, 1000, minExclusive: true, "$.privacy.differentialPrivacy.epsilonBudget");
        }
    }

    private static void ValidateSecureAggregation(RunSpec spec, Reporter report)
    {
        if (spec.Privacy.SecureAggregation is not { } sa)
        {
            return;
        }

        var dp = spec.Privacy.DifferentialPrivacy;
        if (sa.ClipNorm is { } clip)
        {
            if (!double.IsFinite(clip) || clip <= 0 || clip > 1e6)
            {
                report.Add("$.privacy.secureAggregation.clipNorm", "range", $"privacy.secureAggregation.clipNorm must be more than 0 and at most 1000000; got {clip.ToString(CultureInfo.InvariantCulture)}.");
            }
            else if (dp is not null && clip != dp.ClipNorm)
            {
                report.Add("$.privacy.secureAggregation.clipNorm", "conflict", "privacy.secureAggregation.clipNorm differs from privacy.differentialPrivacy.clipNorm; leave it out to use the latter.");
            }
        }
        else if (dp is null)
        {
            report.Add("$.privacy.secureAggregation.clipNorm", "required", "privacy.secureAggregation.clipNorm is required without differential privacy: clipping bounds the values the masks must hide.");
        }

        if (sa.MaxExamples is < 1 or > 1L << 53)
        {
            report.Add("$.privacy.secureAggregation.maxExamples", "range", $"privacy.secureAggregation.maxExamples must be from 1 to 2^53; got {sa.MaxExamples.ToString(CultureInfo.InvariantCulture)}.");
        }

        report.Range(sa.MaxAttempts, 1, 10, "$.privacy.secureAggregation.maxAttempts", "1 and 10");
        var silos = spec.Silos?.Count ?? 0;
        var needed = spec.Privacy.Mode == PrivacyModes.EyesOff ? Math.Max(2, spec.Privacy.MinAggregateSilos) : 2;
        if (silos < 2)
        {
            report.Add("$.privacy.secureAggregation", "conflict", "Secure aggregation needs at least 2 silos: a lone masked update has no mask.");
        }
        else if (spec.Participation is { } participation && (participation.SampleCount is null or > 0) && (participation.SampleFraction is null or (> 0 and <= 1))
            && Strategies.ParticipationPolicy.SampleSize(participation, silos) < needed)
        {
            report.Add("$.participation", "conflict", $"Secure aggregation needs at least {needed} silos sampled per round; this participation samples {Strategies.ParticipationPolicy.SampleSize(participation, silos)} of {silos}.");
        }

        if (spec.Robustness?.MaxNormRatio is not null)
        {
            // The screen compares each update with the others, which needs the updates in the clear.
            report.Add("$.robustness.maxNormRatio", "conflict", "robustness.maxNormRatio cannot be combined with privacy.secureAggregation: the aggregator never sees an individual update.");
        }
    }

    // Cross-site evaluation publishes each silo's local model to the other silos and reports each silo's score on its own.
    private static void ValidateCrossSite(RunSpec spec, Reporter report)
    {
        if (!spec.Evaluation.CrossSite)
        {
            return;
        }

        const string path = "$.evaluation.crossSite";
        if (spec.Privacy?.Mode == PrivacyModes.EyesOff)
        {
            report.Add(path, "conflict", "evaluation.crossSite publishes each silo's local model and reports each silo's own scores, which eyes-off forbids; eyes-off runs evaluate the global model, aggregated over enough silos.");
        }

        if (spec.Privacy?.SecureAggregation is not null)
        {
            report.Add(path, "conflict", "evaluation.crossSite needs each silo's local model, which secure aggregation keeps inside the silo.");
        }

        if (spec.Privacy?.DifferentialPrivacy is not null)
        {
            report.Add(path, "conflict", "evaluation.crossSite would publish local models without noise, outside differential privacy's guarantee.");
        }

        if (spec.Silos?.Contains(Runs.CrossSiteMatrix.Global) == true)
        {
            report.Add(path, "conflict", $"evaluation.crossSite names the global model's row '{Runs.CrossSiteMatrix.Global}', which is also a silo of this run; rename the silo.");
        }

        if (spec.Silos?.Count > MaxCrossSiteSilos)
        {
            report.Add(path, "size", $"evaluation.crossSite scores n + 1 models on n silos; at most {MaxCrossSiteSilos} silos, got {spec.Silos.Count}.");
        }
    }

    private static void ValidateResumeFrom(RunSpec spec, SpecLimits limits, Reporter report)
    {
        if (spec.ResumeFrom is not { } from)
        {
            return;
        }

        if (!IsValidRunId(from.RunId))
        {
            report.Add("$.resumeFrom.runId", "pattern", $"resumeFrom.runId must be a run id: 3-63 characters of lowercase a-z, 0-9 and '-', starting and ending with a letter or digit; got {SpecPath.Quote(from.RunId)}.");
        }
        else if (from.RunId == spec.RunId)
        {
            report.Add("$.resumeFrom.runId", "conflict", "resumeFrom.runId names this run itself; to continue a run whose orchestration was lost, resume it (fl resume, POST /api/runs/{id}/resume).");
        }

        if (from.Round is { } round)
        {
            // Round r of the earlier run becomes this run's round r, so at least one round must remain after it.
            var rounds = spec.Training is { Rounds: var r } && r >= 1 && r <= limits.MaxRounds ? r : limits.MaxRounds;
            report.Range(round, 0, rounds - 1, "$.resumeFrom.round", "training.rounds - 1");
        }
    }

    private static void ValidateModelSize(RunSpec spec, SpecLimits limits, Reporter report)
    {
        // Only a model whose every part is valid has a meaningful count; other errors are already reported.
        var model = spec.Model;
        var classes = spec.Data?.Classes ?? 0;
        var inputs = model?.Inputs ?? spec.Data?.Features?.Count ?? 0;
        if (model?.Hidden is null || Models.ModelCatalog.Find(model.Architecture) is not { } kind || inputs < 1 || classes < 1)
        {
            return;
        }

        var problems = 0;
        kind.Validate(model, inputs, limits, (_, _, _) => problems++);
        if (problems > 0)
        {
            return;
        }

        long count;
        var plan = kind.Plan(model, inputs, classes);
        try
        {
            count = plan.Parameters;
        }
        catch (OverflowException)
        {
            count = long.MaxValue;
        }

        if (spec.Training?.Freeze is { Count: > 0 } && spec.Model.Architecture == ModelArchitectures.TorchScript)
        {
            report.Add("$.training.freeze", "unsupported", "training.freeze is not supported for torchscript models yet: their layers are known only once the file is loaded.");
        }
        else if (spec.Training?.Freeze is { } freeze)
        {
            var trainable = Models.FrozenLayers.Trainable(plan);
            for (var i = 0; i < freeze.Count; i++)
            {
                if (!trainable.Contains(freeze[i], StringComparer.Ordinal))
                {
                    report.Add(SpecPath.Index("$.training.freeze", i), "not-found", $"training.freeze[{i}] must name a layer of the model that has parameters ({string.Join(", ", trainable)}); got {SpecPath.Quote(freeze[i])}.");
                }
                else if (freeze.Take(i).Contains(freeze[i], StringComparer.Ordinal))
                {
                    report.Add(SpecPath.Index("$.training.freeze", i), "duplicate", $"training.freeze[{i}] repeats {SpecPath.Quote(freeze[i])}.");
                }
            }

            if (trainable.All(freeze.Contains))
            {
                report.Add("$.training.freeze", "count", "training.freeze names every layer that has parameters: nothing would train.");
            }
        }

        if (count > limits.MaxParameters)
        {
            report.Add("$.model", "model-size", $"The model has {count} trainable parameters; the limit MaxParameters is {limits.MaxParameters}.");
        }
    }

    private static bool IsLowercaseId(string? id, int minLength, int maxLength)
    {
        if (id is null || id.Length < minLength || id.Length > maxLength)
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!IsLowerAlphanumeric(c) && c != '-')
            {
                return false;
            }
        }

        return IsLowerAlphanumeric(id[0]) && IsLowerAlphanumeric(id[^1]);
    }

    /// <summary>True for an Azure blob container name: 3-63 characters of lowercase <c>a-z</c>, <c>0-9</c> and single hyphens, starting and ending with a letter or digit.</summary>
    public static bool IsValidContainerName(string? name) => name is not null &&
        IsLowercaseId(name, 3, 63) && !name.Contains("--", StringComparison.Ordinal);

    private static bool IsLowerAlphanumeric(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');

    /// <summary>Collects errors with a few helpers for the common rules.</summary>
    private readonly struct Reporter(List<SpecError> errors)
    {
        public void Add(string path, string rule, string message) => errors.Add(new SpecError(path, rule, message));

        /// <summary>Reports <c>required</c> and returns false when <paramref name="value"/> is null.</summary>
        public bool Required([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] object? value, string path)
        {
            if (value is null)
            {
                Add(path, "required", $"{path[2..]} is required and must not be null.");
                return false;
            }

            return true;
        }

        public void Range(long value, long min, long max, string path, string limitName)
        {
            if (value < min || value > max)
            {
                Add(path, "range", $"{path[2..]} must be from {min} to {max} (limit {limitName}); got {value}.");
            }
        }

        public void Enum(string value, IReadOnlyList<string> allowed, string path)
        {
            if (!allowed.Contains(value, StringComparer.Ordinal))
            {
                Add(path, "enum", $"{path[2..]} must be one of {string.Join(", ", allowed)}; got {SpecPath.Quote(value)}.");
            }
        }
    }
}
