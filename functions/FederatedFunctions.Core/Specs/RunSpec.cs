using System.Text.Json.Serialization;

namespace FederatedFunctions.Core.Specs;

/// <summary>The JSON document that describes one federated training run.</summary>
/// <remarks>
/// A spec is parsed with <see cref="RunSpecParser"/>, which rejects unknown fields and oversized documents,
/// and then checked by <see cref="RunSpecValidator"/>; nothing starts until both pass. A spec holds silo ids
/// only, never endpoints or credentials, so it is safe to store in orchestration history.
/// Optional members have documented defaults, applied by <see cref="RunSpecParser"/>.
/// </remarks>
public sealed record RunSpec
{
    /// <summary>Run id: lowercase <c>[a-z0-9-]</c>, 3–63 characters. Generated when absent.</summary>
    public string? RunId { get; init; }

    /// <summary>Model architecture and sizes.</summary>
    public ModelSpec Model { get; init; } = new();

    /// <summary>Where each silo's data is inside its own container, and its schema.</summary>
    public DataSpec Data { get; init; } = new();

    /// <summary>Rounds and local optimisation settings.</summary>
    public TrainingSpec Training { get; init; } = new();

    /// <summary>The aggregation strategy and its parameters (<c>docs/strategies.md</c>).</summary>
    public StrategySpec Strategy { get; init; } = new();

    /// <summary>Silo ids, each present in the silo registry.</summary>
    public IReadOnlyList<string> Silos { get; init; } = [];

    /// <summary>Federated evaluation settings.</summary>
    public EvaluationSpec Evaluation { get; init; } = new();

    /// <summary>Where checkpoints go in the orchestrator's storage.</summary>
    public CheckpointSpec Checkpoints { get; init; } = new();

    /// <summary>Durable orchestration settings.</summary>
    public OrchestrationSpec Orchestration { get; init; } = new();

    /// <summary>Which silos take part in a round, how long a round waits for them, and what a failure does.</summary>
    public ParticipationSpec Participation { get; init; } = new();

    /// <summary>How silo activities are retried after transient errors.</summary>
    public RetrySpec Retry { get; init; } = new();

    /// <summary>Screens on updates beyond the integrity checks, which always run.</summary>
    public RobustnessSpec Robustness { get; init; } = new();

    /// <summary>A checkpoint of another run to continue from; absent starts from the seeded initial model.</summary>
    public ResumeFromSpec? ResumeFrom { get; init; }

    /// <summary>What may leave a silo, and the differential privacy applied to what does.</summary>
    public PrivacySpec Privacy { get; init; } = new();

    /// <summary>A simulation with virtual silos: partitions of the one listed silo's data; absent for a run over real silos.</summary>
    public SimulationSpec? Simulation { get; init; }
}

/// <summary>A simulation of many data providers on one dataset: virtual silos, trained many per silo step.</summary>
/// <remarks>
/// <para>The run lists one silo, the host, which holds the whole dataset (public or synthetic: a simulation is eyes-on).
/// Its train split is partitioned into <see cref="VirtualSilos"/> parts, IID or label-skewed, seeded by <see cref="Seed"/>;
/// each part is one virtual silo, which is sampled, trains, is screened, weighted and audited exactly as a real silo, under
/// the id <c>{host}#{n}</c> (n from 1). A virtual silo needs no container and no registry entry: its update is written to the
/// host's outbox.</para>
/// <para>A silo step trains up to <see cref="PerStep"/> of a round's sampled virtual silos one after another. Every virtual
/// silo's training is seeded by its own id and the round, never by its step, so the result does not depend on how the
/// silos are grouped into steps. The global model is evaluated on the host's whole test split.</para>
/// </remarks>
public sealed record SimulationSpec
{
    /// <summary>Number of virtual silos the host's train split is partitioned into.</summary>
    public int VirtualSilos { get; init; }

    /// <summary><c>iid</c> (a seeded shuffle dealt out in equal parts) or <c>dirichlet</c> (label skew, <see cref="Alpha"/>).</summary>
    public string Split { get; init; } = SimulationSplits.Iid;

