using System.Globalization;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml;

/// <summary>What one silo's local training returns.</summary>
/// <param name="State">The trained weights, sorted by name, float32.</param>
/// <param name="Examples">Training examples seen per epoch (the FedAvg weight).</param>
/// <param name="Loss">Mean cross-entropy over the last epoch, averaged over examples, as measured during that epoch.</param>
/// <param name="Metrics"><c>train_accuracy</c> (running accuracy over the last epoch), <c>first_epoch_loss</c>, <c>epochs</c>, <c>batches</c> (per epoch).</param>
public sealed record LocalTrainResult(IReadOnlyList<NamedTensor> State, long Examples, double Loss, IReadOnlyDictionary<string, double> Metrics);

/// <summary>What evaluating a model on one test split returns.</summary>
/// <param name="Examples">Test examples scored.</param>
/// <param name="Loss">Mean cross-entropy; 0 when there are no examples.</param>
/// <param name="Correct">Examples whose highest logit is the label (ties go to the lowest class).</param>
public sealed record EvaluationResult(long Examples, double Loss, long Correct);

/// <summary>Local training and evaluation on one silo, with TorchSharp on the CPU.</summary>
/// <remarks>
/// <para>
/// <see cref="Train"/> starts from the global weights, runs <see cref="TrainingSpec.LocalEpochs"/> epochs of mini-batch
/// training with cross-entropy loss and a fresh optimiser (SGD or Adam with default betas, so Adam's moments reset every
/// round), and returns the new weights. Each epoch visits every example once, in an order drawn from a generator seeded
/// with <c>Hashing.DeriveSeed(training.Seed, "train", round, siloId)</c>; the last batch may be smaller.
/// </para>
/// <para>
/// Determinism: the same arguments give bit-identical <see cref="LocalTrainResult.State"/> bytes, across calls and
/// processes on the same machine and libtorch build, because shuffling is seeded, no operation used is
/// non-deterministic on the CPU, and the thread count is fixed by <see cref="TorchRuntime"/>. Results can differ across
/// CPU models or thread counts (vectorised kernels and reductions are split differently), which only matters for
/// comparing runs, not for correctness: a retried activity recomputes the same update on the same worker kind.
/// </para>
/// <para>
/// Both methods allocate their tensors in a dispose scope and free them before returning; the inputs are never modified.
/// Cancellation is checked between batches.
/// </para>
/// </remarks>
public static class LocalTrainer
{
    private const int EvaluationBatch = 4096;

    /// <summary>Trains from <paramref name="global"/> on <paramref name="train"/> and returns the local update.</summary>
    /// <remarks>
    /// With <paramref name="proximalMu"/> μ &gt; 0 (FedProx) each batch's loss gets <c>μ/2·Σ‖p − p_global‖²</c> over the
    /// trainable parameters, which pulls the local model towards the global one; the reported loss is the cross-entropy alone.
    /// </remarks>
    /// <exception cref="ArgumentException">Bad sizes or settings, or a table that does not fit the model.</exception>
    /// <exception cref="ModelStateException"><paramref name="global"/> does not fit the model.</exception>
    public static LocalTrainResult Train(ModelSpec model, TrainingSpec training, int classes, IReadOnlyList<NamedTensor> global, TabularData train, int round, string siloId, CancellationToken ct = default, double proximalMu = 0, ReadOnlyMemory<byte>? script = null)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(global);
        ArgumentException.ThrowIfNullOrEmpty(siloId);
        CheckTable(train, classes, nameof(train));
        ArgumentOutOfRangeException.ThrowIfLessThan(train.Rows, 1, nameof(train));
        ArgumentOutOfRangeException.ThrowIfLessThan(training.LocalEpochs, 1, nameof(training));
        ArgumentOutOfRangeException.ThrowIfLessThan(training.BatchSize, 1, nameof(training));
        if (!(double.IsFinite(training.LearningRate) && training.LearningRate > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(training), training.LearningRate, "The learning rate must be a positive finite number.");
        }

        if (!(double.IsFinite(proximalMu) && proximalMu >= 0))
        {
            throw new ArgumentOutOfRangeException(nameof(proximalMu), proximalMu, "The proximal weight must be a finite number, at least 0.");
        }

