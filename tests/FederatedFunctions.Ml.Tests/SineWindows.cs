using System.Globalization;

namespace FederatedFunctions.Ml.Tests;

/// <summary>
/// Generated sequences: windows of a noisy rotating phasor (two sensors reading <c>a·sin(ωt + φ)</c> and
/// <c>a·cos(ωt + φ)</c>), whose class is which of three frequencies ω it turns at. One window is one row, step by step.
/// </summary>
/// <remarks>
/// The phase φ is uniform and the amplitude <c>a</c> random, so every class's mean window is zero, and so is any linear
/// function's mean on it: a linear model is left at chance, while a recurrent one can follow the rotation from step to
/// step. Also compiled into the workflow tests, which train on it federatedly.
/// </remarks>
internal static class SineWindows
{
    /// <summary>Steps per window.</summary>
    public const int Steps = 20;

    /// <summary>Values per step: the two sensors.</summary>
    public const int Features = 2;

    /// <summary>The frequencies, in radians per step; class <c>k</c> is <c>Frequencies[k]</c>.</summary>
    public static readonly double[] Frequencies = [0.3, 0.7, 1.2];

    /// <summary>Noise standard deviation, against amplitudes from 0.5 to 1.5.</summary>
    public const double Noise = 0.3;

    /// <summary>The feature names, <c>s0_sin, s0_cos, s1_sin, …</c>: step by step, a step's sensors side by side.</summary>
    public static string[] Names { get; } = Enumerable.Range(0, Steps)
        .SelectMany(t => new[] { "sin", "cos" }.Select(s => string.Create(CultureInfo.InvariantCulture, $"s{t}_{s}"))).ToArray();

    /// <summary><paramref name="rows"/> windows from a generator seeded with <paramref name="seed"/>; <paramref name="label"/> picks each class (uniform when null).</summary>
    public static TabularData Generate(int rows, int seed, Func<Random, long>? label = null)
    {
        var random = new Random(seed);
        var values = new float[rows * Steps * Features];
        var labels = new long[rows];
        for (var r = 0; r < rows; r++)
        {
            labels[r] = label?.Invoke(random) ?? random.Next(Frequencies.Length);
            var (omega, phase, amplitude) = (Frequencies[labels[r]], random.NextDouble() * 2 * Math.PI, 0.5 + random.NextDouble());
            for (var t = 0; t < Steps; t++)
            {
                var angle = (omega * t) + phase;
                values[(r * Steps * Features) + (t * Features)] = (float)((amplitude * Math.Sin(angle)) + (Noise * Gaussian(random)));
                values[(r * Steps * Features) + (t * Features) + 1] = (float)((amplitude * Math.Cos(angle)) + (Noise * Gaussian(random)));
            }
        }

        return new TabularData(values, labels, rows, Steps * Features, Names);
    }

    // Box–Muller.
    private static double Gaussian(Random random) => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
