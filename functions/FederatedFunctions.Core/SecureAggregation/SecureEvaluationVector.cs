using System.Numerics;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>
/// One silo's evaluation of a round's model as a vector for the secure sum, and the sum of the silos' vectors back as the
/// round's evaluation: <c>[examples, correct, scored, loss × examples]</c>, every value exact.
/// </summary>
/// <remarks>
/// <para>The counts take <see cref="LimbVector.CountLimbs"/> limbs each (at most 2^48 − 1 examples per silo);
/// <c>scored</c> is 1 for a silo that scored at least one example, so that the sum says over how many silos the metrics
/// are, without saying which. The loss term is the exact product of the silo's mean loss and its example count as an
/// <see cref="ExactSum"/> integer (fixed point at 2^<see cref="ExactSum.ScaleExponent"/>, any finite loss).</para>
/// <para><b>Bounds.</b> Nothing is rounded before the mean: the totals of examples, correct answers and loss × examples
/// are exact, the mean loss is their quotient rounded once (within half an ulp of the exact example-weighted mean), and
/// the accuracy is one division of two exact integers. The plain summary (<see cref="IFederatedStrategy.AggregateEvaluate"/>)
/// adds the products in double precision, so the two agree within that sum's own rounding: at most (2n + 2) · 2^−53 of
/// the mean loss over n silos, with accuracies equal.</para>
/// <para>The layout is fixed (<see cref="Length"/> elements, whatever the silo's data), so every silo's vector has the same size.</para>
/// </remarks>
public static class SecureEvaluationVector
{
    /// <summary>The vector's length: three counts and one exact sum.</summary>
    public const int Length = (3 * LimbVector.CountLimbs) + LimbVector.SumLimbs;

    /// <summary>Encodes one silo's evaluation.</summary>
    /// <exception cref="ArgumentException">A count out of range, more correct answers than examples, or a loss that is not finite.</exception>
    public static uint[] Encode(EvaluateOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        if (outcome.Correct < 0 || outcome.Correct > outcome.Examples)
        {
            throw new ArgumentException("The evaluation counts more correct answers than examples, or fewer than none.", nameof(outcome));
        }

        if (!double.IsFinite(outcome.Loss))
        {
            throw new ArgumentException("The evaluation's loss is not finite.", nameof(outcome));
        }

        var loss = new ExactSum();
        loss.AddProduct(outcome.Loss, outcome.Examples);
        return new LimbWriter().Count(outcome.Examples).Count(outcome.Correct).Count(outcome.Examples > 0 ? 1 : 0).Sum(loss.ToInteger()).ToArray();
    }

    /// <summary>Decodes the unmasked sum of <paramref name="silos"/> silos' vectors.</summary>
    /// <exception cref="ArgumentException">The sum has another length, or does not decode: its masks did not cancel.</exception>
    public static SecureEvaluationTotals Decode(ReadOnlySpan<uint> sum, int silos)
    {
        if (sum.Length != Length)
        {
            throw new ArgumentException($"The sum has {sum.Length} elements; an evaluation vector has {Length}.", nameof(sum));
        }

        var r = new LimbReader(sum, silos);
        var totals = new SecureEvaluationTotals(r.Count(), r.Count(), r.Count(), r.Sum());
        r.End();
        if (totals.Correct > totals.Examples || totals.Scored > silos || (totals.Examples == 0 && !totals.LossTimesExamples.IsZero))
        {
            throw new ArgumentException("The sum is not a sum of evaluations: its masks did not cancel.", nameof(sum));
        }

        return totals;
    }
}

/// <summary>The exact totals of a round's evaluation over the silos of one secure sum.</summary>
/// <param name="Examples">Examples scored.</param>
/// <param name="Correct">Correct answers.</param>
/// <param name="Scored">Silos that scored at least one example.</param>
/// <param name="LossTimesExamples">Σ loss × examples, as an <see cref="ExactSum"/> integer.</param>
public sealed record SecureEvaluationTotals(long Examples, long Correct, long Scored, BigInteger LossTimesExamples)
{
    /// <summary>The example-weighted mean loss and the accuracy; null when no example was scored.</summary>
    public EvaluateSummary? Summary => Examples <= 0 ? null : new EvaluateSummary(Examples, ExactSum.ToDouble(LossTimesExamples, Examples, ExactSum.ScaleExponent), (double)Correct / Examples);

    /// <summary>
    /// What may be released: <see cref="Summary"/> when at least <paramref name="minSilos"/> silos (and one) scored an example
    /// (a silo that scored none adds nothing to hide behind), else null; eyes-off without the example total.
    /// </summary>
    public EvaluateSummary? Release(int minSilos, bool eyesOff) =>
        Scored < Math.Max(1, minSilos) || Summary is not { } summary ? null : eyesOff ? summary with { Examples = 0 } : summary;
}
