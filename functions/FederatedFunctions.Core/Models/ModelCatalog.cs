using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary>Every model kind, by name: the one place a new architecture is registered.</summary>
public static class ModelCatalog
{
    private static readonly IModelKind[] Kinds =
    [
        new LogisticRegressionModel(), new MultilayerPerceptronModel(), new ConvolutionalModel(),
        new RecurrentModel(RecurrentModel.GatedRecurrentUnit), new RecurrentModel(RecurrentModel.LongShortTermMemory),
        new TorchScriptModel(),
    ];

    // What a plan checks: the structure, not the host's limits on size (the validator applies those).
    private static readonly SpecLimits Structure = new() { MaxHiddenLayers = int.MaxValue, MaxLayers = int.MaxValue, MaxInputs = int.MaxValue, MaxActivations = int.MaxValue };

    /// <summary>The names of every kind, in order.</summary>
    public static IReadOnlyList<string> Names { get; } = Kinds.Select(k => k.Name).ToArray();

    /// <summary>The kind named <paramref name="architecture"/>, or null.</summary>
    public static IModelKind? Find(string? architecture) => Kinds.FirstOrDefault(k => k.Name == architecture);

    /// <summary>The plan of <paramref name="model"/> for the given sizes, after checking it as the validator does.</summary>
    /// <exception cref="ArgumentException">An unknown architecture, or a model the validator refuses; the message lists every problem.</exception>
    public static ModelPlan Plan(ModelSpec model, int inputs, int classes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        var kind = Find(model.Architecture) ?? throw new ArgumentException(
            $"Unknown model architecture '{model.Architecture}'; expected one of: {string.Join(", ", Names)}.", nameof(model));
        if (model.Inputs is { } declared && declared != inputs)
        {
            throw new ArgumentException($"The model declares {declared} inputs but {inputs} were given.", nameof(inputs));
        }

        var problems = new List<string>();
        kind.Validate(model, inputs, Structure, (path, _, message) => problems.Add($"{path}: {message}"));
        return problems.Count == 0 ? kind.Plan(model, inputs, classes) : throw new ArgumentException(string.Join(" ", problems), nameof(model));
    }
}
