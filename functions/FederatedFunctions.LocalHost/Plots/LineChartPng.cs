using System.Globalization;

namespace FederatedFunctions.LocalHost.Plots;

/// <summary>
/// Several <see cref="LineSeries"/> on one PNG line chart, for instance accuracy per round of training configurations
/// side by side (centralized, one silo alone, FedAvg, FedProx, FedAdam).
/// </summary>
/// <remarks>
/// <para>The x axis spans the points' x values rounded out to whole numbers and has integer ticks (rounds, epochs). The
/// y axis is the fixed range a caller gives; without one it is [0, 1] when every y lies there (accuracy, a share), and
/// otherwise the data's range padded by 5% at each end. A fixed range may leave points outside: their lines are cut at
/// the plot's edge and they get no marker.</para>
/// <para>Series are drawn in the order given, each with the next colour of <see cref="Palette"/> (cycling), a 2-pixel
/// line through its points in order of x and a square marker on each point, so a later series lies over an earlier
/// one. The legend, right of the plot, lists the series in the same order with their colours.</para>
/// <para>Deterministic: the same arguments give the same PNG bytes. Nothing depends on the culture, the clock or fonts
/// installed on the machine.</para>
/// </remarks>
public static class LineChartPng
{
    /// <summary>Image width in pixels.</summary>
    public const int Width = 800;

    /// <summary>Image height in pixels.</summary>
    public const int Height = 450;

    /// <summary>The plot area: left, top, right and bottom pixel bounds (right and bottom exclusive; the x axis is row <c>Bottom</c>).</summary>
    public static readonly (int Left, int Top, int Right, int Bottom) Plot = (70, 40, Width - LegendWidth - 20, Height - 50);

    /// <summary>Pixels between the plot's left and right edges and the lowest and highest x, so edge markers clear the axis.</summary>
    public const int XInset = 10;

    /// <summary>Side of a point's square marker, in pixels, centred on the point.</summary>
    public const int MarkerSize = 5;

    /// <summary>Width of the lines between points, in pixels.</summary>
    public const int LineWidth = 2;

    /// <summary>The largest |x| accepted: x counts rounds or epochs, and the axis ticks whole numbers of them.</summary>
    public const double MaxAbsX = 1e9;

    /// <summary>Series colours, 0xRRGGBB, in order; series i is drawn in <c>Palette[i % Palette.Count]</c>.</summary>
    public static IReadOnlyList<int> Palette { get; } =
    [
        0x1F77B4, // blue
        0xFF7F0E, // orange
        0x2CA02C, // green
        0xD62728, // red
        0x9467BD, // purple
        0x8C564B, // brown
        0xE377C2, // pink
        0x7F7F7F, // grey
        0xBCBD22, // olive
        0x17BECF, // cyan
    ];

    /// <summary>Colour of the horizontal grid lines at the y ticks, 0xRRGGBB.</summary>
    public const int GridColour = 0xE6E6E6;

    private const int Ink = 0x202020;
    private const int LegendWidth = 170;
    private const int LegendLeft = Width - LegendWidth;
    private const int LegendTextLeft = LegendLeft + 26;
    private const int LegendRowHeight = 14;
    private const int LegendMaxChars = (Width - 3 - LegendTextLeft) / 6;

    /// <summary>The colour of series number <paramref name="index"/> (from 0).</summary>
    public static int ColourOf(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return Palette[index % Palette.Count];
    }

