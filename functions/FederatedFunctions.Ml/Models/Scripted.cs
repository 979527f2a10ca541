using System.Runtime.InteropServices;
using FederatedFunctions.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>
/// A TorchScript module (saved by PyTorch's <c>torch.jit.save</c>) loaded by TorchSharp, seen as the product's other models
/// are: one tensor of rows in, logits out, and a state dict under PyTorch's own names (no wrapper prefix).
/// </summary>
/// <remarks>
/// Every member that walks parameters, buffers or modes forwards to the loaded module, so the trainer's optimizer, its
/// freezing and <see cref="StateDicts"/> work on the script's tensors unchanged. Loading checks the module once: a forward
/// on one row of zeros must return one row of <c>classes</c> logits.
/// </remarks>
public sealed class Scripted : nn.Module<Tensor, Tensor>
{
    private readonly jit.ScriptModule<Tensor, Tensor> script;

    private Scripted(jit.ScriptModule<Tensor, Tensor> script)
        : base(nameof(Scripted)) => this.script = script;

    /// <summary>Loads <paramref name="file"/> and checks that it maps <paramref name="inputs"/> features to <paramref name="classes"/> logits.</summary>
    /// <exception cref="InvalidScriptException">The file is not TorchScript, or its forward fails or returns another shape.</exception>
    public static Scripted Load(ReadOnlyMemory<byte> file, int inputs, int classes)
    {
        TorchRuntime.EnsureInitialized();
        jit.ScriptModule<Tensor, Tensor> module;
        try
        {
            module = jit.load<Tensor, Tensor>(file.ToArray());
        }
        catch (Exception ex) when (ex is ExternalException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidScriptException($"The model.script file is not TorchScript that TorchSharp can load: {ex.Message.Split('\n')[0]}");
        }

        var scripted = new Scripted(module);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            scripted.eval();
            var output = module.call(zeros(1, inputs));
            if (output.shape is not [1, var width] || width != classes)
            {
                throw new InvalidScriptException($"The model.script module maps a batch of 1 row of {inputs} features to shape [{string.Join(", ", output.shape)}]; [1, {classes}] (one logit per class) is expected.");
            }
        }
        catch (ExternalException ex)
        {
            scripted.Dispose();
            throw new InvalidScriptException($"The model.script module fails on a batch of rows of {inputs} features: {ex.Message.Split('\n')[0]}");
        }
        catch
        {
            scripted.Dispose();
            throw;
        }

        scripted.train();
        return scripted;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => script.call(input);

    /// <inheritdoc />
    public override IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> named_parameters(bool recurse = true) => script.named_parameters(recurse);

    /// <inheritdoc />
    public override IEnumerable<TorchSharp.Modules.Parameter> parameters(bool recurse = true) => script.parameters(recurse);

    /// <inheritdoc />
    public override IEnumerable<(string name, Tensor buffer)> named_buffers(bool recurse = true, bool include_nonpersistent = true) => script.named_buffers(recurse, include_nonpersistent);

    /// <inheritdoc />
    public override Dictionary<string, Tensor> state_dict(Dictionary<string, Tensor>? destination = null, string? prefix = null) => script.state_dict(destination, prefix);

    /// <inheritdoc />
    public override void train(bool train = true) => script.train(train);

    /// <inheritdoc />
    public override void eval() => script.eval();

    /// <inheritdoc />
    public override bool training => script.training;

    /// <inheritdoc />
    public override void zero_grad(bool set_to_none = true) => script.zero_grad(set_to_none);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            script.Dispose();
        }

        base.Dispose(disposing);
    }
}