    /// <summary>The <c>dirichlet</c> split's concentration: each class's rows are shared out in Dirichlet(α) proportions (smaller is more skewed).</summary>
    public double? Alpha { get; init; }

    /// <summary>Seed of the partition (not of training, which <see cref="TrainingSpec.Seed"/> seeds).</summary>
    public long Seed { get; init; } = 1;

    /// <summary>Most virtual silos one silo step trains.</summary>
    public int PerStep { get; init; } = 100;
}

/// <summary>Known partitions of a simulation's dataset.</summary>
public static class SimulationSplits
{
    /// <summary>Independent and identically distributed: a seeded shuffle of the rows, dealt out in parts whose sizes differ by at most one.</summary>
    public const string Iid = "iid";

    /// <summary>Label skew: each class's rows, shuffled, are shared out in proportions drawn from Dirichlet(α·1) per class.</summary>
    public const string Dirichlet = "dirichlet";

    /// <summary>All known names.</summary>
    public static readonly IReadOnlyList<string> All = [Iid, Dirichlet];
}

/// <summary>The privacy mode of a run and its differential privacy.</summary>
/// <remarks>See <c>docs/trust-model.md</c> for what each party can see in each mode.</remarks>
public sealed record PrivacySpec
{
    /// <summary>
    /// <c>eyes-on</c> (public or synthetic data: per-silo metrics and errors are visible) or <c>eyes-off</c> (real
    /// data: only aggregates over at least <see cref="MinAggregateSilos"/> silos leave the silos, errors are reduced to a
    /// category and a silo-side reference, and only approved trainers may run).
    /// </summary>
    public string Mode { get; init; } = PrivacyModes.EyesOn;

    /// <summary>Fewest silos an aggregate metric may cover in eyes-off mode; with fewer, the metric is not reported.</summary>
    public int MinAggregateSilos { get; init; } = 2;

    /// <summary>Client-level central differential privacy (clipping and Gaussian noise on the aggregate); absent means none.</summary>
    public DifferentialPrivacySpec? DifferentialPrivacy { get; init; }

    /// <summary>Secure aggregation: silos send pairwise-masked updates and the aggregator learns only their sum; absent means none.</summary>
    public SecureAggregationSpec? SecureAggregation { get; init; }
}

/// <summary>Secure aggregation of the silos' updates (pairwise masking, Bonawitz et al. 2017, without secret sharing).</summary>
/// <remarks>
/// Each silo clips its change to the global model to L2 norm <see cref="ClipNorm"/>, weights it, quantizes it to fixed
/// point and adds pairwise masks agreed by ECDH with the other silos of the round; the masks cancel in the sum, so the
/// aggregator learns the weighted sum only. A silo that drops out after the key exchange is handled by redoing the
/// round's masking without it, with fresh keys, up to <see cref="MaxAttempts"/> times. See <c>docs/trust-model.md</c>.
/// </remarks>
public sealed record SecureAggregationSpec
{
    /// <summary>Largest L2 norm of one silo's change; absent means the differential privacy clipping norm, which is then required.</summary>
    public double? ClipNorm { get; init; }

    /// <summary>
    /// The example count at which a silo's weight reaches 1: a silo's weight is <c>min(examples, MaxExamples) / MaxExamples</c>,
    /// so silos with more examples than this count as this many. Ignored with differential privacy (equal weights).
    /// </summary>
    public long MaxExamples { get; init; } = 100_000;

    /// <summary>Masking attempts per round: the first, plus redos after dropouts.</summary>
    public int MaxAttempts { get; init; } = 3;
}

/// <summary>Known privacy modes.</summary>
public static class PrivacyModes
{
    /// <summary>Public or synthetic data: per-silo values are visible to the orchestrator.</summary>
    public const string EyesOn = "eyes-on";

    /// <summary>Real data: nothing derived from one silo's data leaves it except what aggregation needs.</summary>
    public const string EyesOff = "eyes-off";

    /// <summary>All known modes.</summary>
    public static readonly IReadOnlyList<string> All = [EyesOn, EyesOff];
}

