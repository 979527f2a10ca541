using System.Globalization;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Models;

/// <summary>
/// <c>cnn</c>: a convolutional network over images, declared layer by layer. Each row's features are an image of
/// <c>model.shape</c> = [channels, height, width]; the declared layers follow (<c>conv2d</c>, <c>maxpool2d</c>,
/// <c>groupnorm</c>, <c>relu</c>, <c>dropout</c>, and <c>linear</c> after the image layers), then a linear layer to the classes.
/// </summary>
/// <remarks>
/// The image is flattened before the first <c>linear</c> layer (or before the last layer, if there is none). Normalization
/// is group normalization: it keeps no running statistics, which a model averaged over silos could not reconcile (batch
/// normalization's), and it is what federated image models use (Hsieh et al., 2020).
/// </remarks>
public sealed class ConvolutionalModel : IModelKind
{
    /// <summary>Most channels of the input image or of a convolution's output.</summary>
    public const int MaxChannels = 1024;

    /// <summary>The largest image side.</summary>
    public const int MaxSide = 4096;

    /// <summary>The largest kernel, pooling window, stride or padding.</summary>
    public const int MaxKernel = 15;

    /// <summary>Every layer type, with the fields each takes.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> LayerTypes = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["conv2d"] = ["filters", "kernel", "stride", "padding"],
        ["maxpool2d"] = ["kernel", "stride"],
        ["groupnorm"] = ["groups"],
        ["relu"] = [],
        ["dropout"] = ["p"],
        ["linear"] = ["units"],
    };

    /// <inheritdoc />
    public string Name => ModelArchitectures.Convolutional;

    /// <inheritdoc />
    public void Validate(ModelSpec model, int? inputs, SpecLimits limits, Action<string, string, string> add)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(add);
        if (model.Hidden is { Count: > 0 })
        {
            add("$.model.hidden", "not-allowed", "model.hidden is for an mlp, gru or lstm; a cnn declares model.layers.");
        }

        if (model.Shape is not { Count: 3 } shape || shape[0] is < 1 or > MaxChannels || shape[1] is < 1 or > MaxSide || shape[2] is < 1 or > MaxSide)
        {
            add("$.model.shape", "required", $"A cnn needs model.shape: [channels 1-{MaxChannels}, height 1-{MaxSide}, width 1-{MaxSide}]; got {Describe(model.Shape)}.");
            return;
        }

        var values = (long)shape[0] * shape[1] * shape[2];
        if (inputs is { } n && values != n)
        {
            add("$.model.shape", "mismatch", $"model.shape {Describe(shape)} holds {values} values per row, but the model has {n} inputs; they must agree.");
            return;
        }

        if (values > limits.MaxActivations)
        {
            add("$.model.shape", "size", $"model.shape {Describe(shape)} holds {values} values per row; the limit MaxActivations is {limits.MaxActivations}.");
            return;
        }

        if (model.Layers is not { Count: > 0 } layers || layers.Count > limits.MaxLayers)
        {
            add("$.model.layers", "count", $"A cnn needs 1 to {limits.MaxLayers} layers (limit MaxLayers); got {model.Layers?.Count ?? 0}.");
            return;
        }

        Walk(shape, layers, limits.MaxActivations, (i, field, rule, message) => add(SpecPath.Index("$.model.layers", i) + (field is null ? string.Empty : "." + field), rule, message), _ => { });
    }

    /// <inheritdoc />
    public ModelPlan Plan(ModelSpec model, int inputs, int classes)
    {
        ArgumentNullException.ThrowIfNull(model);
        var shape = model.Shape!;
        var plan = new List<Layer> { new UnflattenLayer(shape[0], shape[1], shape[2]) };
        var features = Walk(shape, model.Layers!, int.MaxValue, (_, _, _, message) => throw new ArgumentException(message, nameof(model)), plan.Add);
        plan.Add(new LinearLayer(features, classes));
        return new ModelPlan(plan);
    }

    // Follows the image through the layers, checking each (and that no output holds more than maxActivations values per
    // example); emits the plan's layers and returns the features that reach the last (linear) layer. An image is
    // flattened before the first linear layer, or at the end.
    private static int Walk(IReadOnlyList<int> shape, IReadOnlyList<LayerSpec> layers, long maxActivations, Action<int, string?, string, string> problem, Action<Layer> emit)
    {
        // Every image the walk keeps then holds at most int.MaxValue values, so its flat size fits a linear layer's width.
        maxActivations = Math.Min(maxActivations, int.MaxValue);
        if ((long)shape[0] * shape[1] * shape[2] > maxActivations)
        {
            problem(0, null, "size", $"The input image of {shape[0]}x{shape[1]}x{shape[2]} values is over the limit MaxActivations ({maxActivations}).");
            return 1;
        }

        var (channels, height, width) = (shape[0], shape[1], shape[2]);
        int? flat = null;
        for (var i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            if (layer is null || !LayerTypes.TryGetValue(layer.Type ?? string.Empty, out var fields))
            {
                problem(i, "type", "enum", $"model.layers[{i}].type must be one of {string.Join(", ", LayerTypes.Keys)}; got {SpecPath.Quote(layer?.Type)}.");
                continue;
            }

            foreach (var (field, set) in Fields(layer))
            {
                if (set && !fields.Contains(field, StringComparer.Ordinal))
                {
                    problem(i, field, "not-allowed", $"model.layers[{i}].{field} does not apply to a {layer.Type} layer.");
                }
            }

            var imageLayer = layer.Type is "conv2d" or "maxpool2d" or "groupnorm";
            if (imageLayer && flat is not null)
            {
                problem(i, "type", "order", $"model.layers[{i}] is a {layer.Type} layer after a linear layer; image layers come first.");
                continue;
            }

            switch (layer.Type)
            {
                case "conv2d":
                {
                    var (filters, kernel, stride, padding) = (layer.Filters, layer.Kernel, layer.Stride ?? 1, layer.Padding ?? 0);
                    if (!InRange(i, "filters", filters, 1, MaxChannels, problem) | !InRange(i, "kernel", kernel, 1, MaxKernel, problem)
                        | !InRange(i, "stride", stride, 1, MaxKernel, problem) | !InRange(i, "padding", padding, 0, MaxKernel, problem))
                    {
                        continue;
                    }

                    var (h, w) = (Out(height, kernel!.Value, stride, padding), Out(width, kernel.Value, stride, padding));
                    if (h < 1 || w < 1)
                    {
                        problem(i, "kernel", "shape", $"model.layers[{i}]: a {kernel}x{kernel} convolution (stride {stride}, padding {padding}) does not fit a {height}x{width} image.");
                        continue;
                    }

                    if ((long)filters!.Value * h * w > maxActivations)
                    {
                        problem(i, "filters", "size", $"model.layers[{i}]: its output of {filters}x{h}x{w} values per example is over the limit MaxActivations ({maxActivations}).");
                        continue;
                    }

                    emit(new Conv2dLayer(channels, filters.Value, kernel.Value, stride, padding));
                    (channels, height, width) = (filters.Value, h, w);
                    break;
                }

                case "maxpool2d":
                {
                    var (kernel, stride) = (layer.Kernel, layer.Stride ?? layer.Kernel ?? 1);
                    if (!InRange(i, "kernel", kernel, 1, MaxKernel, problem) | !InRange(i, "stride", stride, 1, MaxKernel, problem))
                    {
                        continue;
                    }

                    var (h, w) = (Out(height, kernel!.Value, stride, 0), Out(width, kernel.Value, stride, 0));
                    if (h < 1 || w < 1)
                    {
                        problem(i, "kernel", "shape", $"model.layers[{i}]: a {kernel}x{kernel} pooling window does not fit a {height}x{width} image.");
                        continue;
                    }

                    emit(new MaxPool2dLayer(kernel.Value, stride));
                    (height, width) = (h, w);
                    break;
                }

                case "groupnorm":
                    if (InRange(i, "groups", layer.Groups, 1, channels, problem))
                    {
                        if (channels % layer.Groups!.Value != 0)
                        {
                            problem(i, "groups", "divisor", $"model.layers[{i}].groups ({layer.Groups}) must divide the {channels} channels it normalizes.");
                            continue;
                        }

                        emit(new GroupNormLayer(layer.Groups.Value, channels));
                    }

                    break;

                case "relu":
                    emit(new ReluLayer());
                    break;

                case "dropout":
                    if (layer.P is not (>= 0 and < 1))
                    {
                        problem(i, "p", "range", $"model.layers[{i}].p must be at least 0 and less than 1; got {layer.P?.ToString(CultureInfo.InvariantCulture) ?? "nothing"}.");
                        continue;
                    }

                    emit(new DropoutLayer(layer.P.Value));
                    break;

                default:
                    if (InRange(i, "units", layer.Units, 1, MultilayerPerceptronModel.MaxHiddenWidth, problem))
                    {
                        if (flat is null)
                        {
                            emit(new FlattenLayer());
                        }

                        emit(new LinearLayer(flat ?? checked(channels * height * width), layer.Units!.Value));
                        flat = layer.Units.Value;
                    }

                    break;
            }
        }

        if (flat is null)
        {
            emit(new FlattenLayer());
        }

        return flat ?? checked(channels * height * width);
    }

    // The output side, as PyTorch computes it: floor((size + 2·padding − kernel) / stride) + 1, and 0 when the kernel does not fit.
    private static int Out(int size, int kernel, int stride, int padding) =>
        size + (2 * padding) < kernel ? 0 : ((size + (2 * padding) - kernel) / stride) + 1;

    private static bool InRange(int i, string field, int? value, int min, int max, Action<int, string?, string, string> problem)
    {
        if (value is { } v && v >= min && v <= max)
        {
            return true;
        }

        problem(i, field, value is null ? "required" : "range", $"model.layers[{i}].{field} must be from {min} to {max}; got {value?.ToString(CultureInfo.InvariantCulture) ?? "nothing"}.");
        return false;
    }

    private static IEnumerable<(string Field, bool Set)> Fields(LayerSpec layer) =>
    [
        ("filters", layer.Filters is not null), ("kernel", layer.Kernel is not null), ("stride", layer.Stride is not null),
        ("padding", layer.Padding is not null), ("groups", layer.Groups is not null), ("p", layer.P is not null), ("units", layer.Units is not null),
    ];

    private static string Describe(IReadOnlyList<int>? shape) => shape is null ? "nothing" : "[" + string.Join(", ", shape) + "]";
}
