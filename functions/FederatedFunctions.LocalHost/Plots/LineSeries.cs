namespace FederatedFunctions.LocalHost.Plots;

/// <summary>One named line of a <see cref="LineChartPng"/>: its points as (x, y), for instance (round, accuracy).</summary>
/// <remarks>
/// Points need not be sorted, and each series may have its own x values. A point whose y is NaN or infinite (a round
/// that was not evaluated) is skipped; its neighbours are joined. Every x must be finite.
/// </remarks>
/// <param name="Name">The name the legend shows; unique among the chart's series, ignoring case (the font draws upper case).</param>
/// <param name="Points">The points, in any order.</param>
public sealed record LineSeries(string Name, IReadOnlyList<(double X, double Y)> Points);
