namespace FederatedFunctions.Core.Privacy;

/// <summary>
/// Marsaglia's polar method over a 64-bit uniform generator, shared by the Gaussian sources.
/// </summary>
/// <remarks>
/// Each uniform has 53 random bits (the top 53 of a 64-bit word), so every double in [0, 1) on the
/// 2⁻⁵³ grid is equally likely. Samples come in pairs; the second is kept for the next call.
/// Not thread-safe.
/// </remarks>
internal sealed class PolarNormalSampler(Func<ulong> next64)
{
    private const double TwoToMinus53 = 1.0 / (1UL << 53);

    private bool _hasSpare;
    private double _spare;

    /// <summary>A uniform double in [0, 1) with 53-bit resolution.</summary>
    public double NextUniform() => (next64() >> 11) * TwoToMinus53;

    public double NextStandardNormal()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }

        double u, v, s;
        do
        {
            u = 2.0 * NextUniform() - 1.0;
            v = 2.0 * NextUniform() - 1.0;
            s = u * u + v * v;
        }
        while (s >= 1.0 || s == 0.0);

        var factor = Math.Sqrt(-2.0 * Math.Log(s) / s);
        _spare = v * factor;
        _hasSpare = true;
        return u * factor;
    }

    /// <summary>
    /// A standard Laplace sample by inversion: with <c>u</c> uniform on (−½, ½), <c>−sign(u)·ln(1 − 2|u|)</c>. The uniform
    /// that would give ln(0) (exactly −½) is drawn again, so the sample is always finite (at most about 36.7 in size).
    /// </summary>
    public double NextStandardLaplace()
    {
        double u;
        do
        {
            u = NextUniform() - 0.5;
        }
        while (u == -0.5);

        return -Math.Sign(u) * Math.Log(1.0 - (2.0 * Math.Abs(u)));
    }

    public void Fill(Span<float> destination, double standardDeviation)
    {
        if (!(standardDeviation >= 0) || !double.IsFinite(standardDeviation))
        {
            throw new ArgumentOutOfRangeException(nameof(standardDeviation), standardDeviation, "The standard deviation must be finite and non-negative.");
        }

        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = (float)(standardDeviation * NextStandardNormal());
        }
    }
}
