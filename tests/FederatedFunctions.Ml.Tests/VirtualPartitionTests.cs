using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Ml.Tests;

public sealed class VirtualPartitionTests
{
    // 10 balanced classes, 6,000 rows, in label order (so a partition that kept row order would be maximally skewed).
    private static readonly long[] Labels = Enumerable.Range(0, 6000).Select(i => (long)(i / 600)).ToArray();

    [Theory]
    [InlineData(SimulationSplits.Iid, null)]
    [InlineData(SimulationSplits.Dirichlet, 0.1)]
    [InlineData(SimulationSplits.Dirichlet, 100.0)]
    public void Split_AnySplit_EveryRowInExactlyOnePartAscending(string split, double? alpha)
    {
        var parts = VirtualPartition.Split(Labels, 10, new SimulationSpec { VirtualSilos = 100, Split = split, Alpha = alpha, Seed = 3 });

        Assert.Equal(100, parts.Length);
        Assert.Equal(Enumerable.Range(0, Labels.Length), parts.SelectMany(p => p).Order());
        Assert.All(parts, p => Assert.Equal(p.Order(), p));
    }

    [Fact]
    public void Split_Iid_SizesDifferByAtMostOneAndClassesAreMixed()
    {
        var parts = VirtualPartition.Split(Labels, 10, new SimulationSpec { VirtualSilos = 7, Seed = 3 });

        Assert.Equal([858, 857, 857, 857, 857, 857, 857], parts.Select(p => p.Length));
        Assert.All(parts, p => Assert.True(MaxClassShare(p) < 0.2, $"an IID part of 857 rows is {MaxClassShare(p):P0} one class"));
    }

    [Fact]
    public void Split_SmallAlpha_SkewsLabelsFarMoreThanLargeAlpha()
    {
        double MeanMaxShare(double alpha) => VirtualPartition.Split(Labels, 10, new SimulationSpec { VirtualSilos = 50, Split = SimulationSplits.Dirichlet, Alpha = alpha, Seed = 3 })
            .Where(p => p.Length > 0).Average(MaxClassShare);

        var skewed = MeanMaxShare(0.1);
        var even = MeanMaxShare(100);
        Assert.True(skewed > 0.6, $"alpha 0.1: a part's largest class is {skewed:P0} of it on average");
        Assert.True(even < 0.25, $"alpha 100: a part's largest class is {even:P0} of it on average");
    }

    [Fact]
    public void Split_SameSettings_SamePartition_OtherSeed_Another()
    {
        var spec = new SimulationSpec { VirtualSilos = 20, Split = SimulationSplits.Dirichlet, Alpha = 0.5, Seed = 3 };
        var first = VirtualPartition.Split(Labels, 10, spec);

        Assert.Equal(first, VirtualPartition.Split(Labels, 10, spec));
        Assert.NotEqual(first, VirtualPartition.Split(Labels, 10, spec with { Seed = 4 }));
        Assert.NotEqual(first, VirtualPartition.Split(Labels, 10, spec with { Split = SimulationSplits.Iid, Alpha = null }));
    }

    [Fact]
    public void Split_LabelOutsideTheClasses_Throws()
    {
        Assert.Throws<ArgumentException>(() => VirtualPartition.Split([0, 1, 10], 10, new SimulationSpec { VirtualSilos = 2, Split = SimulationSplits.Dirichlet, Alpha = 1 }));
        Assert.Throws<ArgumentException>(() => VirtualPartition.Split([0, 1], 10, new SimulationSpec { VirtualSilos = 2, Split = "shards" }));
    }

    [Fact]
    public void Select_Rows_CopiesThoseRowsInThatOrder()
    {
        var table = new TabularData([1, 2, 3, 4, 5, 6], [0, 1, 2], 3, 2, ["a", "b"]);

        var picked = table.Select([2, 0]);

        Assert.True(picked.ContentEquals(new TabularData([5, 6, 1, 2], [2, 0], 2, 2, ["a", "b"])));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Select([3]));
    }

    private static double MaxClassShare(int[] rows) =>
        rows.Length == 0 ? 0 : rows.GroupBy(r => Labels[r]).Max(g => g.Count()) / (double)rows.Length;
}
