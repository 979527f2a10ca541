namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// Rényi-DP accounting of the sampled Gaussian mechanism (Mironov, Talwar and Zhang 2019,
/// "Rényi Differential Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530, §3.3),
/// computed as TensorFlow Privacy's <c>rdp_accountant.py</c> and Opacus's
/// <c>opacus/accountants/analysis/rdp.py</c> compute it.
/// </summary>
/// <remarks>
/// <para>
/// Why: a federated run that adds Gaussian noise to clipped, sampled updates has to say how much
/// privacy it has spent after each round, and must be able to stop before it overspends.
/// The bounds here are the ones the reference libraries publish, so a run's ε can be compared
/// with theirs (the tests pin their published values to within 1%).
/// </para>
/// <para>
/// The mechanism, once per step: each record (a silo's or user's contribution) is included
/// independently with probability <c>q</c> (Poisson sampling), each included contribution is
/// clipped to L2 norm C, they are summed, and N(0, (z·C)²) noise is added to every coordinate, with
/// <c>z</c> the noise multiplier. Adjacency is add-or-remove-one record. Sampling a fixed number
/// of records without replacement, or shuffling, is <em>not</em> what this bounds.
/// </para>
/// <para>
/// Units: ε and RDP are in nats (natural logarithms); δ and q are probabilities; the noise
/// multiplier is the noise standard deviation divided by the L2 sensitivity (the clip norm), so it is
/// dimensionless; a step is one invocation of the mechanism (one round). RDP composes additively,
/// so the RDP of <c>steps</c> identical steps is <c>steps</c> times that of one.
/// </para>
/// <para>
/// Guarantees: every result is an upper bound on the privacy loss (never an estimate from below),
/// up to the floating-point error of the reference algorithm; ε is non-decreasing in the number
/// of steps, which <see cref="MaxStepsWithinBudget"/> relies on. Pure functions; thread-safe.
/// </para>
/// </remarks>
public static class RdpAccountant
{
    // TF Privacy and Opacus stop the fractional-order series once both new terms are below e^-30.
    private const double FractionalSeriesCutoff = -30.0;
    private const int MaxFractionalSeriesTerms = 1_000_000;

    // Integer orders take a sum of α + 1 terms; useful orders are below a few thousand.
    private const double MaxFiniteOrder = 1_000_000;

    /// <summary>
    /// The orders Opacus uses by default (<c>RDPAccountant.DEFAULT_ALPHAS</c>):
    /// 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
    /// </summary>
    public static IReadOnlyList<double> DefaultOrders { get; } = BuildDefaultOrders();

    /// <summary>RDP of the sampled Gaussian mechanism iterated <paramref name="steps"/> times, one value per order.</summary>
    /// <param name="q">Sampling probability per step, in [0, 1].</param>
    /// <param name="noiseMultiplier">Noise standard deviation over L2 sensitivity, finite and ≥ 0 (0 means no noise: RDP = +∞ unless q = 0).</param>
    /// <param name="steps">Number of steps, ≥ 0.</param>
    /// <param name="orders">Rényi orders α, each in (1, 10⁶] or +∞; integer-valued orders take the exact binomial sum, others the series of §3.3.</param>
    /// <returns>RDP in nats at each order; may contain +∞.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A parameter outside its domain.</exception>
    public static double[] ComputeRdp(double q, double noiseMultiplier, int steps, IReadOnlyList<double> orders)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ValidateMechanism(q, noiseMultiplier);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        ValidateOrders(orders);

        var rdp = new double[orders.Count];
        if (steps == 0)
        {
            return rdp; // Nothing was released. (The references would give NaN for ∞ · 0.)
        }

        for (var k = 0; k < orders.Count; k++)
        {
            rdp[k] = RdpOfOneStep(q, noiseMultiplier, orders[k]) * steps;
        }

