using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Models;

/// <summary>Frozen layers (<c>training.freeze</c>): which parameters they name, and a model with them restored.</summary>
public static class FrozenLayers
{
    /// <summary>The name of layer <paramref name="index"/> of a plan, the prefix of its parameters (<c>layers.3</c>).</summary>
    public static string LayerName(int index) => "layers." + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The names of a plan's layers that have parameters, which are the ones a spec may freeze.</summary>
    public static IReadOnlyList<string> Trainable(ModelPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return plan.Layers.Select((layer, i) => (layer, i)).Where(l => l.layer.Parameters > 0).Select(l => LayerName(l.i)).ToArray();
    }

    /// <summary>Whether parameter <paramref name="name"/> belongs to one of the frozen layers.</summary>
    public static bool IsFrozen(string name, IReadOnlyList<string>? frozen) =>
        frozen is { Count: > 0 } && frozen.Any(layer => name.StartsWith(layer + ".", StringComparison.Ordinal));

    /// <summary>
    /// <paramref name="model"/> with every frozen parameter taken from <paramref name="global"/>, bit for bit: what the
    /// aggregation writes, so that neither averaging, quantization (secure aggregation) nor noise (differential privacy,
    /// of which this is post-processing) moves a frozen layer.
    /// </summary>
    public static IReadOnlyList<NamedTensor> Restore(IReadOnlyList<NamedTensor> model, IReadOnlyList<NamedTensor> global, IReadOnlyList<string>? frozen)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(global);
        if (frozen is not { Count: > 0 })
        {
            return model;
        }

        var before = global.ToDictionary(t => t.Name, StringComparer.Ordinal);
        return model.Select(t => IsFrozen(t.Name, frozen) ? before[t.Name] : t).ToArray();
    }
}
