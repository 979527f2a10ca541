namespace FederatedFunctions.Core.Models;

/// <summary>
/// A model as a stack of layers: what a model kind (<see cref="IModelKind"/>) declares for a spec, and the one thing the
/// trainer builds a module from and the validator counts parameters from, so the two never disagree.
/// </summary>
/// <param name="Layers">The layers, in order. The module holds them as <c>layers.{index}</c>, which names the parameters
/// (<c>layers.0.weight</c>), as PyTorch's <c>nn.Sequential</c> would.</param>
public sealed record ModelPlan(IReadOnlyList<Layer> Layers)
{
    /// <summary>Trainable parameters (weights and biases) of every layer.</summary>
    /// <exception cref="OverflowException">The count does not fit in 64 bits.</exception>
    public long Parameters => Layers.Aggregate(0L, (total, layer) => checked(total + layer.Parameters));
}

/// <summary>One layer of a <see cref="ModelPlan"/>.</summary>
public abstract record Layer
{
    /// <summary>Its trainable parameters.</summary>
    public virtual long Parameters => 0;
}

/// <summary>A fully connected layer, <c>y = x Wᵀ + b</c>: PyTorch's <c>nn.Linear(in, out)</c>.</summary>
public sealed record LinearLayer(int In, int Out) : Layer
{
    /// <inheritdoc />
    public override long Parameters => checked(((long)In * Out) + Out);
}

/// <summary>The rectified linear unit.</summary>
public sealed record ReluLayer : Layer;

/// <summary>A 2-D convolution with a square kernel: PyTorch's <c>nn.Conv2d(in, out, kernel, stride, padding)</c>.</summary>
public sealed record Conv2dLayer(int InChannels, int OutChannels, int Kernel, int Stride, int Padding) : Layer
{
    /// <inheritdoc />
    public override long Parameters => checked(((long)InChannels * OutChannels * Kernel * Kernel) + OutChannels);
}

/// <summary>2-D max pooling with a square window: PyTorch's <c>nn.MaxPool2d(kernel, stride)</c>.</summary>
public sealed record MaxPool2dLayer(int Kernel, int Stride) : Layer;

/// <summary>
/// Group normalization: PyTorch's <c>nn.GroupNorm(groups, channels)</c>, with a scale and shift per channel. It keeps no
/// running statistics, so, unlike batch normalization, a model averaged over silos has no statistics to reconcile.
/// </summary>
public sealed record GroupNormLayer(int Groups, int Channels) : Layer
{
    /// <inheritdoc />
    public override long Parameters => 2L * Channels;
}

/// <summary>Dropout with probability <see cref="P"/> while training; the identity when evaluating.</summary>
public sealed record DropoutLayer(double P) : Layer;

/// <summary>Each row's features as an image of <see cref="Channels"/> × <see cref="Height"/> × <see cref="Width"/> (channel by channel, row by row).</summary>
public sealed record UnflattenLayer(int Channels, int Height, int Width) : Layer;

/// <summary>Each image back to one row of features.</summary>
public sealed record FlattenLayer : Layer;

/// <summary>
/// Each row's features as a sequence of <see cref="Steps"/> steps of <see cref="Features"/> values, step by step (a
/// step's values side by side): <c>[batch, steps, features]</c>.
/// </summary>
public sealed record SequenceLayer(int Steps, int Features) : Layer;

/// <summary>
/// A gated recurrent unit layer that reads a sequence from a zero state and gives its output at every step: PyTorch's
/// <c>nn.GRU(in, hidden, batch_first=True)</c>, with <c>weight_ih_l0</c> [3·hidden, in], <c>weight_hh_l0</c>
/// [3·hidden, hidden], <c>bias_ih_l0</c> and <c>bias_hh_l0</c> [3·hidden] (the reset, update and new gates).
/// </summary>
public sealed record GruLayer(int In, int Hidden) : Layer
{
    /// <inheritdoc />
    public override long Parameters => checked(3L * Hidden * ((long)In + Hidden + 2));
}

/// <summary>
/// A long short-term memory layer that reads a sequence from a zero state and gives its output at every step:
/// PyTorch's <c>nn.LSTM(in, hidden, batch_first=True)</c>, with <c>weight_ih_l0</c> [4·hidden, in], <c>weight_hh_l0</c>
/// [4·hidden, hidden], <c>bias_ih_l0</c> and <c>bias_hh_l0</c> [4·hidden] (the input, forget, cell and output gates).
/// </summary>
public sealed record LstmLayer(int In, int Hidden) : Layer
{
    /// <inheritdoc />
    public override long Parameters => checked(4L * Hidden * ((long)In + Hidden + 2));
}

/// <summary>The last step of each sequence, <c>[batch, steps, width]</c> to <c>[batch, width]</c>: what a recurrent layer has read of the whole window.</summary>
public sealed record LastStepLayer : Layer;

/// <summary>A TorchScript module: its layers and parameters are known only once the file is loaded.</summary>
public sealed record ScriptLayer(int In, int Out) : Layer;
