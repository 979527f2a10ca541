using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.TestSupport;

/// <summary>Bit-identity of models, for the crash, restart and resume tests.</summary>
public static class TensorAssert
{
    /// <summary>Same tensor names, dtypes and shapes, in the same order, and byte-identical data.</summary>
    public static void Identical(IReadOnlyList<NamedTensor> expected, IReadOnlyList<NamedTensor> actual)
    {
        Assert.Equal(expected.Select(t => t.Name), actual.Select(t => t.Name));
        foreach (var (e, a) in expected.Zip(actual))
        {
            Assert.Equal(e.DType, a.DType);
            Assert.Equal(e.Shape, a.Shape);
            Assert.True(e.Data.Span.SequenceEqual(a.Data.Span), $"tensor '{e.Name}' differs");
        }
    }

    /// <summary>The tensors of a run's latest checkpoint, read and hash-checked through the store.</summary>
    public static async Task<IReadOnlyList<NamedTensor>> FinalModelAsync(ICheckpointStore store, string runId, string container = "checkpoints")
    {
        var latest = await store.GetLatestAsync(container, runId, default);
        Assert.NotNull(latest);
        return Safetensors.Parse(await store.ReadModelAsync(latest.Model, default)).Tensors;
    }
}
