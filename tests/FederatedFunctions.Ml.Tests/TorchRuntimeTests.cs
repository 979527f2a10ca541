using TorchSharp;

namespace FederatedFunctions.Ml.Tests;

public sealed class TorchRuntimeTests
{
    [Fact]
    public void EnsureInitialized_CalledTwice_SetsThreadsToProcessorCount()
    {
        TorchRuntime.EnsureInitialized();
        TorchRuntime.EnsureInitialized();

        Assert.Equal(Environment.ProcessorCount, TorchRuntime.ThreadCount);
        Assert.Equal(Environment.ProcessorCount, torch.get_num_threads());
    }
}
