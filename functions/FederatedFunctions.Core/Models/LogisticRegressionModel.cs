using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary><c>logreg</c>: multinomial logistic regression, one linear layer from the features to the classes' logits.</summary>
public sealed class LogisticRegressionModel : IModelKind
{
    /// <inheritdoc />
    public string Name => ModelArchitectures.LogisticRegression;

    /// <inheritdoc />
    public void Validate(ModelSpec model, int? inputs, SpecLimits limits, Action<string, string, string> add)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(add);
        if (model.Hidden is { Count: > 0 })
        {
            add("$.model.hidden", "not-allowed", $"A logreg model has no hidden layers; got {model.Hidden.Count}.");
        }

        ModelFields.RefuseImageFields(model, Name, add);
    }

    /// <inheritdoc />
    public ModelPlan Plan(ModelSpec model, int inputs, int classes) => new([new LinearLayer(inputs, classes)]);
}