        return rdp;
    }

    /// <summary>
    /// The smallest ε over the orders, by the conversion Opacus uses (Balle et al. 2020,
    /// "Hypothesis Testing Interpretations and Rényi Differential Privacy", Theorem 21):
    /// ε = RDP(α) − (log δ + log α)/(α − 1) + log((α − 1)/α).
    /// </summary>
    /// <remarks>
    /// TF Privacy's <c>rdp_accountant.py</c> (since 2021) and Google's <c>dp_accounting</c> use the same
    /// formula, written <c>r + log1p(−1/α) − log(δα)/(α − 1)</c>. It is never larger than
    /// <see cref="GetPrivacySpentClassic"/>. A negative result (possible only for α &gt; 1/δ) is reported as 0.
    /// </remarks>
    /// <param name="orders">Rényi orders, each in (1, 10⁶] or +∞.</param>
    /// <param name="rdp">RDP in nats at each order, as from <see cref="ComputeRdp"/>, summed over every mechanism run so far.</param>
    /// <param name="delta">Target δ, in (0, 1).</param>
    /// <exception cref="ArgumentException">Lists of different lengths, an empty list, or an RDP that is NaN.</exception>
    /// <exception cref="ArgumentOutOfRangeException">δ or an order outside its domain.</exception>
    public static PrivacySpent GetPrivacySpent(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta) =>
        Convert(orders, rdp, delta, static (alpha, r, logDelta) =>
            r - (logDelta + Math.Log(alpha)) / (alpha - 1) + Math.Log((alpha - 1) / alpha));

    /// <summary>
    /// The smallest ε over the orders by the original conversion (Mironov 2017, "Rényi Differential
    /// Privacy", Proposition 3): ε = RDP(α) − log δ / (α − 1).
    /// </summary>
    /// <remarks>
    /// Looser than <see cref="GetPrivacySpent"/>; kept because TF Privacy's older tests, its
    /// <c>compute_dp_sgd_privacy</c> documentation and early Opacus releases report ε this way,
    /// so their published values can be checked.
    /// </remarks>
    /// <inheritdoc cref="GetPrivacySpent" path="/param"/>
    /// <inheritdoc cref="GetPrivacySpent" path="/exception"/>
    public static PrivacySpent GetPrivacySpentClassic(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta) =>
        Convert(orders, rdp, delta, static (alpha, r, logDelta) => r - logDelta / (alpha - 1));

    /// <summary>
    /// ε after <paramref name="steps"/> identical steps of the sampled Gaussian mechanism, by
    /// <see cref="GetPrivacySpent"/> over <paramref name="orders"/> (default <see cref="DefaultOrders"/>).
    /// </summary>
    /// <remarks>This is what Opacus's <c>RDPAccountant.get_epsilon(delta)</c> returns after that many <c>step</c> calls.</remarks>
    public static double GetEpsilon(double q, double noiseMultiplier, double delta, int steps, IReadOnlyList<double>? orders = null)
    {
        orders ??= DefaultOrders;
        return GetPrivacySpent(orders, ComputeRdp(q, noiseMultiplier, steps, orders), delta).Epsilon;
    }

    /// <summary>
    /// The largest number of steps, at most <paramref name="maxSteps"/>, whose ε (as <see cref="GetEpsilon"/>
    /// computes it) is at most <paramref name="epsilonBudget"/>; 0 when even one step would exceed it.
    /// </summary>
    /// <remarks>
    /// For "stop before exceeding the budget": a run that has done <c>t</c> steps may do another
    /// only while <c>t &lt; MaxStepsWithinBudget(...)</c>. The result <c>T</c> satisfies
    /// <c>GetEpsilon(T) ≤ budget</c> (or <c>T = 0</c>) and, when <c>T &lt; maxSteps</c>,
    /// <c>GetEpsilon(T + 1) &gt; budget</c>. Cost: one RDP computation and O(log maxSteps) conversions.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">A parameter outside its domain, or a budget that is NaN or negative.</exception>
    public static int MaxStepsWithinBudget(
        double q, double noiseMultiplier, double delta, double epsilonBudget, int maxSteps, IReadOnlyList<double>? orders = null)
    {
        orders ??= DefaultOrders;
        if (double.IsNaN(epsilonBudget) || epsilonBudget < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(epsilonBudget), epsilonBudget, "The ε budget must be a non-negative number.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(maxSteps);
        ValidateDelta(delta);

        var perStep = ComputeRdp(q, noiseMultiplier, 1, orders);
        var scaled = new double[perStep.Length];
        bool Within(int steps)
        {
            for (var k = 0; k < perStep.Length; k++)
            {
                scaled[k] = perStep[k] * steps; // The same product ComputeRdp forms, so the answers agree.
            }

            return GetPrivacySpent(orders, scaled, delta).Epsilon <= epsilonBudget;
        }

        if (maxSteps == 0 || Within(maxSteps))
        {
            return maxSteps;
        }

        // Invariant: lo == 0 or Within(lo); !Within(hi).
        int lo = 0, hi = maxSteps;
        while (hi - lo > 1)
        {
            var mid = lo + (hi - lo) / 2;
            if (Within(mid))
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>RDP of one step at order α (TF Privacy's and Opacus's <c>_compute_rdp</c>).</summary>
    internal static double RdpOfOneStep(double q, double sigma, double alpha)
    {
        if (q == 0)
        {
            return 0;
        }

        if (sigma == 0)
        {
            return double.PositiveInfinity;
        }

        if (q == 1)
        {
            return alpha / (2 * sigma * sigma);
        }

        if (double.IsPositiveInfinity(alpha))
        {
            return double.PositiveInfinity;
        }

        return LogA(q, sigma, alpha) / (alpha - 1);
    }

    /// <summary>log A_α for 0 &lt; q &lt; 1 (arXiv:1908.10530 §3.3).</summary>
    internal static double LogA(double q, double sigma, double alpha) =>
        Math.Floor(alpha) == alpha
            ? LogAIntegerOrder(q, sigma, (int)alpha)
            : LogAFractionalOrder(q, sigma, alpha);

    /// <summary>
    /// log A_α = log Σᵢ C(α, i) qⁱ (1 − q)^(α−i) e^((i² − i)/(2σ²)) for integer α (<c>_compute_log_a_int</c>).
    /// </summary>
    internal static double LogAIntegerOrder(double q, double sigma, int alpha)
    {
        var logQ = Math.Log(q);
        var log1MinusQ = SpecialFunctions.Log1P(-q);
        var twoSigmaSquared = 2 * sigma * sigma;

        var logA = double.NegativeInfinity;
        var logBinomial = 0.0; // log C(α, i), built up term by term so that large α cannot overflow.
        for (var i = 0; i <= alpha; i++)
        {
            if (i > 0)
            {
                logBinomial += Math.Log((double)(alpha - i + 1)) - Math.Log(i);
            }

            double di = i;
            var logCoefficient = logBinomial + di * logQ + (alpha - di) * log1MinusQ;
            logA = SpecialFunctions.LogAdd(logA, logCoefficient + (di * di - di) / twoSigmaSquared);
        }

        return logA;
    }

    /// <summary>
    /// log A_α for fractional α (<c>_compute_log_a_frac</c>): the integral split at
    /// z₀ = σ² log(1/q − 1) + ½, each half a convergent series in the generalised binomial C(α, i).
    /// </summary>
    /// <exception cref="InvalidOperationException">The series did not fall below its cutoff.</exception>
    internal static double LogAFractionalOrder(double q, double sigma, double alpha)
    {
        var logQ = Math.Log(q);
        var log1MinusQ = SpecialFunctions.Log1P(-q);
        var twoSigmaSquared = 2 * sigma * sigma;
        var sqrt2Sigma = Math.Sqrt(2) * sigma;
        var logHalf = Math.Log(0.5);
        var z0 = sigma * sigma * Math.Log(1 / q - 1) + 0.5;

        double logA0 = double.NegativeInfinity, logA1 = double.NegativeInfinity;
        var logAbsBinomial = 0.0; // log |C(α, i)|
        var binomialPositive = true;
        for (var i = 0; i < MaxFractionalSeriesTerms; i++)
        {
            if (i > 0)
            {
                var factor = alpha - i + 1; // C(α, i) = C(α, i − 1) · (α − i + 1) / i; never 0 for fractional α.
                logAbsBinomial += Math.Log(Math.Abs(factor)) - Math.Log(i);
                if (factor < 0)
                {
                    binomialPositive = !binomialPositive;
                }
            }

            double di = i;
            var j = alpha - di;

            var logT0 = logAbsBinomial + di * logQ + j * log1MinusQ;
            var logT1 = logAbsBinomial + j * logQ + di * log1MinusQ;

            var logE0 = logHalf + SpecialFunctions.LogErfc((di - z0) / sqrt2Sigma);
            var logE1 = logHalf + SpecialFunctions.LogErfc((z0 - j) / sqrt2Sigma);

            var logS0 = logT0 + (di * di - di) / twoSigmaSquared + logE0;
            var logS1 = logT1 + (j * j - j) / twoSigmaSquared + logE1;

            if (binomialPositive)
            {
                logA0 = SpecialFunctions.LogAdd(logA0, logS0);
                logA1 = SpecialFunctions.LogAdd(logA1, logS1);
            }
            else
            {
                logA0 = SpecialFunctions.LogSub(logA0, logS0);
                logA1 = SpecialFunctions.LogSub(logA1, logS1);
            }

            if (Math.Max(logS0, logS1) < FractionalSeriesCutoff)
            {
                return SpecialFunctions.LogAdd(logA0, logA1);
            }
        }

        throw new InvalidOperationException(
            $"The RDP series for order {alpha} (q = {q}, σ = {sigma}) did not converge in {MaxFractionalSeriesTerms} terms.");
    }

    private delegate double Conversion(double alpha, double rdp, double logDelta);

    private static PrivacySpent Convert(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta, Conversion conversion)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(rdp);
        if (orders.Count != rdp.Count)
        {
            throw new ArgumentException($"{orders.Count} orders but {rdp.Count} RDP values; they must pair up.", nameof(rdp));
        }

        if (orders.Count == 0)
        {
            throw new ArgumentException("At least one order is needed.", nameof(orders));
        }

        ValidateDelta(delta);
        ValidateOrders(orders);

        var logDelta = Math.Log(delta);
        var best = new PrivacySpent(double.PositiveInfinity, double.NaN);
        for (var k = 0; k < orders.Count; k++)
        {
            if (double.IsNaN(rdp[k]))
            {
                throw new ArgumentException($"The RDP at order {orders[k]} is NaN.", nameof(rdp));
            }

            // NaN (e.g. at α = +∞) is skipped, as numpy's nanargmin skips it; ties keep the first order.
            var epsilon = conversion(orders[k], rdp[k], logDelta);
            if (epsilon < best.Epsilon)
            {
                best = new PrivacySpent(epsilon, orders[k]);
            }
        }

        return best.Epsilon < 0 ? best with { Epsilon = 0 } : best;
    }

    private static void ValidateMechanism(double q, double noiseMultiplier)
    {
        if (!(q >= 0 && q <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(q), q, "The sampling probability must be in [0, 1].");
        }

        if (!(noiseMultiplier >= 0) || !double.IsFinite(noiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "The noise multiplier must be finite and non-negative.");
        }
    }

    private static void ValidateDelta(double delta)
    {
        if (!(delta > 0 && delta < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must be in (0, 1).");
        }
    }

    private static void ValidateOrders(IReadOnlyList<double> orders)
    {
        foreach (var alpha in orders)
        {
            if (!(alpha > 1) || (alpha > MaxFiniteOrder && !double.IsPositiveInfinity(alpha)))
            {
                throw new ArgumentOutOfRangeException(
                    nameof(orders), alpha, $"Every Rényi order must be greater than 1 and at most {MaxFiniteOrder}, or +∞.");
            }
        }
    }

    private static IReadOnlyList<double> BuildDefaultOrders()
    {
        var orders = new List<double>(150);
        for (var x = 1; x < 100; x++)
        {
            orders.Add(1 + x / 10.0);
        }

        for (var a = 12; a < 64; a++)
        {
            orders.Add(a);
        }

        return orders.AsReadOnly();
    }
}
