using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tests.Specs;

/// <summary>A valid baseline spec (the demo's shape), for tests that mutate one field.</summary>
internal static class TestSpecs
{
    /// <summary>The demo spec as JSON, as in docs/run-spec.md.</summary>
    public const string DemoJson = """
        {
          "runId": "demo-mlp",
          "model": { "architecture": "mlp", "inputs": 16, "hidden": [64] },
          "data": {
            "format": "csv",
            "train": "data/train.csv",
            "test": "data/test.csv",
            "label": "label",
            "classes": 10
          },
          "training": {
            "rounds": 10,
            "localEpochs": 1,
            "batchSize": 32,
            "learningRate": 0.05,
            "optimizer": "sgd",
            "seed": 42
          },
          "strategy": { "name": "fedavg" },
          "silos": ["silo-1", "silo-2", "silo-3", "silo-4"],
          "evaluation": { "everyRounds": 1 },
          "checkpoints": { "container": "checkpoints" },
          "orchestration": { "roundsPerInstance": 10 }
        }
        """;

    public static RunSpec Valid() => new()
    {
        RunId = "demo-mlp",
        Model = new ModelSpec { Architecture = ModelArchitectures.MultilayerPerceptron, Inputs = 16, Hidden = [64] },
        Data = new DataSpec { Classes = 10 },
        Training = new TrainingSpec { Rounds = 10 },
        Silos = ["silo-1", "silo-2", "silo-3", "silo-4"],
    };

    /// <summary>Asserts that <paramref name="errors"/> contain an error at <paramref name="path"/> with <paramref name="rule"/>, and no error elsewhere.</summary>
    public static void AssertOnly(IReadOnlyList<SpecError> errors, string path, string rule)
    {
        Assert.Contains(errors, e => e.Path == path && e.Rule == rule);
        Assert.All(errors, e => Assert.Equal(path, e.Path));
    }

    /// <summary>Validates with default limits and asserts that the only error is <paramref name="path"/> / <paramref name="rule"/>.</summary>
    public static SpecError AssertSingle(RunSpec spec, string path, string rule, SpecLimits? limits = null)
    {
        var errors = RunSpecValidator.Validate(spec, limits);
        var error = Assert.Single(errors);
        Assert.Equal(path, error.Path);
        Assert.Equal(rule, error.Rule);
        return error;
    }
}
