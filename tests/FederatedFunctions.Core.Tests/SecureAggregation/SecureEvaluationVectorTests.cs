using System.Numerics;
using System.Security.Cryptography;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.Tests.SecureAggregation;

public sealed class SecureEvaluationVectorTests
{
    private static readonly EvaluateOutcome[] Silos =
    [
        new("a", 10301, 0.7312345678901234, 7001),
        new("b", 10357, 1.1e-3, 10350),
        new("c", 10391, 12.5, 0),
        new("d", 10433, 0.333333333333333, 5216),
    ];

    [Fact]
    public void TheSumOfTheSilosVectors_DecodesToTheExactTotalsAndTheCorrectlyRoundedMean()
    {
        var sum = Add(Silos.Select(SecureEvaluationVector.Encode));
        var totals = SecureEvaluationVector.Decode(sum, Silos.Length);

        Assert.Equal(Silos.Sum(s => s.Examples), totals.Examples);
        Assert.Equal(Silos.Sum(s => s.Correct), totals.Correct);
        Assert.Equal(4, totals.Scored);

        // The mean from exact rational arithmetic, independently: Σ loss·n as exact fractions over Σ n.
        var exact = Silos.Aggregate(BigInteger.Zero, (acc, s) => acc + ExactSum.Scaled(s.Loss) * s.Examples);
        Assert.Equal(exact, totals.LossTimesExamples);
        var summary = totals.Summary!;
        Assert.Equal(ExactSum.ToDouble(exact, totals.Examples, ExactSum.ScaleExponent), summary.Loss);
        Assert.Equal((double)totals.Correct / totals.Examples, summary.Accuracy);

        // The plain summary agrees within its own double rounding: at most (2n + 2) units in the last place of the mean.
        var plain = StrategyCatalog.Create(new Core.Specs.StrategySpec()).AggregateEvaluate(Silos);
        Assert.True(Math.Abs(plain.Loss - summary.Loss) <= ((2 * Silos.Length) + 2) * Math.Pow(2, -53) * plain.Loss);
        Assert.Equal(plain.Accuracy, summary.Accuracy);
    }

    [Fact]
    public void AVectorHasTheSameLengthWhateverTheSilosValues()
    {
        Assert.All(Silos.Append(new EvaluateOutcome("e", 0, 0, 0)).Append(new EvaluateOutcome("f", (1L << 48) - 1, double.MaxValue, 1)), s => Assert.Equal(SecureEvaluationVector.Length, SecureEvaluationVector.Encode(s).Length));
    }

    [Fact]
    public void ASiloThatScoredNothing_AddsNothingAndIsNotCountedAsScored()
    {
        var totals = SecureEvaluationVector.Decode(Add([SecureEvaluationVector.Encode(Silos[0]), SecureEvaluationVector.Encode(new EvaluateOutcome("e", 0, 0, 0))]), 2);

        Assert.Equal((Silos[0].Examples, Silos[0].Correct, 1L), (totals.Examples, totals.Correct, totals.Scored));
        Assert.Null(SecureEvaluationVector.Decode(SecureEvaluationVector.Encode(new EvaluateOutcome("e", 0, 0, 0)), 1).Summary);
    }

    [Theory]
    [InlineData(3, false, true)]
    [InlineData(3, true, true)]
    [InlineData(4, false, false)]
    [InlineData(0, false, true)]
    public void Release_OnlyOverAtLeastKSilosThatScored_AndEyesOffWithoutTheExampleTotal(int minSilos, bool eyesOff, bool released)
    {
        // Five silos delivered; three scored an example.
        var outcomes = Silos.Take(3).Append(new EvaluateOutcome("e", 0, 0, 0)).Append(new EvaluateOutcome("f", 0, 0, 0)).ToArray();
        var totals = SecureEvaluationVector.Decode(Add(outcomes.Select(SecureEvaluationVector.Encode)), outcomes.Length);

        var summary = totals.Release(minSilos, eyesOff);

        Assert.Equal(3, totals.Scored);
        Assert.Equal(released, summary is not null);
        if (summary is not null)
        {
            Assert.Equal((eyesOff ? 0 : totals.Examples, totals.Summary!.Loss, totals.Summary.Accuracy), (summary.Examples, summary.Loss, summary.Accuracy));
        }
    }

    [Theory]
    [InlineData(10, 0.5, 11)]
    [InlineData(10, 0.5, -1)]
    [InlineData(10, double.NaN, 1)]
    [InlineData(10, double.PositiveInfinity, 1)]
    [InlineData(-1, 0.5, 0)]
    [InlineData(1L << 48, 0.5, 0)]
    public void AnEvaluationThatIsNotOne_IsRefused(long examples, double loss, long correct)
    {
        Assert.Throws<ArgumentException>(() => SecureEvaluationVector.Encode(new EvaluateOutcome("a", examples, loss, correct)));
    }

    [Fact]
    public void ASumWhoseMasksDidNotCancel_DoesNotDecode()
    {
        // Uniform ring elements, as a sum with a mask left in it is: caught by the limb bound.
        var noise = new uint[SecureEvaluationVector.Length];
        RandomNumberGenerator.Fill(System.Runtime.InteropServices.MemoryMarshal.AsBytes(noise.AsSpan()));
        Assert.Throws<ArgumentException>(() => SecureEvaluationVector.Decode(noise, 4));

        // Nor does a sum of another length, or one that claims more correct answers than examples.
        Assert.Throws<ArgumentException>(() => SecureEvaluationVector.Decode(new uint[SecureEvaluationVector.Length - 1], 4));
        var lying = SecureEvaluationVector.Encode(Silos[0]);
        (lying[0], lying[3]) = (lying[3], lying[0]);
        Assert.Throws<ArgumentException>(() => SecureEvaluationVector.Decode(lying, 1));
    }

    [Fact]
    public void MaskedForAnAttempt_TheMaskedVectorsSumToTheSameTotalsOnceTheSelfMasksAreRemoved()
    {
        var context = new MaskingContext("run-1-evaluation-", 3, 0);
        var secrets = Silos.ToDictionary(s => s.SiloId, _ => RandomNumberGenerator.GetBytes(MaskingKeys.MinSecretBytes));
        var keys = Silos.ToDictionary(s => s.SiloId, s => SiloMasking.PublicKey(secrets[s.SiloId], s.SiloId, context));
        var masked = Silos.Select(s => MaskedUpdateCodec.Parse(SiloMasking.MaskVector(secrets[s.SiloId], s.SiloId, context, keys, SecureEvaluationVector.Encode(s))).Update.Values).ToArray();

        // One masked vector alone is not the silo's: its example count is not where the plain vector has it.
        Assert.All(masked.Zip(Silos), p => Assert.NotEqual(SecureEvaluationVector.Encode(p.Second)[..3], p.First[..3]));
        var sum = Add(masked);
        SiloMasking.RemoveSelfMasks(sum, Silos.Select(s => SiloMasking.SelfMaskSeed(secrets[s.SiloId], s.SiloId, context)));
        Assert.Equal(SecureEvaluationVector.Decode(Add(Silos.Select(SecureEvaluationVector.Encode)), 4), SecureEvaluationVector.Decode(sum, 4));
    }

    private static uint[] Add(IEnumerable<uint[]> vectors)
    {
        var sum = new uint[SecureEvaluationVector.Length];
        foreach (var v in vectors)
        {
            for (var i = 0; i < sum.Length; i++)
            {
                sum[i] = unchecked(sum[i] + v[i]);
            }
        }

        return sum;
    }
}
