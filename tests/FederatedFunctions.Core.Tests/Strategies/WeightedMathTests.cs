using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.Tests.Strategies;

public sealed class WeightedMathTests
{
    [Fact]
    public void NormalisedWeights_Counts120And80_Are0Point6And0Point4()
    {
        var weights = WeightedMath.NormalisedWeights([120, 80]);

        Assert.Equal([0.6, 0.4], weights);
    }

    [Fact]
    public void NormalisedWeights_EqualCounts_AreEqual()
    {
        Assert.Equal([0.25, 0.25, 0.25, 0.25], WeightedMath.NormalisedWeights([7, 7, 7, 7]));
    }

    [Fact]
    public void NormalisedWeights_SingleCount_IsOne()
    {
        Assert.Equal([1.0], WeightedMath.NormalisedWeights([12345]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void NormalisedWeights_NonPositiveCount_Throws(long count)
    {
        Assert.Throws<ArgumentException>(() => WeightedMath.NormalisedWeights([10, count]));
    }

    [Fact]
    public void NormalisedWeights_NoCounts_Throws()
    {
        Assert.Throws<ArgumentException>(() => WeightedMath.NormalisedWeights([]));
    }

    [Fact]
    public void NormalisedWeights_TotalOverflows_Throws()
    {
        Assert.Throws<OverflowException>(() => WeightedMath.NormalisedWeights([long.MaxValue, 1]));
    }

    [Fact]
    public void WeightedMean_TwoValues_MatchesHandComputedMean()
    {
        // (120 * 1.0 + 80 * 2.0) / 200 = 280 / 200 = 1.4
        var mean = WeightedMath.WeightedMean([(1.0, 120), (2.0, 80)]);

        Assert.Equal(1.4, mean, 1e-12);
    }

    [Fact]
    public void WeightedMean_ThreeValues_MatchesHandComputedMean()
    {
        // (1 * 10 + 3 * 30 + 6 * 60) / 100 = (10 + 90 + 360) / 100 = 4.6
        Assert.Equal(4.6, WeightedMath.WeightedMean([(1.0, 10), (3.0, 30), (6.0, 60)]), 1e-12);
    }

    [Fact]
    public void WeightedMean_ZeroCount_Throws()
    {
        Assert.Throws<ArgumentException>(() => WeightedMath.WeightedMean([(1.0, 0), (2.0, 5)]));
    }
}
