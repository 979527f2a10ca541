using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.Strategies;

/// <summary>The adaptive server optimizers of Reddi et al., "Adaptive Federated Optimization" (2021), Algorithm 2.</summary>
/// <remarks>
/// With the example-weighted mean <c>a_t</c> of the round's updates and <c>Δ_t = a_t − w_t</c>:
/// <c>m_t = β₁·m_{t−1} + (1 − β₁)·Δ_t</c>, the second moment <c>v_t</c> by the subclass's rule, and
/// <c>w_{t+1} = w_t + η·m_t / (√v_t + τ)</c>, coordinate by coordinate, from <c>m_{−1} = 0</c> and <c>v_{−1} = τ²</c>.
/// There is no bias correction: the paper's rule, not Flower's (which scales η by √(1 − β₂^t)/(1 − β₁^t) in FedAdam).
/// The paper averages the silos' changes unweighted; here, as in Flower, <c>a_t</c> weighs each silo by its examples, as
/// FedAvg does, so that the server step works on the same aggregate as the run's other strategies.
/// Subclasses are one rule each: <see cref="FedAdam"/>, <see cref="FedYogi"/>, <see cref="FedAdagrad"/>.
/// </remarks>
public abstract class FedOpt : IFederatedStrategy, IServerOptimizer
{
    private const string First = "m/";
    private const string Second = "v/";
    private readonly StrategySpec spec;

    /// <summary>Reads the parameters, with the subclass's defaults for those the spec leaves out.</summary>
    protected FedOpt(StrategySpec spec, double learningRate, double beta1, double beta2, double tau)
    {
        ArgumentNullException.ThrowIfNull(spec);
        this.spec = spec;
        LearningRate = spec.ServerLearningRate ?? learningRate;
        Beta1 = spec.Beta1 ?? beta1;
        Beta2 = spec.Beta2 ?? beta2;
        Tau = spec.Tau ?? tau;
    }

    /// <summary>The server learning rate η.</summary>
    public double LearningRate { get; }

    /// <summary>First-moment decay β₁.</summary>
    public double Beta1 { get; }

    /// <summary>Second-moment decay β₂ (unused by Adagrad).</summary>
    public double Beta2 { get; }

    /// <summary>Adaptivity τ.</summary>
    public double Tau { get; }

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public virtual IReadOnlyList<string> Parameters => ["serverLearningRate", "beta1", "beta2", "tau"];

    /// <inheritdoc />
    public IServerOptimizer ServerOptimizer => this;

    /// <inheritdoc />
    public void Validate(int sampledPerRound, Action<string, string, string> add)
    {
        StrategyParameters.Number(add, "serverLearningRate", spec.ServerLearningRate, 0, 10, minExclusive: true);
        StrategyParameters.Number(add, "beta1", spec.Beta1, 0, 1, maxExclusive: true);
        StrategyParameters.Number(add, "beta2", spec.Beta2, 0, 1, maxExclusive: true);
        StrategyParameters.Number(add, "tau", spec.Tau, 0, 1, minExclusive: true);
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
            var m = before is null ? new double[x.Length] : StrategyTensors.Values(before[First + w.Name]);
            var v = before is null ? Enumerable.Repeat(Tau * Tau, x.Length).ToArray() : StrategyTensors.Values(before[Second + w.Name]);
            for (var i = 0; i < x.Length; i++)
            {
                var delta = a[i] - x[i];
                m[i] = (Beta1 * m[i]) + ((1 - Beta1) * delta);
                v[i] = SecondMoment(v[i], delta * delta);
            }

            state.Add(StrategyTensors.Float32(First + w.Name, w.Shape, m));
            state.Add(StrategyTensors.Float32(Second + w.Name, w.Shape, v));
        }

        return state;
    }

    /// <inheritdoc />
    public IReadOnlyList<NamedTensor> Apply(IReadOnlyList<NamedTensor> global, IReadOnlyList<NamedTensor> aggregate, IReadOnlyList<NamedTensor> state) =>
        StrategyTensors.MoveFloats(global, aggregate, state, (w, x, slots) =>
        {
            var m = StrategyTensors.Values(slots[First + w.Name]);
            var v = StrategyTensors.Values(slots[Second + w.Name]);
            for (var i = 0; i < x.Length; i++)
            {
                x[i] += LearningRate * m[i] / (Math.Sqrt(v[i]) + Tau);
            }
        });

    /// <summary>The second moment after a round: from the one before and the squared change <paramref name="deltaSquared"/>.</summary>
    protected abstract double SecondMoment(double previous, double deltaSquared);
}
