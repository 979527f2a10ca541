using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary>
/// A model brought from PyTorch as TorchScript: <c>torch.jit.script(model)</c> or <c>torch.jit.trace(model, example)</c>,
/// saved with <c>torch.jit.save</c>, uploaded with <c>fl model put</c>, named by <c>model.script</c> (path and SHA-256).
/// </summary>
/// <remarks>
/// <para>TorchSharp loads the file in each silo (<c>torch.jit.load</c>) and trains it with the run's optimizer and loss; the
/// file's own parameters (PyTorch's names, e.g. <c>0.weight</c>) are the run's round 0, and only parameters and buffers
/// travel between silos and the aggregator, as for every other kind. Its <c>forward</c> must take one tensor of rows
/// <c>[batch, model.inputs]</c> and return logits <c>[batch, classes]</c>; a module that does not is refused when the run
/// starts, with what it returned.</para>
/// <para>The plan is opaque (<see cref="ScriptLayer"/>): the parameter count and the layer names are known only once the
/// file is loaded, so <c>training.freeze</c> is not supported for this kind yet.</para>
/// <para>The file's SHA-256 is part of what eyes-off approves: an eyes-off run needs it in <c>Trust:ApprovedScripts</c>
/// besides the silos' trainer in <c>Trust:ApprovedTrainers</c>.</para>
/// </remarks>
public sealed class TorchScriptModel : IModelKind
{
    /// <inheritdoc />
    public string Name => ModelArchitectures.TorchScript;

    /// <inheritdoc />
    public void Validate(ModelSpec model, int? inputs, SpecLimits limits, Action<string, string, string> add)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(add);
        if (model.Script is null)
        {
            add("$.model.script", "required", "A torchscript model needs model.script: { \"path\": ..., \"sha256\": ... } (fl model put --file model.pt prints it).");
        }

        if (model.Hidden is { Count: > 0 })
        {
            add("$.model.hidden", "not-allowed", "model.hidden is for an mlp, gru or lstm; a torchscript model's layers are in its file.");
        }

        if (model.Pretrained is not null)
        {
            add("$.model.pretrained", "not-allowed", "A torchscript model starts from the parameters saved in its file; model.pretrained is for the declared kinds.");
        }

        ModelFields.RefuseImageFields(model, Name, add);
    }

    /// <inheritdoc />
    public ModelPlan Plan(ModelSpec model, int inputs, int classes) => new([new ScriptLayer(inputs, classes)]);
}

/// <summary>A <c>model.script</c> file that does not load, or whose module does not map rows to one logit per class: retrying does not help.</summary>
public sealed class InvalidScriptException(string message) : Exception(message);
