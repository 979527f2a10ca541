namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// The complementary error function and the log-space arithmetic the RDP accountant needs.
/// </summary>
/// <remarks>
/// .NET has no <c>erfc</c>, and its <c>double.ExpM1</c>/<c>double.LogP1</c> are computed as
/// <c>Exp(x) - 1</c> and <c>Log(1 + x)</c>, which lose every digit for tiny arguments. The accountant
/// adds and subtracts probabilities as logarithms, so these are written out here.
/// <list type="bullet">
/// <item><see cref="Erfc"/> has a relative error of a few units in the last place (about 1e-15) on the
/// whole real line: a Maclaurin series below |x| = 0.5 and, from there on, the Legendre continued
/// fraction of the incomplete gamma function Γ(½, x²), evaluated backwards from a fixed depth, with
/// e^(−x²) formed without the rounding error of x².</item>
/// <item><see cref="LogErfc"/> never underflows: for x ≥ 0.5 it adds the logarithms of the
/// continued-fraction pieces instead of taking the logarithm of a number that may be below
/// the smallest double (erfc(27) ≈ 5e-319, erfc(30) ≈ 3e-393).</item>
/// </list>
/// </remarks>
internal static class SpecialFunctions
{
    private const double SqrtPi = 1.7724538509055160272981674833411;
    private const double TwoOverSqrtPi = 1.1283791670955125738961589031215;
    private const double MachineEpsilon = 2.220446049250313e-16;

    // Below this |x| the Maclaurin series of erf converges in under 20 terms and 1 − erf(x) ≥ 0.47
    // keeps full relative precision; from here on the continued fraction needs at most ~450 terms.
    private const double SeriesLimit = 0.5;
    private const int MaxContinuedFractionTerms = 1000;

    /// <summary>erfc(x) = 1 − erf(x) = (2/√π) ∫ₓ^∞ e^(−t²) dt.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x < 0)
        {
            // erfc(−x) = 2 − erfc(x); the result is in [1, 2], so the subtraction loses nothing.
            return 2.0 - Erfc(-x);
        }

        if (x < SeriesLimit)
        {
            return 1.0 - ErfSeries(x);
        }

        if (double.IsPositiveInfinity(x))
        {
            return 0.0;
        }

        return ExpMinusSquare(x) * x * GammaHalfContinuedFraction(x * x) / SqrtPi;
    }

    /// <summary>log(erfc(x)), finite for every finite x.</summary>
    public static double LogErfc(double x)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x < SeriesLimit)
        {
            return Math.Log(Erfc(x));
        }

        if (double.IsPositiveInfinity(x))
        {
            return double.NegativeInfinity;
        }

        // erfc(x) = e^(−x²) · x · h(x²) / √π, with h the continued fraction.
        return -(x * x) + Math.Log(x * GammaHalfContinuedFraction(x * x) / SqrtPi);
    }

    /// <summary>log(1 + x), accurate for tiny x.</summary>
    public static double Log1P(double x)
    {
        if (double.IsNaN(x) || double.IsPositiveInfinity(x))
        {
            return x;
        }

        var u = 1.0 + x;
        if (u == 1.0)
        {
            return x;
        }

        if (double.IsPositiveInfinity(u))
        {
            return Math.Log(x);
        }

        // Kahan's correction: (u − 1) is exactly representable, and log(u)/(u − 1) varies slowly.
        return Math.Log(u) * x / (u - 1.0);
    }

    /// <summary>e^x − 1, accurate for tiny x.</summary>
    public static double ExpM1(double x)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        var u = Math.Exp(x);
        if (u == 1.0)
        {
            return x;
        }

        var um1 = u - 1.0;
        if (um1 == -1.0)
        {
            return -1.0;
        }

        if (double.IsPositiveInfinity(u))
        {
            return u;
        }

        // Kahan's correction, the dual of the one in Log1P.
        return um1 * x / Math.Log(u);
    }

    /// <summary>log(e^logX + e^logY); −∞ stands for zero.</summary>
    public static double LogAdd(double logX, double logY)
    {
        var a = Math.Min(logX, logY);
        var b = Math.Max(logX, logY);
        if (double.IsNegativeInfinity(a) || double.IsPositiveInfinity(b))
        {
            return b;
        }

        return Log1P(Math.Exp(a - b)) + b;
    }

    /// <summary>log(e^logX − e^logY); −∞ stands for zero.</summary>
    /// <exception cref="ArgumentException">The difference would be negative.</exception>
    public static double LogSub(double logX, double logY)
    {
        if (logX < logY)
        {
            throw new ArgumentException("The result of a log-space subtraction must be non-negative.", nameof(logY));
        }

        if (double.IsNegativeInfinity(logY))
        {
            return logX;
        }

        if (logX == logY)
        {
            return double.NegativeInfinity;
        }

        var expM1 = ExpM1(logX - logY);
        // e^(x − y) overflows only when e^logY is negligible next to e^logX.
        return double.IsPositiveInfinity(expM1) ? logX : Math.Log(expM1) + logY;
    }

    /// <summary>erf(x) for |x| &lt; <see cref="SeriesLimit"/>: (2/√π) Σ (−1)ⁿ x^(2n+1) / (n! (2n+1)).</summary>
    private static double ErfSeries(double x)
    {
        var x2 = x * x;
        var power = x; // (−1)ⁿ x^(2n+1) / n!
        var sum = x;
        for (var n = 1; n < 60; n++)
        {
            power *= -x2 / n;
            var term = power / (2 * n + 1);
            sum += term;
            if (Math.Abs(term) <= MachineEpsilon * 0.25 * Math.Abs(sum))
            {
                break;
            }
        }

        return TwoOverSqrtPi * sum;
    }

    /// <summary>
    /// e^(−x²) for x ≥ 0 without the error of rounding x² (which, at x = 20, would already cost
    /// 40 units in the last place): x = hi + lo with hi on a 1/16 grid, so hi² is exact.
    /// </summary>
    private static double ExpMinusSquare(double x)
    {
        var hi = Math.Floor(x * 16.0) / 16.0;
        var lo = x - hi;
        return Math.Exp(-hi * hi) * Math.Exp(-lo * (x + hi));
    }

    /// <summary>
    /// h(z) such that Γ(½, z) = e^(−z) z^½ h(z), from Legendre's continued fraction
    /// h = 1/(b₀ + a₁/(b₁ + a₂/(b₂ + …))) with bᵢ = z + 2i + ½ and aᵢ = −i(i − ½).
    /// </summary>
    /// <remarks>
    /// Evaluated backwards from a fixed depth, which is stable (a forward Lentz evaluation
    /// accumulates about 1e-14 of rounding over the few hundred terms needed near z = ¼).
    /// The truncation error after n terms falls like e^(−4√(nz)); 110/z terms put it below 1e-19.
    /// </remarks>
    private static double GammaHalfContinuedFraction(double z)
    {
        const double a = 0.5;
        var depth = (int)Math.Min(MaxContinuedFractionTerms, Math.Ceiling(110.0 / z)) + 8;
        var tail = 0.0;
        for (var i = depth; i >= 1; i--)
        {
            tail = -i * (i - a) / (z + 2 * i + 1 - a + tail);
        }

        return 1.0 / (z + 1 - a + tail);
    }
}
