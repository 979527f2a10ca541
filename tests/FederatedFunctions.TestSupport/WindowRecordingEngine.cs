using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// A tensor engine whose accumulators record how updates were added: the size of every <c>TryAddAll</c> window, and each
/// streamed window as minus its size when it was added or 0 when it was refused or threw.
/// </summary>
public sealed class WindowRecordingEngine(ITensorEngine inner, List<int> windows) : ITensorEngine
{
    public IReadOnlyList<NamedTensor> InitialModel(ModelSpec model, int inputs, int classes, long seed, ReadOnlyMemory<byte>? script = null) =>
        inner.InitialModel(model, inputs, classes, seed, script);

    public IModelAccumulator CreateAccumulator(IReadOnlyList<NamedTensor> template) => new Spy(inner.CreateAccumulator(template), windows);

    private sealed class Spy(IModelAccumulator accumulator, List<int> windows) : IModelAccumulator
    {
        public int Count => accumulator.Count;

        public double TotalWeight => accumulator.TotalWeight;

        public UpdateCheck Validate(IReadOnlyList<NamedTensor> update) => accumulator.Validate(update);

        public void Add(IReadOnlyList<NamedTensor> update, double weight) => accumulator.Add(update, weight);

        public UpdateCheck TryAdd(IReadOnlyList<NamedTensor> update, double weight) => TryAddAll([new WeightedUpdate(update, weight)])[0];

        public IReadOnlyList<UpdateCheck> TryAddAll(IReadOnlyList<WeightedUpdate> updates)
        {
            windows.Add(updates.Count);
            return accumulator.TryAddAll(updates);
        }

        public async Task<bool> TryAddStreamedAsync(SafetensorsLayout layout, IReadOnlyList<StreamedUpdate> updates, Func<CancellationToken, ValueTask<bool>> confirm, bool last, CancellationToken cancellationToken)
        {
            // Streamed windows recorded negative; one refused, or that threw, as 0.
            var added = false;
            try
            {
                added = await accumulator.TryAddStreamedAsync(layout, updates, confirm, last, cancellationToken);
                return added;
            }
            finally
            {
                windows.Add(added ? -updates.Count : 0);
            }
        }

        public IReadOnlyList<NamedTensor> Result() => accumulator.Result();

        public IReadOnlyList<NamedTensor> MeanInPlace() => accumulator.MeanInPlace();

        public void Dispose() => accumulator.Dispose();
    }
}