    /// <summary>Draws <paramref name="series"/> under <paramref name="title"/>.</summary>
    /// <param name="title">The chart's title, drawn large above the plot.</param>
    /// <param name="xLabel">What x counts (for instance "round"), drawn below the x axis.</param>
    /// <param name="yLabel">What y measures (for instance "accuracy"), drawn above the y axis.</param>
    /// <param name="series">The lines, at least one, with distinct non-blank names.</param>
    /// <param name="yRange">A fixed y axis from Min to Max; null derives it from the data (see the remarks of <see cref="LineChartPng"/>).</param>
    /// <exception cref="ArgumentException">
    /// No series; a series or its points missing; a blank name or two names equal ignoring case; an x that is not finite
    /// or beyond <see cref="MaxAbsX"/>; a fixed y range that is not finite or not increasing.
    /// </exception>
    public static Raster Draw(string title, string xLabel, string yLabel, IReadOnlyList<LineSeries> series, (double Min, double Max)? yRange = null)
    {
        ArgumentNullException.ThrowIfNull(title);
        ArgumentNullException.ThrowIfNull(xLabel);
        ArgumentNullException.ThrowIfNull(yLabel);
        Validate(series, yRange);

        var (lines, x, y) = Frame(series, yRange);
        var image = new Raster(Width, Height);
        var (left, top, right, bottom) = Plot;
        double Px(double v) => XPixel(v, x);
        double Py(double v) => YPixel(v, y);

        // Grid and y ticks, then the axes, then the series over them, then the x ticks and the words.
        var (yTicks, yStep) = YTicks(y.Min, y.Max);
        foreach (var t in yTicks)
        {
            var row = Round(Py(t));
            if (row < bottom)
            {
                image.Fill(left, row, right, row + 1, GridColour);
            }

            var label = YLabel(t, yStep, y.Min, y.Max);
            image.Fill(left - 5, row, left - 1, row + 1, Ink);
            image.Text(Math.Max(0, left - 8 - Raster.TextWidth(label)), row - 3, label, Ink);
        }

        image.Fill(left - 1, top, left, bottom + 1, Ink);
        image.Fill(left - 1, bottom, right, bottom + 1, Ink);

        for (var i = 0; i < lines.Length; i++)
        {
            var (points, colour) = (lines[i], ColourOf(i));
            for (var k = 1; k < points.Length; k++)
            {
                var (x0, y0, x1, y1) = (Px(points[k - 1].X), Py(points[k - 1].Y), Px(points[k].X), Py(points[k].Y));
                if (Raster.ClipSegment(x0, y0, x1, y1, left, top, right - 1, bottom, out var a, out var b))
                {
                    image.Line(Round(a.X), Round(a.Y), Round(b.X), Round(b.Y), colour, LineWidth);
                }
            }

            foreach (var p in points.Where(p => p.Y >= y.Min && p.Y <= y.Max))
            {
                var (cx, cy) = (Round(Px(p.X)) - (MarkerSize / 2), Round(Py(p.Y)) - (MarkerSize / 2));
                image.Fill(cx, cy, cx + MarkerSize, cy + MarkerSize, colour);
            }
        }

        foreach (var t in XTicks(x.Min, x.Max))
        {
            var column = Round(Px(t));
            var label = t.ToString("0", CultureInfo.InvariantCulture);
            image.Fill(column, bottom, column + 1, bottom + 5, Ink);
            image.Text(Math.Clamp(column - (Raster.TextWidth(label) / 2), 0, Width - Raster.TextWidth(label)), bottom + 9, label, Ink);
        }

        image.Text(left, 10, title, Ink, scale: 2);
        image.Text(8, top - 12, yLabel, Ink);
        image.Text(Math.Max(0, ((left + right) / 2) - (Raster.TextWidth(xLabel) / 2)), bottom + 26, xLabel, Ink);
        Legend(image, series);
        return image;
    }

    /// <summary>
    /// The pixel at the centre of the marker that <see cref="Draw"/> gives the point (<paramref name="x"/>, <paramref name="y"/>)
    /// of a chart of <paramref name="series"/> with <paramref name="yRange"/>: so a reader of the PNG can check each point.
    /// </summary>
    public static (int X, int Y) PixelOf(IReadOnlyList<LineSeries> series, (double Min, double Max)? yRange, double x, double y)
    {
        Validate(series, yRange);
        var (_, xAxis, yAxis) = Frame(series, yRange);
        return (Round(XPixel(x, xAxis)), Round(YPixel(y, yAxis)));
    }

    // Drawn points (finite y only, in order of x: a stable sort, so equal x keep their given order) and the two axes.
    private static ((double X, double Y)[][] Lines, (double Min, double Max) X, (double Min, double Max) Y) Frame(IReadOnlyList<LineSeries> series, (double Min, double Max)? yRange)
    {
        var lines = series.Select(s => s.Points.Where(p => double.IsFinite(p.Y)).OrderBy(p => p.X).ToArray()).ToArray();
        var all = lines.SelectMany(p => p).ToArray();
        return (lines, XAxis(all), yRange ?? YAxis(all));
    }

    private static double XPixel(double v, (double Min, double Max) x) => Plot.Left + XInset + ((Plot.Right - Plot.Left - (2 * XInset)) * Fraction(v, x.Min, x.Max));

    private static double YPixel(double v, (double Min, double Max) y) => Plot.Bottom - ((Plot.Bottom - Plot.Top) * Math.Clamp(Fraction(v, y.Min, y.Max), -1e6, 1e6));

