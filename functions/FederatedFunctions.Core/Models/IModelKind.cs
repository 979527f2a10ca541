using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary>
/// A model kind (an architecture of <c>model.architecture</c>): it checks its part of a spec and declares the layers, in
/// one file, so the validator, the parameter count and the trainer's module all come from the same place.
/// </summary>
/// <remarks>Register a new kind in <see cref="ModelCatalog"/>; see <c>docs/run-spec.md</c>.</remarks>
public interface IModelKind
{
    /// <summary>The name in <c>model.architecture</c>.</summary>
    string Name { get; }

    /// <summary>Reports every problem with the kind's fields of <paramref name="model"/>, by JSON path and rule.</summary>
    /// <param name="model">The spec's model.</param>
    /// <param name="inputs">The model's input width, when the spec gives it.</param>
    /// <param name="limits">The host's limits.</param>
    /// <param name="add">Reports a problem: JSON path, rule, message.</param>
    void Validate(ModelSpec model, int? inputs, SpecLimits limits, Action<string, string, string> add);

    /// <summary>The layers of a model that <see cref="Validate"/> accepts, for <paramref name="inputs"/> features and <paramref name="classes"/> classes.</summary>
    ModelPlan Plan(ModelSpec model, int inputs, int classes);
}
