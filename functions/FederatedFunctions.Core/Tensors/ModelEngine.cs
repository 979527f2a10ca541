using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tensors;

/// <summary>The tensor work the orchestrator's side needs, behind a port: seeded model initialisation and a streaming weighted sum.</summary>
/// <remarks>
/// The workflow layer depends on this interface, not on TorchSharp; the ML layer implements it. So the orchestration side
/// carries no native tensor library, and the aggregation math can be tested against hand-computed oracles on either side.
/// </remarks>
public interface ITensorEngine
{
    /// <summary>The seeded initial state of a model (a <c>torchscript</c> model's: the parameters saved in <paramref name="script"/>): the same arguments give the same bytes.</summary>
    IReadOnlyList<NamedTensor> InitialModel(ModelSpec model, int inputs, int classes, long seed, ReadOnlyMemory<byte>? script = null);

    /// <summary>An accumulator for updates shaped like <paramref name="template"/>.</summary>
    IModelAccumulator CreateAccumulator(IReadOnlyList<NamedTensor> template);
}

/// <summary>A weighted sum of model updates, one update at a time; <see cref="Result"/> divides by the total weight.</summary>
/// <remarks>Memory stays about two sums and one staging buffer, however many updates are added. Not thread-safe.</remarks>
public interface IModelAccumulator : IDisposable
{
    /// <summary>Updates added so far.</summary>
    int Count { get; }

    /// <summary>Sum of the weights added so far.</summary>
    double TotalWeight { get; }

    /// <summary>Checks an update against the template (keys, shapes, dtypes, finiteness) without adding it.</summary>
    UpdateCheck Validate(IReadOnlyList<NamedTensor> update);

    /// <summary>Adds an update already validated.</summary>
    void Add(IReadOnlyList<NamedTensor> update, double weight);

    /// <summary>Validates and, when accepted, adds an update; a rejected update changes nothing.</summary>
    UpdateCheck TryAdd(IReadOnlyList<NamedTensor> update, double weight);

    /// <summary>
    /// Validates and adds several updates in one pass over the sum: the same verdicts, in the same order, and the same
    /// sum, bit for bit, as <see cref="TryAdd"/> on each in turn. A rejected update changes nothing.
    /// </summary>
    IReadOnlyList<UpdateCheck> TryAddAll(IReadOnlyList<WeightedUpdate> updates);

    /// <summary>
    /// Adds several updates whose bytes arrive as streams (downloads) that share one <paramref name="layout"/>, reading them
    /// a block at a time in step with one another, with one pass over the sum and without holding any of them whole: the
    /// same sum, bit for bit, as <see cref="TryAddAll"/> on the same updates in memory.
    /// </summary>
    /// <param name="layout">The updates' layout, the same for each (<see cref="SafetensorsLayout.SameTensors"/>).</param>
    /// <param name="updates">Each update's stream, positioned at its tensors' buffer (<see cref="SafetensorsLayout.DataStart"/>), and its weight.</param>
    /// <param name="confirm">Called once every stream's tensors have been read and summed, before anything counts: false (a stream's
    /// integrity check failing, say) discards the window.</param>
    /// <param name="last">No update follows this window. When it counts, an implementation may write the mean as it writes the
    /// sum (so <see cref="MeanInPlace"/> needs no pass of its own), after which it takes no more updates and gives the mean
    /// only through <see cref="MeanInPlace"/>: a wrapper that passes <paramref name="last"/> on must pass that on too.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>
    /// True when every update was added. False, with nothing added, when the layout does not match the template, a value is
    /// NaN or infinite, a stream ends early, or <paramref name="confirm"/> returns false: the caller then adds the same
    /// updates another way, which gives each its own verdict.
    /// </returns>
    Task<bool> TryAddStreamedAsync(SafetensorsLayout layout, IReadOnlyList<StreamedUpdate> updates, Func<CancellationToken, ValueTask<bool>> confirm, bool last, CancellationToken cancellationToken);

    /// <summary>The weighted mean, in the template's dtypes, in memory of its own.</summary>
    /// <exception cref="InvalidOperationException">Nothing was added; or the sums hold the mean already (<see cref="MeanInPlace"/>
    /// was called, or a last streamed window counted), which only <see cref="MeanInPlace"/> then gives.</exception>
    IReadOnlyList<NamedTensor> Result();

    /// <summary>
    /// The weighted mean, the same bytes as <see cref="Result"/>, for use while this accumulator lives: an implementation may
    /// divide its sums in place and lend them instead of copying them (no memory for a copy of the mean), after which it takes no
    /// more updates. By default, <see cref="Result"/>.
    /// </summary>
    IReadOnlyList<NamedTensor> MeanInPlace() => Result();
}

/// <summary>An update read as it arrives, and its weight, for <see cref="IModelAccumulator.TryAddStreamedAsync"/>.</summary>
/// <param name="Data">Its bytes, from the start of its tensors' buffer; owned by the caller.</param>
/// <param name="Weight">Its weight; positive and finite.</param>
public sealed record StreamedUpdate(Stream Data, double Weight);

/// <summary>An update and its weight, for <see cref="IModelAccumulator.TryAddAll"/>.</summary>
/// <param name="Tensors">The update's tensors, shaped like the template.</param>
/// <param name="Weight">Its weight; positive and finite.</param>
public sealed record WeightedUpdate(IReadOnlyList<NamedTensor> Tensors, double Weight);

/// <summary>The verdict on one update: accepted, or a stable reason code and a human-readable detail.</summary>
/// <param name="Accepted">True when the update may be aggregated.</param>
/// <param name="Reason">Null when accepted; otherwise one of <see cref="UpdateRejections"/>.</param>
/// <param name="Detail">Null when accepted; otherwise which tensor and what differs.</param>
public sealed record UpdateCheck(bool Accepted, string? Reason, string? Detail)
{
    /// <summary>The verdict for an acceptable update.</summary>
    public static UpdateCheck Ok { get; } = new(true, null, null);

    /// <summary>A rejection with a reason code.</summary>
    public static UpdateCheck Reject(string reason, string detail) => new(false, reason, detail);
}

/// <summary>Reason codes of <see cref="UpdateCheck.Reason"/>; stable, for metrics and run reports.</summary>
public static class UpdateRejections
{
    /// <summary>A tensor of the template is absent from the update.</summary>
    public const string MissingTensor = "missing-tensor";

    /// <summary>The update holds a tensor the template has not (or holds one twice).</summary>
    public const string UnexpectedTensor = "unexpected-tensor";

    /// <summary>A tensor's shape differs from the template's, or its byte length does not match its shape.</summary>
    public const string ShapeMismatch = "shape-mismatch";

    /// <summary>A tensor's dtype differs from the template's.</summary>
    public const string DTypeMismatch = "dtype-mismatch";

    /// <summary>A value is NaN or infinite.</summary>
    public const string NonFinite = "non-finite";
}
