using System.Globalization;
using FederatedFunctions.Core.Analysis;

namespace FederatedFunctions.LocalHost.Plots;

/// <summary>A federated histogram as a PNG bar chart: what <c>fl analyze --png DIR</c> and <c>fl analysis ID --png DIR</c> write.</summary>
/// <remarks>
/// <para>Each bin is a bar from its lower to its upper edge on a linear value axis, as tall as its count on a linear
/// count axis that starts at zero; unequal bins therefore keep their true widths (the bar height is the count, not a
/// density). A suppressed bin (fewer rows than the minimum count) has no count to draw: its whole column is grey, so
/// a reader never mistakes it for an empty bin. Rows below the first edge or above the last are stated in the title
/// line, not drawn.</para>
/// <para>The chart is drawn from the stored result alone, so it shows exactly the aggregates that left the silos, no more.</para>
/// </remarks>
public static class HistogramPng
{
    /// <summary>Image width in pixels.</summary>
    public const int Width = 640;

    /// <summary>Image height in pixels.</summary>
    public const int Height = 400;

    /// <summary>The plot area: left, top, right and bottom pixel bounds (right and bottom exclusive).</summary>
    public static readonly (int Left, int Top, int Right, int Bottom) Plot = (70, 40, Width - 20, Height - 40);

    /// <summary>Bar colour, 0xRRGGBB.</summary>
    public const int BarColour = 0x3366CC;

    /// <summary>Colour of a suppressed bin's column, 0xRRGGBB.</summary>
    public const int SuppressedColour = 0xD0D0D0;

    private const int Ink = 0x202020;

    /// <summary>Draws <paramref name="histogram"/> of <paramref name="feature"/>.</summary>
    /// <exception cref="ArgumentException">The histogram has fewer than two edges, or not one count per bin.</exception>
    public static Raster Draw(string feature, HistogramResult histogram)
    {
        ArgumentNullException.ThrowIfNull(feature);
        ArgumentNullException.ThrowIfNull(histogram);
        var (edges, counts) = (histogram.Edges, histogram.Counts);
        if (edges.Length < 2 || counts.Length != edges.Length - 1)
        {
            throw new ArgumentException($"A histogram needs n + 1 edges for n counts; got {edges.Length} edges and {counts.Length} counts.", nameof(histogram));
        }

        var image = new Raster(Width, Height);
        var (left, top, right, bottom) = Plot;
        var most = Math.Max(1, counts.Max(c => c ?? 0));
        var (low, high) = (edges[0], edges[^1]);
        int X(double v) => left + (int)Math.Round((right - left) * ((v - low) / (high - low)));
        int Y(long c) => bottom - (int)Math.Round((bottom - top) * ((double)c / most));

        for (var i = 0; i < counts.Length; i++)
        {
            var (x0, x1) = (X(edges[i]), Math.Max(X(edges[i]) + 1, X(edges[i + 1]) - 1));
            if (counts[i] is { } c)
            {
                image.Fill(x0, Y(c), x1, bottom, BarColour);
            }
            else
            {
                image.Fill(x0, top, x1, bottom, SuppressedColour);
            }
        }

        // Axes, ticks and labels: counts 0, half and most; values at the first, middle and last edge.
        image.Fill(left - 1, top, left, bottom + 1, Ink);
        image.Fill(left - 1, bottom, right, bottom + 1, Ink);
        foreach (var c in new[] { 0L, most / 2, most }.Distinct())
        {
            var label = c.ToString(CultureInfo.InvariantCulture);
            image.Fill(left - 5, Y(c), left - 1, Y(c) + 1, Ink);
            image.Text(left - 8 - Raster.TextWidth(label), Y(c) - 3, label, Ink);
        }

        foreach (var e in new[] { edges[0], edges[edges.Length / 2], edges[^1] }.Distinct())
        {
            var label = Number(e);
            image.Fill(X(e), bottom, X(e) + 1, bottom + 5, Ink);
            image.Text(Math.Clamp(X(e) - (Raster.TextWidth(label) / 2), 0, Width - Raster.TextWidth(label)), bottom + 9, label, Ink);
        }

        var shown = counts.Sum(c => c ?? 0);
        var outside = (histogram.Below, histogram.Above) switch
        {
            (0, 0) => string.Empty,
            var (b, a) => $"  below {Shown(b)}, above {Shown(a)}",
        };
        image.Text(left, 10, feature, Ink, scale: 2);
        image.Text(left + Raster.TextWidth(feature, 2) + 12, 17, $"{shown} rows in the bins shown{outside}{(counts.Any(c => c is null) ? "  grey: suppressed" : string.Empty)}", Ink);
        return image;
    }

    private static string Shown(long? count) => count?.ToString(CultureInfo.InvariantCulture) ?? "suppressed";

    private static string Number(double v) => Math.Abs(v) is >= 1e-3 and < 1e6 or 0
        ? v.ToString("0.###", CultureInfo.InvariantCulture)
        : v.ToString("0.##E+0", CultureInfo.InvariantCulture);
}
