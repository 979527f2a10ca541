using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary><c>mlp</c>: linear layers of the given hidden widths with ReLU between them, then a linear layer to the classes.</summary>
public sealed class MultilayerPerceptronModel : IModelKind
{
    /// <summary>The widest hidden layer.</summary>
    public const int MaxHiddenWidth = 4096;

    /// <inheritdoc />
    public string Name => ModelArchitectures.MultilayerPerceptron;

    /// <inheritdoc />
    public void Validate(ModelSpec model, int? inputs, SpecLimits limits, Action<string, string, string> add)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(add);
        var hidden = model.Hidden ?? [];
        if (hidden.Count < 1 || hidden.Count > limits.MaxHiddenLayers)
        {
            add("$.model.hidden", "count", $"An mlp needs 1 to {limits.MaxHiddenLayers} hidden layers (limit MaxHiddenLayers); got {hidden.Count}.");
        }

        for (var i = 0; i < hidden.Count; i++)
        {
            if (hidden[i] is < 1 or > MaxHiddenWidth)
            {
                add(SpecPath.Index("$.model.hidden", i), "range", $"model.hidden[{i}] must be from 1 to {MaxHiddenWidth} (limit {nameof(MaxHiddenWidth)}); got {hidden[i]}.");
            }
        }

        ModelFields.RefuseImageFields(model, Name, add);
    }

    /// <inheritdoc />
    public ModelPlan Plan(ModelSpec model, int inputs, int classes)
    {
        ArgumentNullException.ThrowIfNull(model);
        var widths = new[] { inputs }.Concat(model.Hidden).Append(classes).ToArray();
        var layers = new List<Layer>();
        for (var i = 0; i < widths.Length - 1; i++)
        {
            layers.Add(new LinearLayer(widths[i], widths[i + 1]));
            if (i < widths.Length - 2)
            {
                layers.Add(new ReluLayer());
            }
        }

        return new ModelPlan(layers);
    }
}
