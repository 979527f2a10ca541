using FederatedFunctions.Core.SecureAggregation;
using Xunit.Abstractions;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class SecureAggregationAttemptTests(ITestOutputHelper output)
{
    private static readonly string[] FiveSilos = ["silo-1", "silo-2", "silo-3", "silo-4", "silo-5"];

    [Fact]
    public void Combine_SiloDropsAfterKeyExchange_ReportsItAndRedoWithoutItSumsSurvivors()
    {
        const int length = 4096;
        var fp = FixedPoint.ForSilos(FiveSilos.Length, range: 1.0);
        var random = new Random(5);
        var inputs = FiveSilos.ToDictionary(id => id, _ => Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray());
        var quantized = inputs.ToDictionary(p => p.Key, p => fp.Quantize(p.Value, weight: 0.2));
        var attempt0 = SecureAggregationAttempt.First("run-d", 4, FiveSilos);

        // Attempt 0: all five exchange keys; silo-3 never delivers its masked update.
        using var keys0 = SecAggTestSilos.Random(attempt0.Context, FiveSilos);
        var received0 = FiveSilos.Where(id => id != "silo-3").Select(id => keys0.Mask(id, quantized[id])).ToArray();
        var late = keys0.Mask("silo-3", quantized["silo-3"]);
        var outcome0 = attempt0.Combine(received0);

        Assert.Equal(SecureAggregationStatus.Redo, outcome0.Status);
        Assert.Equal(["silo-3"], outcome0.Dropped);
        Assert.Null(outcome0.Sum);
        var attempt1 = Assert.IsType<SecureAggregationAttempt>(outcome0.NextAttempt);
        Assert.Equal(new MaskingContext("run-d", 4, 1), attempt1.Context);
        string[] survivors = ["silo-1", "silo-2", "silo-4", "silo-5"];
        Assert.Equal(survivors, attempt1.Participants);

        // The discarded attempt's survivor updates do not add up to the survivors' sum: silo-3's masks are missing.
        var survivorSum = MaskingTests.SumMod32(survivors.Select(id => quantized[id]));
        var staleSum = MaskingTests.SumMod32(received0.Select(u => u.Values));
        Assert.NotEqual(survivorSum, staleSum);
        Assert.False(fp.IsWithinHeadroom(staleSum));

        // Attempt 1: fresh key pairs for the survivors; silo-3's late attempt-0 update turns up too and is ignored.
        using var keys1 = SecAggTestSilos.Random(attempt1.Context, survivors);
        var received1 = survivors.Select(id => keys1.Mask(id, quantized[id])).Append(late).ToArray();
        var outcome1 = attempt1.Combine(received1);

        Assert.Equal(SecureAggregationStatus.Complete, outcome1.Status);

        Assert.NotNull(outcome1.Sum);
        Assert.Equal(["silo-3"], outcome1.Ignored);
        Assert.Equal(survivors, outcome1.Contributors);
        Assert.Equal(survivorSum, outcome1.Sum);

        var decoded = fp.Dequantize(outcome1.Sum);
        var maxError = Enumerable.Range(0, length).Max(k => Math.Abs(decoded[k] - survivors.Sum(id => 0.2 * inputs[id][k])));
        var bound = survivors.Length * 0.5 / fp.Scale;
        output.WriteLine($"redo without silo-3: max |error| = {maxError:E3}, bound = {bound:E3}");
        Assert.InRange(maxError, 0, bound + 1e-15);
    }

    [Fact]
    public void Mask_RedoWithAttemptZeroKeyPair_Throws()
    {
        var attempt0 = SecureAggregationAttempt.First("run-d", 1, ["a", "b", "c"]);
        using var keys0 = SecAggTestSilos.Random(attempt0.Context, "a", "b", "c");
        keys0.Mask("a", new uint[8]);

        var e = Assert.Throws<InvalidOperationException>(
            () => Masking.Mask(new uint[8], "a", keys0.PublicKeys, keys0.Keys["a"], attempt0.Context.NextAttempt()));

        Assert.Contains("Generate a fresh one", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Combine_UpdateMaskedForAnotherAttempt_IgnoredAndSiloCountsAsDropped()
    {
        var attempt1 = new SecureAggregationAttempt(new MaskingContext("run-d", 2, 1), ["a", "b", "c"]);
        var stale = new MaskedUpdate("b", new MaskingContext("run-d", 2, 0), new uint[4]);
        var outsider = new MaskedUpdate("z", attempt1.Context, new uint[4]);

        var outcome = attempt1.Combine(
        [
            new MaskedUpdate("a", attempt1.Context, new uint[4]),
            stale,
            new MaskedUpdate("c", attempt1.Context, new uint[4]),
            outsider,
        ]);

        Assert.Equal(SecureAggregationStatus.Redo, outcome.Status);
        Assert.Equal(["b"], outcome.Dropped);
        Assert.Equal(["b", "z"], outcome.Ignored);
        Assert.Equal(["a", "c"], outcome.NextAttempt!.Participants);
        Assert.Equal(2, outcome.NextAttempt.Context.Attempt);
    }

    [Fact]
    public void Combine_TooFewSurvivors_FailsWithoutNextAttempt()
    {
        var attempt = SecureAggregationAttempt.First("run-d", 1, ["a", "b", "c"], minimumParticipants: 3);

        var outcome = attempt.Combine(
        [
            new MaskedUpdate("a", attempt.Context, new uint[2]),
            new MaskedUpdate("c", attempt.Context, new uint[2]),
        ]);

        Assert.Equal(SecureAggregationStatus.Failed, outcome.Status);
        Assert.Null(outcome.NextAttempt);
        Assert.Null(outcome.Sum);
        Assert.Equal(["b"], outcome.Dropped);
        Assert.Contains("at least 3", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Combine_TwoUpdatesFromOneSilo_Throws()
    {
        var attempt = SecureAggregationAttempt.First("run-d", 1, ["a", "b"]);

        Assert.Throws<ArgumentException>(() => attempt.Combine(
        [
            new MaskedUpdate("a", attempt.Context, new uint[2]),
            new MaskedUpdate("a", attempt.Context, new uint[2]),
            new MaskedUpdate("b", attempt.Context, new uint[2]),
        ]));
    }

    [Fact]
    public void Combine_UpdatesOfDifferentLengths_Throws()
    {
        var attempt = SecureAggregationAttempt.First("run-d", 1, ["a", "b"]);

        Assert.Throws<ArgumentException>(() => attempt.Combine(
        [
            new MaskedUpdate("a", attempt.Context, new uint[2]),
            new MaskedUpdate("b", attempt.Context, new uint[3]),
        ]));
    }

    [Fact]
    public void Combine_AllDelivered_SumsModTwoToThe32()
    {
        var attempt = SecureAggregationAttempt.First("run-d", 1, ["b", "a"]);

        var outcome = attempt.Combine(
        [
            new MaskedUpdate("a", attempt.Context, [uint.MaxValue, 1]),
            new MaskedUpdate("b", attempt.Context, [2, 2]),
        ]);

        Assert.Equal(SecureAggregationStatus.Complete, outcome.Status);

        Assert.NotNull(outcome.Sum);
        Assert.Equal([1u, 3u], outcome.Sum);
        Assert.Equal(["a", "b"], outcome.Contributors);
        Assert.Empty(outcome.Dropped);
    }

    [Fact]
    public void Constructor_FewerThanTwoOrDuplicateOrEmptySilos_Throws()
    {
        var context = new MaskingContext("run-d", 1, 0);

        Assert.Throws<ArgumentException>(() => new SecureAggregationAttempt(context, ["a"]));
        Assert.Throws<ArgumentException>(() => new SecureAggregationAttempt(context, ["a", "a"]));
        Assert.Throws<ArgumentException>(() => new SecureAggregationAttempt(context, ["a", ""]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SecureAggregationAttempt(context, ["a", "b"], minimumParticipants: 1));
    }
}
