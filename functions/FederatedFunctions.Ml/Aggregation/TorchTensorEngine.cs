using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Ml;

/// <summary>The TorchSharp implementation of <see cref="ITensorEngine"/>: <see cref="ModelFactory"/> and <see cref="StreamingAggregator"/>.</summary>
public sealed class TorchTensorEngine : ITensorEngine
{
    /// <inheritdoc />
    public IReadOnlyList<NamedTensor> InitialModel(ModelSpec model, int inputs, int classes, long seed, ReadOnlyMemory<byte>? script = null) =>
        ModelFactory.InitialState(model, inputs, classes, seed, script);

    /// <inheritdoc />
    public IModelAccumulator CreateAccumulator(IReadOnlyList<NamedTensor> template) => new StreamingAggregator(template);
}
