using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary>
/// <c>gru</c> and <c>lstm</c>: a recurrent network over sequences. Each row's features are a window of
/// <c>model.shape</c> = [steps, features], step by step (one step's features side by side); recurrent layers of the
/// <c>model.hidden</c> sizes read it in order, and a linear layer maps the last layer's output at the last step to the
/// classes.
/// </summary>
/// <remarks>
/// <para>
/// Every recurrent layer is its own plan layer, PyTorch's one-layer <c>nn.GRU(in, hidden, batch_first=True)</c> (or
/// <c>nn.LSTM</c>): the layers may differ in size, each keeps PyTorch's parameter names under its index
/// (<c>layers.1.weight_ih_l0</c>), and <c>training.freeze</c> can freeze one alone. Stacked, they compute what one
/// multi-layer <c>nn.GRU</c> without dropout would.
/// </para>
/// <para>
/// Each row is an independent example: the state starts at zero for every row, and nothing is carried between rows,
/// batches, rounds or silos. So the data stay tables, one window per row, and averaging works as for any other kind.
/// </para>
/// </remarks>
public sealed class RecurrentModel : IModelKind
{
    /// <summary>The architecture name of gated recurrent units (<see cref="ModelArchitectures.GatedRecurrentUnit"/>).</summary>
    public const string GatedRecurrentUnit = ModelArchitectures.GatedRecurrentUnit;

    /// <summary>The architecture name of long short-term memory (<see cref="ModelArchitectures.LongShortTermMemory"/>).</summary>
    public const string LongShortTermMemory = ModelArchitectures.LongShortTermMemory;

    /// <summary>The largest hidden size of a recurrent layer.</summary>
    public const int MaxHiddenSize = 4096;

    // "A gru", "An lstm": the kind as a message names it.
    private readonly string subject;

    /// <summary>The kind named <paramref name="architecture"/>: <see cref="GatedRecurrentUnit"/> or <see cref="LongShortTermMemory"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Another name.</exception>
    public RecurrentModel(string architecture)
    {
        Name = architecture is GatedRecurrentUnit or LongShortTermMemory
            ? architecture
            : throw new ArgumentOutOfRangeException(nameof(architecture), architecture, $"A recurrent model is a {GatedRecurrentUnit} or an {LongShortTermMemory}.");
        subject = (architecture == LongShortTermMemory ? "An " : "A ") + architecture;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public void Validate(ModelSpec model, int? inputs, SpecLimits limits, Action<string, string, string> add)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(add);
        if (model.Layers is not null)
        {
            add("$.model.layers", "not-allowed", $"model.layers is for a cnn. {subject} lists the hidden sizes of its recurrent layers in model.hidden.");
        }

        var hidden = model.Hidden ?? [];
        if (hidden.Count < 1 || hidden.Count > limits.MaxHiddenLayers)
        {
            add("$.model.hidden", "count", $"{subject} needs 1 to {limits.MaxHiddenLayers} recurrent layers in model.hidden (limit MaxHiddenLayers); got {hidden.Count}.");
        }

        for (var i = 0; i < hidden.Count; i++)
        {
            if (hidden[i] is < 1 or > MaxHiddenSize)
            {
                add(SpecPath.Index("$.model.hidden", i), "range", $"model.hidden[{i}], a recurrent layer's hidden size, must be from 1 to {MaxHiddenSize} (limit {nameof(MaxHiddenSize)}); got {hidden[i]}.");
            }
        }

        if (model.Shape is not { Count: 2 } shape)
        {
            add("$.model.shape", "required", $"{subject} needs model.shape: [steps, features], the window each row holds; got {Describe(model.Shape)}.");
            return;
        }

        if (shape[0] < 1 || shape[1] < 1 || shape[0] > limits.MaxInputs || shape[1] > limits.MaxInputs)
        {
            add("$.model.shape", "range", $"model.shape [steps, features] must hold 1 to {limits.MaxInputs} (limit MaxInputs) steps and features; got {Describe(shape)}.");
            return;
        }

        var values = (long)shape[0] * shape[1];
        if (inputs is { } n && values != n)
        {
            add("$.model.shape", "mismatch", $"model.shape {Describe(shape)} holds {values} values per row, but the model has {n} inputs; they must agree.");
            return;
        }

        // What a layer holds per example (and keeps for the backward pass) grows with the window: steps × hidden.
        for (var i = 0; i < hidden.Count; i++)
        {
            if (hidden[i] is >= 1 and <= MaxHiddenSize && (long)shape[0] * hidden[i] > limits.MaxActivations)
            {
                add(SpecPath.Index("$.model.hidden", i), "size", $"model.hidden[{i}]: its output of {shape[0]} steps x {hidden[i]} values per example is over the limit MaxActivations ({limits.MaxActivations}).");
            }
        }
    }

    /// <inheritdoc />
    public ModelPlan Plan(ModelSpec model, int inputs, int classes)
    {
        ArgumentNullException.ThrowIfNull(model);
        var shape = model.Shape!;
        var layers = new List<Layer> { new SequenceLayer(shape[0], shape[1]) };
        var width = shape[1];
        foreach (var size in model.Hidden)
        {
            layers.Add(Name == LongShortTermMemory ? new LstmLayer(width, size) : new GruLayer(width, size));
            width = size;
        }

        layers.Add(new LastStepLayer());
        layers.Add(new LinearLayer(width, classes));
        return new ModelPlan(layers);
    }

    private static string Describe(IReadOnlyList<int>? shape) => shape is null ? "nothing" : "[" + string.Join(", ", shape) + "]";
}