        if (training.Optimizer is not (Optimizers.Sgd or Optimizers.Adam))
        {
            throw new ArgumentException($"Unknown optimizer '{training.Optimizer}'; expected one of: {string.Join(", ", Optimizers.All)}.", nameof(training));
        }

        TorchRuntime.EnsureInitialized();
        var seed = Hashing.DeriveSeed(training.Seed, "train", round.ToString(CultureInfo.InvariantCulture), siloId);
        using var generator = new torch.Generator(unchecked((ulong)seed));
        using var module = ModelFactory.Create(model, train.Columns, classes, generator, script);
        StateDicts.Import(module, global);
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(train.Features, [train.Rows, train.Columns], ScalarType.Float32);
        var y = torch.tensor(train.Labels, [train.Rows], ScalarType.Int64);
        // Frozen layers get no gradient and are not in the optimizer: they leave the silo as they came.
        foreach (var (name, parameter) in module.named_parameters())
        {
            if (Core.Models.FrozenLayers.IsFrozen(name, training.Freeze))
            {
                parameter.requires_grad = false;
            }
        }

        var trainable = module.parameters().Where(p => p.requires_grad).ToArray();
        // FedProx's anchor: the global values of the trainable parameters, outside the autograd graph.
        var anchor = proximalMu > 0 ? trainable.Select(p => p.detach().clone()).ToArray() : [];
        using var optimizer = training.Optimizer == Optimizers.Adam
            ? (torch.optim.Optimizer)torch.optim.Adam(trainable, training.LearningRate)
            : torch.optim.SGD(trainable, training.LearningRate);

        module.train();
        var rows = train.Rows;
        var batch = Math.Min(training.BatchSize, rows);
        var batches = (rows + batch - 1) / batch;
        double firstEpochLoss = 0, lastEpochLoss = 0;
        long lastEpochCorrect = 0;
        for (var epoch = 0; epoch < training.LocalEpochs; epoch++)
        {
            using var epochScope = torch.NewDisposeScope();
            var order = torch.randperm(rows, ScalarType.Int64, generator: generator);
            var isLast = epoch == training.LocalEpochs - 1;
            double lossSum = 0;
            long correct = 0;
            for (var start = 0; start < rows; start += batch)
            {
                ct.ThrowIfCancellationRequested();
                using var batchScope = torch.NewDisposeScope();
                var count = Math.Min(batch, rows - start);
                var index = order.narrow(0, start, count);
                var xb = x.index_select(0, index);
                var yb = y.index_select(0, index);
                optimizer.zero_grad();
                var logits = module.forward(xb);
                var loss = nn.functional.cross_entropy(logits, yb);
                var objective = loss;
                for (var k = 0; k < anchor.Length; k++)
                {
                    objective = objective + (proximalMu / 2 * (trainable[k] - anchor[k]).pow(2).sum());
                }

                objective.backward();
                optimizer.step();
                lossSum += loss.item<float>() * (double)count;
                if (isLast)
                {
                    using (torch.no_grad())
                    {
                        correct += logits.argmax(1).eq(yb).sum().item<long>();
                    }
                }
            }

            var epochLoss = lossSum / rows;
            if (epoch == 0)
            {
                firstEpochLoss = epochLoss;
            }

            lastEpochLoss = epochLoss;
            lastEpochCorrect = correct;
        }