/// <summary>Client-level differential privacy, central model (DP-FedAvg, McMahan et al. 2018).</summary>
/// <remarks>
/// Each silo's change to the global model is clipped to L2 norm <see cref="ClipNorm"/>, the clipped changes are summed
/// with equal weight, Gaussian noise of standard deviation <c>NoiseMultiplier × ClipNorm</c> is added to each
/// coordinate of the sum, and the sum is divided by the number of silos sampled. An RDP accountant for the subsampled
/// Gaussian mechanism reports (ε, <see cref="Delta"/>) after every round.
/// </remarks>
public sealed record DifferentialPrivacySpec
{
    /// <summary>Largest L2 norm of one silo's change to the model.</summary>
    public double ClipNorm { get; init; } = 1.0;

    /// <summary>Noise standard deviation as a multiple of <see cref="ClipNorm"/> (z).</summary>
    public double NoiseMultiplier { get; init; } = 1.0;

    /// <summary>The δ of the reported (ε, δ).</summary>
    public double Delta { get; init; } = 1e-5;

    /// <summary>The run stops, with its checkpoints kept, before a round would take ε past this; absent means no budget.</summary>
    public double? EpsilonBudget { get; init; }
}

/// <summary>Screens an update must pass, on top of the integrity checks (hash, size, format, keys, shapes, dtypes, finiteness).</summary>
public sealed record RobustnessSpec
{
    /// <summary>
    /// Refuse an update whose distance from the round's global model (L2 norm of the update minus the model) is more
    /// than this multiple of the median distance over the round's updates; absent turns the screen off.
    /// </summary>
    /// <remarks>The median needs at least three updates to say anything, so rounds with fewer are not screened.</remarks>
    public double? MaxNormRatio { get; init; }
}

/// <summary>Where a run continues from: a committed round of another run in the same checkpoint container.</summary>
/// <remarks>
/// The new run writes that round's model as its own checkpoint of the same round number and trains the rounds after
/// it, up to <see cref="TrainingSpec.Rounds"/>: round numbers, and the per-round seeds derived from them, continue,
/// so continuing with the same spec reproduces what the earlier run would have computed.
/// </remarks>
public sealed record ResumeFromSpec
{
    /// <summary>The earlier run.</summary>
    public string RunId { get; init; } = string.Empty;

    /// <summary>Its committed round to start from; absent means its latest.</summary>
    public int? Round { get; init; }
}

/// <summary>The participation policy of a run.</summary>
/// <remarks>
/// Sampling is seeded from <see cref="TrainingSpec.Seed"/> and the round, so a replay or a rerun picks the same
/// silos; the sampled silos are recorded in each round's manifest.
/// </remarks>
public sealed record ParticipationSpec
{
    /// <summary>Fewest accepted updates a round may aggregate; below it the round, and the run, fail.</summary>
    public int MinSilos { get; init; } = 1;

    /// <summary>Silos sampled per round; absent (with <see cref="SampleFraction"/> absent) means every silo.</summary>
    public int? SampleCount { get; init; }

    /// <summary>Fraction of silos sampled per round, rounded up; exclusive with <see cref="SampleCount"/>.</summary>
    public double? SampleFraction { get; init; }

    /// <summary>Seconds a round waits for training results before it goes on without the late ones; absent means no deadline.</summary>
    public int? RoundDeadlineSeconds { get; init; }

    /// <summary><c>tolerate</c> (go on while <see cref="MinSilos"/> have reported) or <c>strict</c> (any failed, late or rejected silo fails the run).</summary>
    public string FailurePolicy { get; init; } = FailurePolicies.Tolerate;
}

/// <summary>Known failure policies.</summary>
public static class FailurePolicies
{
    /// <summary>Go on while the minimum number of silos has reported.</summary>
    public const string Tolerate = "tolerate";

    /// <summary>Any failed, late or rejected silo fails the run.</summary>
    public const string Strict = "strict";

    /// <summary>All known names.</summary>
    public static readonly IReadOnlyList<string> All = [Tolerate, Strict];
}

/// <summary>Retry of silo activities (train, evaluate) with exponential backoff.</summary>
public sealed record RetrySpec
{
    /// <summary>Attempts in all, the first included; 1 means no retry.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Delay before the first retry, in seconds.</summary>
    public double FirstIntervalSeconds { get; init; } = 2;

