using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>A server optimizer: it keeps state between rounds and moves the global model from each round's aggregate.</summary>
/// <remarks>
/// <para>The step is split in two so that the model always follows from the state the run keeps: the aggregation activity
/// computes <see cref="NextState"/>, writes it first-writer-wins, and derives the model with <see cref="Apply"/> from the
/// state that was kept (its own, or a first execution's when a retry lost the race, e.g. under DP noise). Both are pure,
/// and the state is float32 on both sides, so a resumed run computes bit-identical models.</para>
/// <para>Only float32 tensors are optimized; other tensors (integer counters) are taken from the aggregate.</para>
/// </remarks>
public interface IServerOptimizer
{
    /// <summary>The state after a round, from the round's global model, its aggregate and the state before (null on the run's first step).</summary>
    IReadOnlyList<NamedTensor> NextState(IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor>? previous);

    /// <summary>The next global model: the round's global model moved by <paramref name="state"/> (the state after the round).</summary>
    IReadOnlyList<NamedTensor> Apply(IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> state);
}
