using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Ml.Experiments;

/// <summary>Parses and checks an experiment file: every problem is reported at once, by JSON path and rule, as run specs are.</summary>
/// <remarks>
/// The <c>run</c> object is a run spec without <c>runId</c>, <c>silos</c> and <c>strategy</c> (the experiment fills them in):
/// it is checked, once per strategy, by the run spec parser and validator themselves, so an experiment accepts exactly
/// the runs <c>fl train</c> would.
/// </remarks>
public static class ExperimentSpecParser
{
    /// <summary>Longest experiment id: room is left for the run ids <c>{id}-{arm}-{yyyyMMddHHmmss}</c>.</summary>
    public const int MaxIdLength = 24;

    /// <summary>Most silos an experiment simulates.</summary>
    public const int MaxSilos = 64;

    /// <summary>Most federated arms.</summary>
    public const int MaxStrategies = 12;

    private static readonly string[] Fields = ["experimentId", "dataset", "run", "strategies", "baselines", "targetAccuracy"];
    private static readonly string[] DatasetFields = ["source", "silos", "seed", "labelSkew", "testFraction", "alpha", "trainPerSilo", "testPerSilo", "classes", "features"];
    private static readonly string[] BaselineFields = ["centralized", "local"];

    /// <summary>The experiment in <paramref name="json"/>, or every problem with it.</summary>
    public static (ExperimentSpec? Spec, IReadOnlyList<SpecError> Errors) Parse(string json)
    {
        var errors = new List<SpecError>();
        void Add(string path, string rule, string message) => errors.Add(new SpecError(path, rule, message));
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip }) as JsonObject
                ?? throw new JsonException("The experiment must be a JSON object.");
        }
        catch (JsonException ex)
        {
            return (null, [new SpecError("$", "json", ex.Message)]);
        }

        Unknown(root, "$", Fields, Add);
        var id = Text(root, "experimentId", "$", Add, required: true);
        if (id is not null && (id.Length > MaxIdLength || !RunSpecValidator.IsValidRunId(id)))
        {
            Add("$.experimentId", "pattern", $"experimentId must be 3-{MaxIdLength} characters of lowercase a-z, 0-9 and '-', starting and ending with a letter or digit; got {SpecPath.Quote(id)}.");
        }

        var dataset = ParseDataset(root["dataset"], Add);
        var (centralized, local) = (true, true);
        if (root["baselines"] is { } baselines)
        {
            if (baselines is not JsonObject b)
            {
                Add("$.baselines", "type", "baselines must be an object.");
            }
            else
            {
                Unknown(b, "$.baselines", BaselineFields, Add);
                centralized = Bool(b, "centralized", "$.baselines", Add) ?? true;
                local = Bool(b, "local", "$.baselines", Add) ?? true;
            }
        }

        var target = Number(root, "targetAccuracy", "$", Add);
        if (target is { } t && !(t > 0 && t <= 1))
        {
            Add("$.targetAccuracy", "range", $"targetAccuracy must be more than 0 and at most 1; got {t.ToString(CultureInfo.InvariantCulture)}.");
        }

        var arms = ParseArms(root["strategies"], Add);
        RunSpec? run = null;
        if (root["run"] is not JsonObject template)
        {
            Add("$.run", root["run"] is null ? "required" : "type", "run must be an object: a run spec without runId, silos and strategy.");
        }
        else
        {
            foreach (var field in new[] { "runId", "silos", "strategy" }.Where(template.ContainsKey))
            {
                Add($"$.run.{field}", "conflict", $"run.{field} is set by the experiment: " + field switch
                {
                    "silos" => "it makes its own silos from dataset.",
                    "strategy" => "list the strategies under strategies.",
                    _ => "each arm gets its own run id.",
                });
            }

            if (errors.Count == 0 && id is not null && dataset is not null)
            {
                (run, var strategies) = CheckRuns(template, id, dataset, arms, centralized, local, Add);
                arms = arms.Select((a, i) => (a.Arm with { Strategy = strategies.Count > i ? strategies[i] : a.Arm.Strategy }, a.Raw)).ToList();
            }
        }

        return errors.Count == 0 ? (new ExperimentSpec(id!, dataset!, run!, arms.Select(a => a.Arm).ToArray(), centralized, local, target), []) : (null, errors);
    }

    /// <summary>The ids of an experiment's silos.</summary>
    public static IReadOnlyList<string> SiloIds(string experimentId, int silos) =>
        Enumerable.Range(1, silos).Select(i => $"{experimentId}-{i.ToString(CultureInfo.InvariantCulture)}").ToArray();

    // Each arm's run, checked by the run spec parser: errors come back with the experiment's paths.
    private static (RunSpec? Run, IReadOnlyList<StrategySpec> Strategies) CheckRuns(JsonObject template, string id, ExperimentDataset dataset, IReadOnlyList<(ExperimentArm Arm, JsonObject Raw)> arms, bool centralized, bool local, Action<string, string, string> add)
    {
        RunSpec? first = null;
        var strategies = new List<StrategySpec>();
        var silos = new JsonArray(SiloIds(id, dataset.Silos).Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());
        for (var i = 0; i < arms.Count; i++)
        {
            var doc = (JsonObject)template.DeepClone();
            doc["runId"] = $"{id}-check";
            doc["silos"] = silos.DeepClone();
            doc["strategy"] = arms[i].Raw.DeepClone();
            var parsed = RunSpecParser.Parse(doc.ToJsonString());
            foreach (var e in parsed.Errors)
            {
                var path = e.Path.StartsWith("$.strategy", StringComparison.Ordinal) ? $"$.strategies[{i}]" + e.Path["$.strategy".Length..]
                    : e.Path.StartsWith("$.silos", StringComparison.Ordinal) ? "$.dataset.silos"
                    : "$.run" + e.Path[1..];
                add(path, e.Rule, e.Message);
            }

            first ??= parsed.Spec;
            if (parsed.Spec is { } spec)
            {
                strategies.Add(spec.Strategy);
            }
        }

        if (first is null)
        {
            return (null, strategies);
        }

        if ((centralized || local) && first.Privacy.Mode == PrivacyModes.EyesOff)
        {
            add("$.baselines", "conflict", "Centralized and single-silo baselines pool or expose a silo's data, which eyes-off forbids: set baselines.centralized and baselines.local to false, or run the experiment eyes-on.");
        }

        if (first.Model.Pretrained is not null || first.ResumeFrom is not null || first.Model.Script is not null)
        {
            add(
                first.Model.Pretrained is not null ? "$.run.model.pretrained" : first.Model.Script is not null ? "$.run.model.script" : "$.run.resumeFrom",
                "unsupported",
                "Experiments start every arm from the seeded initial model of a declared kind; pretrained weights, TorchScript models and resumeFrom are not supported in experiments yet.");
        }

        var classes = dataset.Source == ExperimentSources.Digits ? DigitsDataset.Classes : dataset.Classes;
        var inputs = dataset.Source == ExperimentSources.Digits ? DigitsDataset.Pixels : dataset.Features;
        if (first.Data.Classes != classes)
        {
            add("$.run.data.classes", "conflict", $"run.data.classes is {first.Data.Classes}, but the {dataset.Source} dataset has {classes} classes.");
        }

        if (RunSpecValidator.ResolveInputs(first) != inputs)
        {
            add("$.run.model.inputs", "conflict", $"The model takes {RunSpecValidator.ResolveInputs(first)} inputs, but the {dataset.Source} dataset has {inputs} features.");
        }

        return (first with { RunId = null }, strategies);
    }

    private static ExperimentDataset? ParseDataset(JsonNode? node, Action<string, string, string> add)
    {
        if (node is not JsonObject d)
        {
            add("$.dataset", node is null ? "required" : "type", "dataset must be an object: { \"source\": \"digits\" | \"synthetic\", \"silos\": n, ... }.");
            return null;
        }

        Unknown(d, "$.dataset", DatasetFields, add);
        var source = Text(d, "source", "$.dataset", add, required: true);
        if (source is not null && !ExperimentSources.All.Contains(source))
        {
            add("$.dataset.source", "enum", $"dataset.source must be one of: {string.Join(", ", ExperimentSources.All)}; got {SpecPath.Quote(source)}.");
        }

        int Int(string name, int fallback, int min, int max, bool required = false)
        {
            var v = Number(d, name, "$.dataset", add);
            if (v is null)
            {
                if (required)
                {
                    add($"$.dataset.{name}", "required", $"dataset.{name} is required.");
                }

                return fallback;
            }

            if (v != Math.Floor(v.Value) || v < min || v > max)
            {
                add($"$.dataset.{name}", "range", $"dataset.{name} must be a whole number from {min} to {max}; got {v.Value.ToString(CultureInfo.InvariantCulture)}.");
                return fallback;
            }

            return (int)v.Value;
        }

        double Fraction(string name, double fallback, double min, double max, bool maxExclusive)
        {
            var v = Number(d, name, "$.dataset", add) ?? fallback;
            if (!(v >= min && (maxExclusive ? v < max : v <= max)))
            {
                add($"$.dataset.{name}", "range", $"dataset.{name} must be from {min.ToString(CultureInfo.InvariantCulture)} to {(maxExclusive ? "less than " : string.Empty)}{max.ToString(CultureInfo.InvariantCulture)}; got {v.ToString(CultureInfo.InvariantCulture)}.");
            }

            return v;
        }

        var silos = Int("silos", 2, 2, MaxSilos, required: true);
        var seedValue = Number(d, "seed", "$.dataset", add) ?? 1;
        if (seedValue != Math.Floor(seedValue) || Math.Abs(seedValue) > (1L << 53))
        {
            add("$.dataset.seed", "range", "dataset.seed must be a whole number of at most 2^53 in size.");
        }

        var alpha = Number(d, "alpha", "$.dataset", add);
        if (alpha is { } a && !(double.IsFinite(a) && a > 0 && a <= 1000))
        {
            add("$.dataset.alpha", "range", $"dataset.alpha must be more than 0 and at most 1000; got {a.ToString(CultureInfo.InvariantCulture)}.");
        }

        var dataset = new ExperimentDataset(
            source ?? ExperimentSources.Synthetic,
            silos,
            (long)seedValue,
            Fraction("labelSkew", 0.8, 0, 1, maxExclusive: false),
            Fraction("testFraction", 0.2, 0.05, 0.9, maxExclusive: false),
            alpha,
            Int("trainPerSilo", 500, 1, 1_000_000),
            Int("testPerSilo", 200, 1, 1_000_000),
            Int("classes", 4, 2, 1000),
            Int("features", 8, 1, 10_000));
        if (source == ExperimentSources.Digits)
        {
            foreach (var name in new[] { "alpha", "trainPerSilo", "testPerSilo", "classes", "features" }.Where(d.ContainsKey))
            {
                add($"$.dataset.{name}", "unused", $"dataset.{name} applies to the synthetic source only; the digits have fixed images and classes.");
            }
        }
        else if (source == ExperimentSources.Synthetic)
        {
            foreach (var name in new[] { "labelSkew", "testFraction" }.Where(d.ContainsKey))
            {
                add($"$.dataset.{name}", "unused", $"dataset.{name} applies to the digits source only; synthetic data is skewed by alpha.");
            }
        }

        return dataset;
    }

    private static List<(ExperimentArm Arm, JsonObject Raw)> ParseArms(JsonNode? node, Action<string, string, string> add)
    {
        var arms = new List<(ExperimentArm Arm, JsonObject Raw)>();
        if (node is not JsonArray list || list.Count == 0 || list.Count > MaxStrategies)
        {
            add("$.strategies", node is null ? "required" : "range", $"strategies must be a list of 1 to {MaxStrategies} strategies, e.g. [{{ \"name\": \"fedavg\" }}, {{ \"name\": \"fedprox\", \"proximalMu\": 0.01 }}].");
            return arms;
        }

        for (var i = 0; i < list.Count; i++)
        {
            var path = $"$.strategies[{i}]";
            if (list[i] is not JsonObject o)
            {
                add(path, "type", "Each strategy must be an object with a name.");
                continue;
            }

            var label = Text(o, "label", path, add, required: false);
            var raw = (JsonObject)o.DeepClone();
            raw.Remove("label");
            // The strategy itself is parsed by the run spec parser when each arm's run is checked, which reports its
            // unknown fields and types with exact paths; only the name is needed here, for the default label.
            var name = raw["name"] is JsonValue v && v.TryGetValue<string>(out var n) ? n : string.Empty;
            label ??= name;
            if (label.Length is 0 or > 16 || !RunSpecValidator.IsValidSiloId(label))
            {
                add($"{path}.label", "pattern", $"A strategy's label (its name when no label is given) becomes part of run ids: 1-16 characters of lowercase a-z, 0-9 and '-'; got {SpecPath.Quote(label)}.");
            }
            else if (arms.Any(a => a.Arm.Label == label))
            {
                add($"{path}.label", "duplicate", $"Two strategies are labelled {SpecPath.Quote(label)}; give each a distinct label.");
            }

            arms.Add((new ExperimentArm(label, new StrategySpec { Name = name }), raw));
        }

        return arms;
    }

    private static void Unknown(JsonObject o, string path, string[] known, Action<string, string, string> add)
    {
        foreach (var (name, _) in o.Where(p => !known.Contains(p.Key)))
        {
            add($"{path}.{name}", "unknown-field", $"Unknown field {SpecPath.Quote(name)} in {path}; known fields are {string.Join(", ", known)} (names are case-sensitive).");
        }
    }

    private static string? Text(JsonObject o, string name, string path, Action<string, string, string> add, bool required)
    {
        switch (o[name])
        {
            case null when required:
                add($"{path}.{name}", "required", $"{name} is required.");
                return null;
            case null:
                return null;
            case JsonValue v when v.TryGetValue<string>(out var s):
                return s;
            default:
                add($"{path}.{name}", "type", $"{name} must be a string.");
                return null;
        }
    }

    private static double? Number(JsonObject o, string name, string path, Action<string, string, string> add)
    {
        switch (o[name])
        {
            case null:
                return null;
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                return v.GetValue<double>();
            default:
                add($"{path}.{name}", "type", $"{name} must be a number.");
                return null;
        }
    }

    private static bool? Bool(JsonObject o, string name, string path, Action<string, string, string> add)
    {
        switch (o[name])
        {
            case null:
                return null;
            case JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False:
                return v.GetValue<bool>();
            default:
                add($"{path}.{name}", "type", $"{name} must be true or false.");
                return null;
        }
    }
}
