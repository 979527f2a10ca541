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

public sealed class TorchRuntimeMessageTests
{
    [Fact]
    public void DescribeLoadFailure_OldLibstdcxx_NamesSymbolAndSetupScript()
    {
        var message = TorchRuntime.DescribeLoadFailure(isLinux: true, hasGlibcxx3432: false);

        Assert.Contains("GLIBCXX_3.4.32", message);
        Assert.Contains("scripts/setup.sh", message);
        Assert.Contains("misleading", message);
    }

    [Fact]
    public void DescribeLoadFailure_NewLibstdcxx_PointsAtNativePackage()
    {
        var message = TorchRuntime.DescribeLoadFailure(isLinux: true, hasGlibcxx3432: true);

        Assert.Contains("libtorch-cpu-linux-x64", message);
        Assert.DoesNotContain("scripts/setup.sh", message);
    }
}
