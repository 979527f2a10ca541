namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// The noise scale of the Laplace and Gaussian mechanisms for one query of a given sensitivity and privacy parameters.
/// </summary>
/// <remarks>
/// <para>
/// <b>Laplace</b> (Dwork, McSherry, Nissim and Smith 2006): adding Lap(b) noise with <c>b = Δ₁/ε</c> to each coordinate of a
/// query of L1 sensitivity Δ₁ is ε-differentially private (δ = 0).
/// </para>
/// <para>
/// <b>Gaussian</b>, analytic calibration (Balle and Wang 2018, "Improving the Gaussian Mechanism for Differential Privacy",
/// Theorem 8): N(0, σ²) noise on each coordinate of a query of L2 sensitivity Δ₂ is (ε, δ)-differentially private if and
/// only if <c>Φ(Δ₂/(2σ) − εσ/Δ₂) − e^ε·Φ(−Δ₂/(2σ) − εσ/Δ₂) ≤ δ</c>. <see cref="AnalyticGaussianSigma"/> returns the least σ
/// that satisfies it, found by bisection on a condition evaluated in log space, rounded up (the σ returned always
/// satisfies the condition as evaluated). Unlike the classic calibration <c>σ = Δ₂·√(2 ln(1.25/δ))/ε</c> (Dwork and Roth
/// 2014, Theorem A.1), which <see cref="ClassicGaussianSigma"/> gives for comparison, it holds for every ε &gt; 0, not
/// only ε &lt; 1, and is never larger.
/// </para>
/// <para>Pure functions; units: sensitivities and scales are in the units of the query, ε and δ are dimensionless (ε in nats).</para>
/// </remarks>
public static class NoiseCalibration
{
    private const double LogHalf = -0.69314718055994530942;
    private const double Sqrt2 = 1.4142135623730950488;

    /// <summary>The Laplace scale b = Δ₁/ε: the noise's standard deviation is √2·b.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A sensitivity that is negative or not finite, or an ε that is not finite and positive.</exception>
    public static double LaplaceScale(double l1Sensitivity, double epsilon)
    {
        Validate(l1Sensitivity, epsilon);
        return l1Sensitivity / epsilon;
    }

    /// <summary>The classic Gaussian calibration σ = Δ₂·√(2 ln(1.25/δ))/ε, valid for ε &lt; 1 only; kept as a reference.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A parameter outside its domain, or ε ≥ 1.</exception>
    public static double ClassicGaussianSigma(double l2Sensitivity, double epsilon, double delta)
    {
        Validate(l2Sensitivity, epsilon, delta);
        if (epsilon >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "The classic Gaussian calibration holds for ε < 1 only.");
        }

        return l2Sensitivity * Math.Sqrt(2 * Math.Log(1.25 / delta)) / epsilon;
    }

    /// <summary>The least σ for which N(0, σ²) noise on a query of L2 sensitivity Δ₂ is (ε, δ)-DP (analytic Gaussian mechanism).</summary>
    /// <returns>σ, rounded up to within about 1e-12 relative; 0 when the sensitivity is 0.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A parameter outside its domain (δ must be in (0, 1)).</exception>
    public static double AnalyticGaussianSigma(double l2Sensitivity, double epsilon, double delta)
    {
        Validate(l2Sensitivity, epsilon, delta);
        if (l2Sensitivity == 0)
        {
            return 0;
        }

        // In units of the sensitivity: δ(s) for σ = s·Δ₂ does not depend on Δ₂.
        var logDelta = Math.Log(delta);
        var high = 1.0;
        while (!Holds(high, epsilon, logDelta))
        {
            high *= 2;
        }

        var low = high / 2;
        while (Holds(low, epsilon, logDelta))
        {
            (high, low) = (low, low / 2);
        }

        while (high - low > 1e-13 * high)
        {
            var mid = 0.5 * (low + high);
            if (Holds(mid, epsilon, logDelta))
            {
                high = mid;
            }
            else
            {
                low = mid;
            }
        }

        return high * l2Sensitivity;
    }

    /// <summary>The least δ for which N(0, σ²) noise on a query of L2 sensitivity Δ₂ is (ε, δ)-DP: Balle and Wang's δ(σ).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A parameter outside its domain.</exception>
    public static double AnalyticGaussianDelta(double sigma, double l2Sensitivity, double epsilon)
    {
        Validate(l2Sensitivity, epsilon);
        if (!(sigma > 0) || !double.IsFinite(sigma) || !(l2Sensitivity > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "σ and the sensitivity must be finite and positive.");
        }

        return Math.Exp(LogDelta(sigma / l2Sensitivity, epsilon));
    }

    // Whether σ = s·Δ₂ meets δ: log δ(s) ≤ log δ.
    private static bool Holds(double s, double epsilon, double logDelta) => LogDelta(s, epsilon) <= logDelta;

    // log(Φ(1/(2s) − εs) − e^ε·Φ(−1/(2s) − εs)), −∞ when the difference is not positive.
    private static double LogDelta(double s, double epsilon)
    {
        var first = LogPhi((0.5 / s) - (epsilon * s));
        var second = epsilon + LogPhi((-0.5 / s) - (epsilon * s));
        return first <= second ? double.NegativeInfinity : SpecialFunctions.LogSub(first, second);
    }

    // log Φ(t) = log(½·erfc(−t/√2)).
    private static double LogPhi(double t) => LogHalf + SpecialFunctions.LogErfc(-t / Sqrt2);

    private static void Validate(double sensitivity, double epsilon)
    {
        if (!(sensitivity >= 0) || !double.IsFinite(sensitivity))
        {
            throw new ArgumentOutOfRangeException(nameof(sensitivity), sensitivity, "The sensitivity must be finite and non-negative.");
        }

        if (!(epsilon > 0) || !double.IsFinite(epsilon))
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "ε must be finite and positive.");
        }
    }

    private static void Validate(double sensitivity, double epsilon, double delta)
    {
        Validate(sensitivity, epsilon);
        if (!(delta is > 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must be in (0, 1).");
        }
    }
}
