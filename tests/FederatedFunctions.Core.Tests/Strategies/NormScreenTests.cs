using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.Tests.Strategies;

public sealed class NormScreenTests
{
    [Theory]
    [InlineData(new[] { 3.0 }, 3.0)]
    [InlineData(new[] { 5.0, 1.0, 3.0 }, 3.0)]
    [InlineData(new[] { 4.0, 1.0, 3.0, 2.0 }, 2.5)]
    public void Median_Values_IsTheMiddle(double[] values, double expected)
    {
        Assert.Equal(expected, NormScreen.Median(values));
    }

    [Fact]
    public void Median_EmptyOrNonFinite_Throws()
    {
        Assert.Throws<ArgumentException>(() => NormScreen.Median([]));
        Assert.Throws<ArgumentException>(() => NormScreen.Median([1, double.NaN]));
    }

    [Fact]
    public void Outliers_OneUpdateTenTimesTheMedian_OnlyItIsRefused()
    {
        var outliers = NormScreen.Outliers([1.0, 1.2, 0.9, 12.0], maxRatio: 3, out var median);

        Assert.Equal([false, false, false, true], outliers);
        Assert.Equal(1.1, median, 12);
    }

    [Fact]
    public void Outliers_ExactlyAtTheLimit_IsKept()
    {
        // Median 2; the limit is 3 × 2 = 6: 6 is kept, 6.0001 is not.
        Assert.Equal([false, false, false, false], NormScreen.Outliers([2.0, 2.0, 6.0, 1.0], 3, out _));
        Assert.Equal([false, false, true, false], NormScreen.Outliers([2.0, 2.0, 6.0001, 1.0], 3, out _));
    }

    [Fact]
    public void Outliers_FewerThanThreeUpdates_NotScreened()
    {
        Assert.Equal([false, false], NormScreen.Outliers([1.0, 1000.0], 2, out var median));
        Assert.True(double.IsNaN(median));
    }

    [Fact]
    public void Outliers_ZeroMedian_NotScreened()
    {
        Assert.Equal([false, false, false], NormScreen.Outliers([0.0, 0.0, 5.0], 2, out var median));
        Assert.True(double.IsNaN(median));
    }

    [Fact]
    public void Outliers_AMinorityOfHugeUpdates_CannotRaiseTheBar()
    {
        // Two of five silos send enormous updates; the median stays with the honest three.
        var outliers = NormScreen.Outliers([1.0, 1.1, 0.9, 1e6, 1e7], 5, out var median);

        Assert.Equal([false, false, false, true, true], outliers);
        Assert.Equal(1.1, median);
    }

    [Fact]
    public void Outliers_RatioBelowOne_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NormScreen.Outliers([1, 2, 3], 0.5, out _));
    }
}
