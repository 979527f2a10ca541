using System.Globalization;

namespace FederatedFunctions.Core.Analysis;

/// <summary>One analysis's charge to a privacy budget.</summary>
/// <param name="ChargeId">The charge's key: the analysis id and its execution, so that a retried charge is recognised and a new execution of the same id is charged again (it releases a new result).</param>
/// <param name="AnalysisId">The analysis.</param>
/// <param name="Mechanism"><c>laplace</c> or <c>gaussian</c>.</param>
/// <param name="Epsilon">The ε charged.</param>
/// <param name="Delta">The δ charged (gaussian); null for laplace.</param>
/// <param name="At">When it was charged (orchestration time).</param>
public sealed record PrivacyCharge(string ChargeId, string AnalysisId, string Mechanism, double Epsilon, double? Delta, DateTime At);

/// <summary>The outcome of <see cref="PrivacyLedger.Charge"/>.</summary>
/// <param name="Ledger">The ledger after the charge (unchanged when refused or already charged).</param>
/// <param name="Changed">Whether the ledger must be written: a new charge was added.</param>
/// <param name="Refusal">Why the charge was refused, naming the budget, the ε spent and requested; null when granted.</param>
public sealed record LedgerDecision(PrivacyLedger Ledger, bool Changed, string? Refusal);

/// <summary>
/// A dataset's privacy budget ledger: every analysis charged to it, so that the ε spent on the dataset never passes the
/// total its owner set.
/// </summary>
/// <remarks>
/// <para>Why: each differentially private release spends ε; by basic composition, the ε of every release on a dataset adds
/// up, and only a total under a bound keeps the dataset's guarantee meaningful. The total lives in the host's
/// configuration, never in a spec, so an analyst cannot raise it.</para>
/// <para>Guaranteed: <see cref="Charge"/> is pure and idempotent by <see cref="PrivacyCharge.ChargeId"/> (a charge already
/// in the ledger is granted again without being added twice), and never grants a charge that takes the ε spent past the
/// total (up to 1e-9, so that ten charges of 0.1 fit a total of 1). The δ spent is recorded and summed, not bounded.
/// Writing the ledger with optimistic concurrency is the caller's.</para>
/// </remarks>
/// <param name="Budget">The budget's key.</param>
/// <param name="Charges">Every charge, in the order granted.</param>
public sealed record PrivacyLedger(string Budget, IReadOnlyList<PrivacyCharge> Charges)
{
    private const double Slack = 1e-9;

    /// <summary>The ε spent: the sum of the charges'.</summary>
    public double EpsilonSpent => Charges.Sum(c => c.Epsilon);

    /// <summary>The δ spent: the sum of the charges'.</summary>
    public double DeltaSpent => Charges.Sum(c => c.Delta ?? 0);

    /// <summary>An empty ledger.</summary>
    public static PrivacyLedger Empty(string budget) => new(budget, []);

    /// <summary>Charges <paramref name="charge"/> against a total of <paramref name="totalEpsilon"/>: granted (added, or found already there), or refused.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A charge's ε that is not finite and positive, or a total that is negative or not finite.</exception>
    public LedgerDecision Charge(PrivacyCharge charge, double totalEpsilon)
    {
        ArgumentNullException.ThrowIfNull(charge);
        if (!(charge.Epsilon > 0) || !double.IsFinite(charge.Epsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(charge), charge.Epsilon, "A charge's ε must be finite and positive.");
        }

        if (!(totalEpsilon >= 0) || !double.IsFinite(totalEpsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(totalEpsilon), totalEpsilon, "A budget's total ε must be finite and non-negative.");
        }

        if (Charges.Any(c => c.ChargeId == charge.ChargeId))
        {
            return new LedgerDecision(this, false, null);
        }

        var spent = EpsilonSpent;
        if (spent + charge.Epsilon > totalEpsilon + Slack)
        {
            return new LedgerDecision(this, false, string.Create(
                CultureInfo.InvariantCulture,
                $"Privacy budget '{Budget}' refuses analysis '{charge.AnalysisId}': epsilon spent {spent:0.######} of {totalEpsilon:0.######}, requested {charge.Epsilon:0.######}, which would make {spent + charge.Epsilon:0.######}; {Math.Max(0, totalEpsilon - spent):0.######} remains. No silo has read any row for it."));
        }

        return new LedgerDecision(this with { Charges = [.. Charges, charge] }, true, null);
    }
}
