using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary>Checks shared by the model kinds.</summary>
internal static class ModelFields
{
    /// <summary>A kind that reads plain rows (neither images nor sequences) refuses <c>model.shape</c> and <c>model.layers</c>.</summary>
    public static void RefuseImageFields(ModelSpec model, string kind, Action<string, string, string> add)
    {
        if (model.Shape is not null)
        {
            add("$.model.shape", "not-allowed", $"model.shape is for a cnn, gru or lstm; a {kind} model reads rows of features.");
        }

        if (model.Layers is not null)
        {
            add("$.model.layers", "not-allowed", $"model.layers is for a cnn; a {kind} model has {(kind == ModelArchitectures.MultilayerPerceptron ? "model.hidden" : "no hidden layers")}.");
        }
    }
}