    /// <summary>Factor by which each delay grows.</summary>
    public double BackoffCoefficient { get; init; } = 2;

    /// <summary>Longest delay between attempts, in seconds.</summary>
    public double MaxIntervalSeconds { get; init; } = 60;
}

/// <summary>Model architecture and sizes.</summary>
public sealed record ModelSpec
{
    /// <summary>A model kind of <see cref="Models.ModelCatalog"/>: <c>logreg</c>, <c>mlp</c>, <c>cnn</c>, <c>gru</c>, <c>lstm</c> or <c>torchscript</c>.</summary>
    public string Architecture { get; init; } = ModelArchitectures.LogisticRegression;

    /// <summary>Number of input features. Required when <see cref="DataSpec.Features"/> is absent; otherwise must equal its length.</summary>
    public int? Inputs { get; init; }

    /// <summary>Hidden layer widths of an <c>mlp</c>, or one recurrent layer per entry of a <c>gru</c> or <c>lstm</c>; must be empty for the other kinds.</summary>
    public IReadOnlyList<int> Hidden { get; init; } = [];

    /// <summary>A <c>cnn</c>'s input image, <c>[channels, height, width]</c> (each row's features are its pixels, channel by channel and row by row), or a <c>gru</c>'s or <c>lstm</c>'s window, <c>[steps, features]</c> (each row is the window step by step).</summary>
    public IReadOnlyList<int>? Shape { get; init; }

    /// <summary>A <c>cnn</c>'s layers, in order; a final linear layer to the classes follows them.</summary>
    public IReadOnlyList<LayerSpec>? Layers { get; init; }

    /// <summary>Weights to start from instead of the seeded initialization (fine-tuning, domain adaptation); null for none.</summary>
    public PretrainedSpec? Pretrained { get; init; }

    /// <summary>
    /// A <c>torchscript</c> model's module: a file saved by <c>torch.jit.save</c> in the checkpoint container (<c>fl model
    /// put</c> uploads one), by path and SHA-256. Its parameters, as PyTorch names them, are the run's round 0; its
    /// <c>forward</c> takes a batch of rows <c>[batch, inputs]</c> and returns logits <c>[batch, classes]</c>.
    /// </summary>
    public PretrainedSpec? Script { get; init; }
}

/// <summary>
/// Pretrained weights a run starts from: a safetensors file in the run's checkpoint container (<c>fl model put</c> writes
/// one), named by its SHA-256, with the model's parameter names and shapes (<c>layers.{i}.weight</c>, as PyTorch's
/// <c>nn.Sequential</c> named <c>layers</c> saves them). The run keeps a copy of it as its round 0.
/// </summary>
public sealed record PretrainedSpec
{
    /// <summary>The file's blob path inside the checkpoint container.</summary>
    public string Path { get; init; } = string.Empty;

    /// <summary>Its SHA-256, 64 lowercase hex digits: a start whose file has another hash is refused.</summary>
    public string Sha256 { get; init; } = string.Empty;
}

/// <summary>One declared layer of a <c>cnn</c>.</summary>
public sealed record LayerSpec
{
    /// <summary><c>conv2d</c>, <c>maxpool2d</c>, <c>groupnorm</c>, <c>relu</c>, <c>dropout</c> or <c>linear</c>.</summary>
    public string Type { get; init; } = string.Empty;

    /// <summary>Output channels of a <c>conv2d</c>.</summary>
    public int? Filters { get; init; }

    /// <summary>The square kernel (or pooling window) of a <c>conv2d</c> or <c>maxpool2d</c>.</summary>
    public int? Kernel { get; init; }

    /// <summary>The stride of a <c>conv2d</c> (default 1) or <c>maxpool2d</c> (default: the kernel).</summary>
    public int? Stride { get; init; }

    /// <summary>Zero padding on each side, of a <c>conv2d</c> (default 0).</summary>
    public int? Padding { get; init; }

    /// <summary>Groups of a <c>groupnorm</c>, which must divide the channels.</summary>
    public int? Groups { get; init; }

