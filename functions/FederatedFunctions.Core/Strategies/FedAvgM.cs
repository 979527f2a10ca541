using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>FedAvg with server momentum.</summary>
/// <remarks>
/// Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data Distribution for Federated Visual Classification"
/// (2019): with the example-weighted mean <c>a_t</c> of the round's updates and the pseudo-gradient
/// <c>g_t = w_t − a_t</c>, the server keeps <c>m_t = β·m_{t−1} + g_t</c> (<c>m_0 = 0</c>) and moves to
/// <c>w_{t+1} = w_t − η·m_t</c>. With β = 0 and η = 1 it is FedAvg. Defaults: η = 1 (<c>serverLearningRate</c>),
/// β = 0.9 (<c>serverMomentum</c>).
/// </remarks>
public sealed class FedAvgM(StrategySpec spec) : IFederatedStrategy, IServerOptimizer
{
    /// <summary>η when the spec leaves it out.</summary>
    public const double DefaultLearningRate = 1.0;

    /// <summary>β when the spec leaves it out.</summary>
    public const double DefaultMomentum = 0.9;

    private const string Slot = "momentum/";

    /// <summary>The server learning rate η.</summary>
    public double LearningRate { get; } = spec.ServerLearningRate ?? DefaultLearningRate;

    /// <summary>The server momentum β.</summary>
    public double Momentum { get; } = spec.ServerMomentum ?? DefaultMomentum;

    /// <inheritdoc />
    public string Name => StrategyNames.FedAvgM;

    /// <inheritdoc />
    public IReadOnlyList<string> Parameters => ["serverLearningRate", "serverMomentum"];

    /// <inheritdoc />
    public IServerOptimizer ServerOptimizer => this;

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add)
    {
        StrategyParameters.Number(add, "serverLearningRate", spec.ServerLearningRate, 0, 10, minExclusive: true);
        StrategyParameters.Number(add, "serverMomentum", spec.ServerMomentum, 0, 1, maxExclusive: true);
    }

    /// <inheritdoc />
    public IReadOnlyList<NamedTensor> NextState(IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor>? previous)
    {
        ArgumentNullException.ThrowIfNull(global);
        var averaged = StrategyTensors.ByName(aggregate);
        var before = previous is null ? null : StrategyTensors.ByName(previous);
        var state = new List<NamedTensor>();
        foreach (var w in global.Where(t => t.DType == TensorDType.F32))
        {
            var x = StrategyTensors.Values(w);
            var a = StrategyTensors.Values(averaged[w.Name]);
            var m = before is null ? new double[x.Length] : StrategyTensors.Values(before[Slot + w.Name]);
            for (var i = 0; i < x.Length; i++)
            {
                m[i] = (Momentum * m[i]) + (x[i] - a[i]);
            }

            state.Add(StrategyTensors.Float32(Slot + w.Name, w.Shape, m));
        }

        return state;
    }

    /// <inheritdoc />
    public IReadOnlyList<NamedTensor> Apply(IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> state) =>
        StrategyTensors.MoveFloats(global, aggregate, state, (w, x, slots) =>
        {
            var m = StrategyTensors.Values(slots[Slot + w.Name]);
            for (var i = 0; i < x.Length; i++)
            {
                x[i] -= LearningRate * m[i];
            }
        });
}
