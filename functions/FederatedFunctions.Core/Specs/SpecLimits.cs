namespace FederatedFunctions.Core.Specs;

/// <summary>Upper bounds that keep a hostile or careless spec from hurting the service.</summary>
/// <remarks>The defaults are documented in <c>docs/run-spec.md</c>; a host may tighten them from configuration.</remarks>
public sealed record SpecLimits
{
    /// <summary>The limits used when a host configures none.</summary>
    public static SpecLimits Default { get; } = new();

    /// <summary>Largest accepted spec document, in bytes (UTF-8). Default 64 KiB.</summary>
    public int MaxDocumentBytes { get; init; } = 64 * 1024;

    /// <summary>Most rounds in one run. Default 10 000.</summary>
    public int MaxRounds { get; init; } = 10_000;

    /// <summary>Most (real) silos in one run. Default 256.</summary>
    public int MaxSilos { get; init; } = 256;

    /// <summary>Most virtual silos of a simulation (<see cref="SimulationSpec.VirtualSilos"/>). Default 100 000.</summary>
    public int MaxVirtualSilos { get; init; } = 100_000;

    /// <summary>Most virtual silos a simulation samples per round: each one's update is a reference in the round's history and manifest. Default 1 000.</summary>
    public int MaxVirtualSilosPerRound { get; init; } = 1_000;

    /// <summary>Most virtual silos one silo step trains (<see cref="SimulationSpec.PerStep"/>). Default 1 000.</summary>
    public int MaxVirtualSilosPerStep { get; init; } = 1_000;

    /// <summary>Most trainable parameters of the model. Default 50 million (200 MB of float32).</summary>
    public long MaxParameters { get; init; } = 50_000_000;

    /// <summary>Most hidden layers of an MLP, or recurrent layers of a <c>gru</c> or <c>lstm</c>. Default 8.</summary>
    public int MaxHiddenLayers { get; init; } = 8;

    /// <summary>Most declared layers of a <c>cnn</c>. Default 32.</summary>
    public int MaxLayers { get; init; } = 32;

    /// <summary>Most values a <c>cnn</c>'s input or any layer's output holds per example (channels × height × width), or a recurrent layer's output over the window (steps × hidden). Default 4 194 304 (16 MB of float32).</summary>
    public long MaxActivations { get; init; } = 4L * 1024 * 1024;

    /// <summary>Most input features. Default 100 000.</summary>
    public int MaxInputs { get; init; } = 100_000;

    /// <summary>Most classes. Default 10 000.</summary>
    public int MaxClasses { get; init; } = 10_000;

    /// <summary>Most local epochs per round. Default 100.</summary>
    public int MaxLocalEpochs { get; init; } = 100;

    /// <summary>Largest mini-batch. Default 65 536.</summary>
    public int MaxBatchSize { get; init; } = 65_536;

    /// <summary>Most rounds per orchestration instance before ContinueAsNew. Default 100.</summary>
    public int MaxRoundsPerInstance { get; init; } = 100;
}