    /// <summary>The drop probability of a <c>dropout</c>, in [0, 1).</summary>
    public double? P { get; init; }

    /// <summary>Output width of a <c>linear</c> layer.</summary>
    public int? Units { get; init; }
}

/// <summary>Known model architectures.</summary>
public static class ModelArchitectures
{
    /// <summary>Multinomial logistic regression: one linear layer.</summary>
    public const string LogisticRegression = "logreg";

    /// <summary>Multilayer perceptron: linear layers with ReLU between them.</summary>
    public const string MultilayerPerceptron = "mlp";

    /// <summary>Convolutional network over images: declared convolution, pooling, normalization, dropout and linear layers.</summary>
    public const string Convolutional = "cnn";

    /// <summary>Gated recurrent units over windows of a sequence (Cho et al., 2014).</summary>
    public const string GatedRecurrentUnit = "gru";

    /// <summary>Long short-term memory over windows of a sequence (Hochreiter and Schmidhuber, 1997).</summary>
    public const string LongShortTermMemory = "lstm";

    /// <summary>A TorchScript module brought from PyTorch (<c>torch.jit.script</c> or <c>trace</c>, saved with <c>torch.jit.save</c>): <see cref="ModelSpec.Script"/>.</summary>
    public const string TorchScript = "torchscript";

    /// <summary>All known names.</summary>
    public static readonly IReadOnlyList<string> All = [LogisticRegression, MultilayerPerceptron, Convolutional, GatedRecurrentUnit, LongShortTermMemory, TorchScript];
}

/// <summary>The tabular data schema, and where each split lives inside a silo's container.</summary>
public sealed record DataSpec
{
    /// <summary><c>csv</c>, <c>parquet</c>, <c>safetensors</c>, <c>npz</c> or <c>imagefolder</c> (<see cref="DataFormats"/>).</summary>
    public string Format { get; init; } = DataFormats.Csv;

    /// <summary>Blob path of the train split inside each silo's container (for <c>imagefolder</c>, the folder holding one folder per class).</summary>
    public string Train { get; init; } = "data/train.csv";

    /// <summary>Blob path of the test split inside each silo's container (for <c>imagefolder</c>, the folder holding one folder per class).</summary>
    public string Test { get; init; } = "data/test.csv";

    /// <summary>Label column: integer class ids in <c>[0, Classes)</c>. Ignored by the tensor and image formats, whose labels are <c>y</c> or the class folders.</summary>
    public string Label { get; init; } = "label";

    /// <summary>Feature columns, in order. Absent means every column but the label, in file order. Refused for the tensor and image formats.</summary>
    public IReadOnlyList<string>? Features { get; init; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; init; } = 2;

    /// <summary>
    /// <c>imagefolder</c> only: the class folder of each class id, in order (class id <c>i</c> is folder <c>ClassNames[i]</c>).
    /// Absent, each split's class folders, sorted, are the classes, and there must be exactly <see cref="Classes"/> of them;
    /// given, a split may lack some classes (as label-skewed silos do), and each of its folders must be one of these names.
    /// </summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>
    /// Standardize every feature, in every silo, with the federated mean and standard deviation of the train split:
    /// a federated analysis computes them before round 1, and round 0's manifest records them. Needs <see cref="Features"/>.
    /// </summary>
    public bool Standardize { get; init; }

    /// <summary>
    /// The standardization every silo applies to <see cref="Features"/>, in their order: set by the orchestrator when
    /// <see cref="Standardize"/> is true, or given in the spec (for example the values of an earlier run).
    /// </summary>
    public FeatureStandardization? Standardization { get; init; }
}

/// <summary>Per feature, <c>x' = (x − Mean) / Stddev</c>, applied in the silo before training and evaluation.</summary>
/// <remarks>
/// Aggregates over every silo's train split, never a silo's own values, so they may travel in orchestration history and
/// in every silo's job. A feature whose standard deviation is zero (a constant column) is given 1, so it is only
/// centred.
/// </remarks>
/// <param name="Mean">Per feature, the mean to subtract.</param>
/// <param name="Stddev">Per feature, the positive standard deviation to divide by.</param>
public sealed record FeatureStandardization(IReadOnlyList<double> Mean, IReadOnlyList<double> Stddev);