    private static void Validate(IReadOnlyList<LineSeries> series, (double Min, double Max)? yRange)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0)
        {
            throw new ArgumentException("A line chart needs at least one series.", nameof(series));
        }

        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < series.Count; i++)
        {
            var s = series[i] ?? throw new ArgumentException($"Series {i} is null.", nameof(series));
            if (string.IsNullOrWhiteSpace(s.Name))
            {
                throw new ArgumentException($"Series {i} has no name; the legend needs one.", nameof(series));
            }

            if (!names.Add(s.Name))
            {
                throw new ArgumentException($"Two series are named '{s.Name}' (ignoring case); the legend could not tell them apart.", nameof(series));
            }

            if (s.Points is null)
            {
                throw new ArgumentException($"Series '{s.Name}' has no list of points.", nameof(series));
            }

            foreach (var (px, _) in s.Points)
            {
                if (!double.IsFinite(px) || Math.Abs(px) > MaxAbsX)
                {
                    throw new ArgumentException($"Series '{s.Name}' has x = {px.ToString(CultureInfo.InvariantCulture)}; x must be finite and at most 1e9 in size.", nameof(series));
                }
            }
        }

        if (yRange is (var min, var max) && !(double.IsFinite(min) && double.IsFinite(max) && min < max))
        {
            throw new ArgumentException($"A fixed y range needs finite Min < Max; got [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}].", nameof(yRange));
        }
    }

    /// <summary>Whole numbers around the x values; a single x gets one unit either side.</summary>
    private static (double Min, double Max) XAxis((double X, double Y)[] points)
    {
        if (points.Length == 0)
        {
            return (0, 1);
        }

        var (min, max) = (Math.Floor(points.Min(p => p.X)), Math.Ceiling(points.Max(p => p.X)));
        return min < max ? (min, max) : (min - 1, max + 1);
    }

    /// <summary>[0, 1] when every y lies there; otherwise the data's range padded by 5% each end (half a unit, or 5% of |y|, for a single value).</summary>
    private static (double Min, double Max) YAxis((double X, double Y)[] points)
    {
        if (points.Length == 0 || points.All(p => p.Y is >= 0 and <= 1))
        {
            return (0, 1);
        }

        var (min, max) = (points.Min(p => p.Y), points.Max(p => p.Y));
        var pad = min < max ? ((max / 2) - (min / 2)) / 10 : Math.Max(0.5, Math.Abs(min) / 20);
        return (Math.Max(min - pad, double.MinValue), Math.Min(max + pad, double.MaxValue));
    }

    /// <summary>(v - min) / (max - min), computed on halves so that no finite arguments overflow.</summary>
    private static double Fraction(double v, double min, double max) => ((v / 2) - (min / 2)) / ((max / 2) - (min / 2));

    private static int Round(double pixel) => (int)Math.Round(pixel, MidpointRounding.AwayFromZero);

    /// <summary>About five ticks at multiples of 1, 2, 2.5 or 5 times a power of ten.</summary>
    private static (List<double> Ticks, double Step) YTicks(double min, double max)
    {
        var raw = ((max / 2) - (min / 2)) / 2.5;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = (raw / magnitude) switch
        {
            < 1.5 => 1,
            < 2.25 => 2,
            < 3.5 => 2.5,
            < 7.5 => 5,
            _ => 10,
        } * magnitude;
        var ticks = new List<double>();
        var first = Math.Ceiling(min / step);
        for (var k = 0; k <= 20; k++) // A bound, not a count: floating point cannot make this loop run away.
        {
            var t = ((first + k) * step) + 0.0; // + 0.0 turns -0 into 0.
            if (t > max)
            {
                break;
            }

            if (t >= min && (ticks.Count == 0 || t > ticks[^1]))
            {
                ticks.Add(Math.Abs(t) < step * 1e-9 ? 0 : t);
            }
        }

        return (ticks, step);
    }

    private static string YLabel(double tick, double step, double min, double max)
    {
        var decimals = Math.Max(0, -(int)Math.Floor(Math.Log10(step) + 1e-9));
        if (Math.Abs((step / Math.Pow(10, -decimals)) - Math.Round(step / Math.Pow(10, -decimals))) > 1e-6)
        {
            decimals++; // A step of 2.5 × 10^k needs one more digit.
        }

        return decimals <= 6 && Math.Max(Math.Abs(min), Math.Abs(max)) < 1e7
            ? tick.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)
            : tick.ToString("0.###E+0", CultureInfo.InvariantCulture);
    }

    /// <summary>Whole-number ticks at multiples of 1, 2 or 5 times a power of ten, at most eleven of them.</summary>
    private static IEnumerable<double> XTicks(double min, double max)
    {
        var step = 1.0;
        for (var k = 1; (max - min) / step > 10; k++)
        {
            step = (k % 3) switch { 0 => 1.0, 1 => 2.0, _ => 5.0 } * Math.Pow(10, k / 3);
        }

        for (var t = Math.Ceiling(min / step) * step; t <= max; t += step)
        {
            yield return t + 0.0;
        }
    }

    private static void Legend(Raster image, IReadOnlyList<LineSeries> series)
    {
        var top = Plot.Top;
        var rows = (Height - 10 - top) / LegendRowHeight;
        var shown = series.Count <= rows ? series.Count : rows - 1;
        for (var i = 0; i < shown; i++)
        {
            var (row, colour) = (top + (i * LegendRowHeight), ColourOf(i));
            image.Line(LegendLeft, row + 3, LegendLeft + 20, row + 3, colour, LineWidth);
            image.Fill(LegendLeft + 8, row + 1, LegendLeft + 8 + MarkerSize, row + 1 + MarkerSize, colour);
            var name = series[i].Name.Length <= LegendMaxChars ? series[i].Name : series[i].Name[..(LegendMaxChars - 2)] + "..";
            image.Text(LegendTextLeft, row, name, Ink);
        }

        if (shown < series.Count)
        {
            image.Text(LegendTextLeft, top + (shown * LegendRowHeight), $"+{series.Count - shown} more", Ink);
        }
    }
}
