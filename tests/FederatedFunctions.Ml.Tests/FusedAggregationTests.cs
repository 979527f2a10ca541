namespace FederatedFunctions.Ml.Tests;

public sealed class FusedAggregationTests
{
    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 1000)]
    [InlineData(3, 16 * 1024 * 9 + 13)] // enough blocks for the helper, plus a ragged tail
    [InlineData(8, 16 * 1024 * 20)]
    public void WeightedSumInto_RandomInputs_MatchesScalarReference(int count, int length)
    {
        var random = new Random(count * 31 + length);
        var inputs = Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray()).ToArray();
        var weights = Enumerable.Range(0, count).Select(_ => (float)random.NextDouble()).ToArray();
        var destination = Enumerable.Repeat(float.NaN, length).ToArray(); // must be overwritten, not accumulated into

        FusedAggregation.WeightedSumInto(destination, inputs.Select(a => (ReadOnlyMemory<float>)a).ToArray(), weights);

        for (var i = 0; i < length; i++)
        {
            double expected = 0;
            for (var k = 0; k < count; k++)
            {
                expected += (double)weights[k] * inputs[k][i];
            }

            if (Math.Abs(destination[i] - expected) > 1e-5)
            {
                Assert.Fail($"element {i}: expected {expected}, got {destination[i]}");
            }
        }
    }

    [Fact]
    public void WeightedSumInto_RepeatedCalls_BitIdentical()
    {
        var random = new Random(3);
        var inputs = Enumerable.Range(0, 5).Select(_ => Enumerable.Range(0, 16 * 1024 * 16).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
        var memories = inputs.Select(a => (ReadOnlyMemory<float>)a).ToArray();
        float[] weights = [0.1f, 0.2f, 0.3f, 0.15f, 0.25f];
        var first = new float[inputs[0].Length];
        FusedAggregation.WeightedSumInto(first, memories, weights);

        for (var run = 0; run < 5; run++)
        {
            var again = new float[first.Length];
            FusedAggregation.WeightedSumInto(again, memories, weights);
            Assert.True(first.AsSpan().SequenceEqual(again), $"run {run} differs");
        }
    }

    [Fact]
    public void WeightedSumInto_LengthMismatch_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => FusedAggregation.WeightedSumInto(new float[4], [new float[4], new float[3]], [1f, 1f]));

        Assert.Contains("Input 1", ex.Message);
    }

    [Fact]
    public void WeightedSumInto_DestinationOverlapsInput_Throws()
    {
        var buffer = new float[8];

        Assert.Throws<ArgumentException>(() => FusedAggregation.WeightedSumInto(buffer.AsSpan(0, 4), [buffer.AsMemory(2, 4)], [1f]));
    }
}