/// <summary>Known data formats.</summary>
/// <remarks>
/// Every format becomes the same table, one row per example, so every model kind trains on any of them. The tables
/// (<see cref="Tables"/>) have named columns; the tensor and image formats (<see cref="Tensors"/>) hold one array of examples
/// and one of labels, whose features are flattened channel by channel and row by row and named <c>p0</c>, <c>p1</c>, … .
/// </remarks>
public static class DataFormats
{
    /// <summary>Comma-separated values with a header row.</summary>
    public const string Csv = "csv";

    /// <summary>Apache Parquet.</summary>
    public const string Parquet = "parquet";

    /// <summary>One safetensors file per split: a tensor <c>x</c> of shape <c>[N, …]</c> and integer labels <c>y</c> of shape <c>[N]</c>.</summary>
    public const string Safetensors = "safetensors";

    /// <summary>One NumPy <c>.npz</c> archive per split, with arrays <c>x</c> (<c>[N, …]</c>) and <c>y</c> (<c>[N]</c>).</summary>
    public const string Npz = "npz";

    /// <summary>A folder of PNG images per class, <c>{split}/{class}/{file}.png</c> (torchvision's ImageFolder layout).</summary>
    public const string ImageFolder = "imagefolder";

    /// <summary>All known formats.</summary>
    public static readonly IReadOnlyList<string> All = [Csv, Parquet, Safetensors, Npz, ImageFolder];

    /// <summary>The formats with named columns (a label column and feature columns), which federated analysis also reads.</summary>
    public static readonly IReadOnlyList<string> Tables = [Csv, Parquet];

    /// <summary>The formats of arrays and images, whose features are generated names (<c>data.features</c> is refused for them).</summary>
    public static readonly IReadOnlyList<string> Tensors = [Safetensors, Npz, ImageFolder];

    /// <summary>True for a format of <see cref="Tensors"/>.</summary>
    public static bool IsTensor(string? format) => format is not null && Tensors.Contains(format, StringComparer.Ordinal);
}

/// <summary>Rounds and local optimisation settings.</summary>
public sealed record TrainingSpec
{
    /// <summary>Number of federated rounds.</summary>
    public int Rounds { get; init; } = 10;

    /// <summary>Local epochs per round on each silo.</summary>
    public int LocalEpochs { get; init; } = 1;

    /// <summary>Mini-batch size of the local optimiser.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Learning rate of the local optimiser.</summary>
    public double LearningRate { get; init; } = 0.05;

    /// <summary><c>sgd</c> or <c>adam</c>.</summary>
    public string Optimizer { get; init; } = Optimizers.Sgd;

    /// <summary>Seed of every random generator in the run (initialisation, shuffling).</summary>
    public long Seed { get; init; } = 42;

    /// <summary>
    /// Layers that do not train (fine-tuning the rest of pretrained weights): each a layer of the model's plan that has
    /// parameters, as <c>layers.{i}</c>. A silo does not update them, and every round's model keeps them as they were.
    /// </summary>
    public IReadOnlyList<string>? Freeze { get; init; }
}

/// <summary>Known local optimisers.</summary>
public static class Optimizers
{
    /// <summary>Plain stochastic gradient descent.</summary>
    public const string Sgd = "sgd";

    /// <summary>Adam, with state reset every round.</summary>
    public const string Adam = "adam";

    /// <summary>All known names.</summary>
    public static readonly IReadOnlyList<string> All = [Sgd, Adam];
}

/// <summary>The aggregation strategy: its name and its parameters, which travel whole to every step that needs them.</summary>
/// <remarks>
/// Each strategy reads the fields it uses and the validator refuses the ones it does not (<see cref="Strategies.StrategyCatalog"/>);
/// a field left out takes the strategy's default. See <c>docs/strategies.md</c>.
/// </remarks>
public sealed record StrategySpec
{
    /// <summary>Strategy name, one of <see cref="StrategyNames.All"/>.</summary>
    public string Name { get; init; } = StrategyNames.FedAvg;