        var state = StateDicts.Export(module);
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["train_accuracy"] = (double)lastEpochCorrect / rows,
            ["first_epoch_loss"] = firstEpochLoss,
            ["epochs"] = training.LocalEpochs,
            ["batches"] = batches,
        };
        return new LocalTrainResult(state, rows, lastEpochLoss, metrics);
    }

    /// <summary>Scores <paramref name="state"/> on <paramref name="test"/>: mean cross-entropy and correct count.</summary>
    /// <remarks>A <c>torchscript</c> model needs its file in <paramref name="script"/>, as <see cref="Train"/> does.</remarks>
    /// <exception cref="ArgumentException">Bad sizes, or a table that does not fit the model.</exception>
    /// <exception cref="ModelStateException"><paramref name="state"/> does not fit the model.</exception>
    public static EvaluationResult Evaluate(ModelSpec model, int classes, IReadOnlyList<NamedTensor> state, TabularData test, CancellationToken ct = default, ReadOnlyMemory<byte>? script = null)
    {
        CheckTable(test, classes, nameof(test));
        return Score(model, classes, state, test, labeled: true, probabilities: null, predicted: null, ct, script);
    }

    /// <summary>
    /// The model's prediction for each row of <paramref name="data"/>: its class (the arg max of the logits, as evaluation
    /// counts it) into <paramref name="predicted"/>, its class probabilities (softmax of the logits) into
    /// <paramref name="probabilities"/> (rows × classes), and, when <paramref name="labeled"/>, the same mean cross-entropy
    /// and correct count as <see cref="Evaluate"/>, computed the same way.
    /// </summary>
    /// <exception cref="ArgumentException">Bad sizes, a table that does not fit the model, or a buffer of the wrong size.</exception>
    /// <exception cref="ModelStateException"><paramref name="state"/> does not fit the model.</exception>
    public static EvaluationResult Predict(ModelSpec model, int classes, IReadOnlyList<NamedTensor> state, TabularData data, bool labeled, int[] predicted, float[] probabilities, CancellationToken ct = default, ReadOnlyMemory<byte>? script = null)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(data);
        if (labeled)
        {
            CheckTable(data, classes, nameof(data));
        }
        else
        {
            data.EnsureConsistent();
        }

        if (probabilities.Length != (long)data.Rows * classes || predicted.Length != data.Rows)
        {
            throw new ArgumentException($"The buffers hold {predicted.Length} classes and {probabilities.Length} probabilities; {data.Rows} rows × {classes} classes need {data.Rows} and {(long)data.Rows * classes}.", nameof(probabilities));
        }

        return Score(model, classes, state, data, labeled, probabilities, predicted, ct, script);
    }

    // The batch loop of evaluation and prediction: one forward pass per batch, the loss and correct count when labelled,
    // the probabilities when asked for.
    private static EvaluationResult Score(ModelSpec model, int classes, IReadOnlyList<NamedTensor> state, TabularData test, bool labeled, float[]? probabilities, int[]? predicted, CancellationToken ct, ReadOnlyMemory<byte>? script)
    {
        ArgumentNullException.ThrowIfNull(state);
        TorchRuntime.EnsureInitialized();
        using var module = ModelFactory.Create(model, test.Columns, classes, script: script);
        StateDicts.Import(module, state);
        if (test.Rows == 0)
        {
            return new EvaluationResult(0, 0, 0);
        }

        module.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = torch.tensor(test.Features, [test.Rows, test.Columns], ScalarType.Float32);
        var y = labeled ? torch.tensor(test.Labels, [test.Rows], ScalarType.Int64) : null;
        double lossSum = 0;
        long correct = 0;
        for (var start = 0; start < test.Rows; start += EvaluationBatch)
        {
            ct.ThrowIfCancellationRequested();
            using var batchScope = torch.NewDisposeScope();
            var count = Math.Min(EvaluationBatch, test.Rows - start);
            var xb = x.narrow(0, start, count);
            var logits = module.forward(xb);
            if (y is not null)
            {
                var yb = y.narrow(0, start, count);
                lossSum += nn.functional.cross_entropy(logits, yb, reduction: nn.Reduction.Sum).to_type(ScalarType.Float64).item<double>();
                correct += logits.argmax(1).eq(yb).sum().item<long>();
            }

            if (probabilities is not null)
            {
                nn.functional.softmax(logits.to_type(ScalarType.Float32), 1).data<float>().CopyTo(probabilities, start * classes);
                logits.argmax(1).to_type(ScalarType.Int32).data<int>().CopyTo(predicted!, start);
            }
        }

        return new EvaluationResult(test.Rows, labeled ? lossSum / test.Rows : 0, correct);
    }

    private static void CheckTable(TabularData table, int classes, string parameter)
    {
        ArgumentNullException.ThrowIfNull(table, parameter);
        table.EnsureConsistent();
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        foreach (var label in table.Labels)
        {
            if (label < 0 || label >= classes)
            {
                throw new ArgumentException($"Label {label} is outside [0, {classes}).", parameter);
            }
        }
    }
}