    /// <summary>Server learning rate η of the server optimizers (fedavgm, fedadam, fedyogi, fedadagrad).</summary>
    public double? ServerLearningRate { get; init; }

    /// <summary>Server momentum β of fedavgm.</summary>
    public double? ServerMomentum { get; init; }

    /// <summary>First-moment decay β₁ of fedadam, fedyogi and fedadagrad.</summary>
    public double? Beta1 { get; init; }

    /// <summary>Second-moment decay β₂ of fedadam and fedyogi.</summary>
    public double? Beta2 { get; init; }

    /// <summary>Adaptivity τ of fedadam, fedyogi and fedadagrad: the smallest denominator, and √ of the initial second moment.</summary>
    public double? Tau { get; init; }

    /// <summary>Proximal weight μ of fedprox: each silo minimises its loss plus μ/2·‖w − w_global‖².</summary>
    public double? ProximalMu { get; init; }

    /// <summary>Fraction β cut from each end of every coordinate by fedtrimmedavg, in [0, 0.5).</summary>
    public double? TrimFraction { get; init; }

    /// <summary>Byzantine silos f that krum and multikrum tolerate: each update is scored over its n − f − 2 nearest neighbours.</summary>
    public int? Byzantine { get; init; }

    /// <summary>Updates multikrum keeps and averages (m); n − f when left out.</summary>
    public int? Keep { get; init; }
}

/// <summary>Known strategy names.</summary>
public static class StrategyNames
{
    /// <summary>Federated averaging weighted by example count (McMahan et al., 2017).</summary>
    public const string FedAvg = "fedavg";

    /// <summary>FedAvg with server momentum (Hsu et al., 2019).</summary>
    public const string FedAvgM = "fedavgm";

    /// <summary>FedAvg with a proximal term in each silo's loss (Li et al., 2020).</summary>
    public const string FedProx = "fedprox";

    /// <summary>Adaptive server optimizer, Adam (Reddi et al., 2021).</summary>
    public const string FedAdam = "fedadam";

    /// <summary>Adaptive server optimizer, Yogi (Reddi et al., 2021).</summary>
    public const string FedYogi = "fedyogi";

    /// <summary>Adaptive server optimizer, Adagrad (Reddi et al., 2021).</summary>
    public const string FedAdagrad = "fedadagrad";

    /// <summary>Coordinate-wise median (Yin et al., 2018).</summary>
    public const string FedMedian = "fedmedian";

    /// <summary>Coordinate-wise trimmed mean (Yin et al., 2018).</summary>
    public const string FedTrimmedAvg = "fedtrimmedavg";

    /// <summary>Krum: the update closest to its neighbours (Blanchard et al., 2017).</summary>
    public const string Krum = "krum";

    /// <summary>Multi-Krum: the mean of the m best Krum scores (Blanchard et al., 2017).</summary>
    public const string MultiKrum = "multikrum";

    /// <summary>All known names.</summary>
    public static readonly IReadOnlyList<string> All = [FedAvg, FedAvgM, FedProx, FedAdam, FedYogi, FedAdagrad, FedMedian, FedTrimmedAvg, Krum, MultiKrum];
}

/// <summary>Federated evaluation settings.</summary>
public sealed record EvaluationSpec
{
    /// <summary>Evaluate the global model every k rounds; the last round is always evaluated. 0 turns evaluation off except for the last round.</summary>
    public int EveryRounds { get; init; } = 1;

    /// <summary>
    /// After the last round, score the global model and each silo's local model of that round on every silo's test split
    /// (cross-site evaluation). Eyes-on only, without secure aggregation or differential privacy: each local model is
    /// published to the other silos.
    /// </summary>
    public bool CrossSite { get; init; }
}

/// <summary>Where checkpoints go in the orchestrator's storage.</summary>
public sealed record CheckpointSpec
{
    /// <summary>Blob container in the orchestrator's storage account.</summary>
    public string Container { get; init; } = "checkpoints";
}

/// <summary>Durable orchestration settings.</summary>
public sealed record OrchestrationSpec
{
    /// <summary>Rounds run by one orchestration instance before it continues as new, which bounds history.</summary>
    public int RoundsPerInstance { get; init; } = 10;
}
