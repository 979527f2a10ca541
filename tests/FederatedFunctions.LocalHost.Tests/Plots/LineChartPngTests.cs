using FederatedFunctions.LocalHost.Plots;

namespace FederatedFunctions.LocalHost.Tests.Plots;

public sealed class LineChartPngTests
{
    private const int White = 0xFFFFFF;

    private static readonly string[] Names = ["centralized", "silo-a alone", "fedavg", "fedprox", "fedadam"];

    /// <summary>Five parallel rising lines over rounds 1..5, y = 0.1 + 0.2·i + 0.025·(round - 1): they never cross, and every point lands on a whole pixel.</summary>
    private static LineSeries[] FiveSeries() =>
        [.. Names.Select((name, i) => new LineSeries(name, [.. Enumerable.Range(1, 5).Select(r => ((double)r, Y(i, r)))]))];

    private static double Y(int series, int round) => 0.1 + (0.2 * series) + (0.025 * (round - 1));

    // The plot's mapping over x in [1, 5] and y in [0, 1]: 520 usable columns (130 per round) and 360 rows (9 per 0.025).
    private static int Column(double x, double low = 1, double high = 5)
    {
        var (left, _, right, _) = LineChartPng.Plot;
        return left + LineChartPng.XInset + (int)Math.Round((right - left - (2 * LineChartPng.XInset)) * ((x - low) / (high - low)), MidpointRounding.AwayFromZero);
    }

    private static int Row(double y, double low = 0, double high = 1)
    {
        var (_, top, _, bottom) = LineChartPng.Plot;
        return bottom - (int)Math.Round((bottom - top) * ((y - low) / (high - low)), MidpointRounding.AwayFromZero);
    }

    private static int At((int Width, int Height, int[] Pixels) image, int x, int y) => image.Pixels[(y * image.Width) + x];

    [Fact]
    public void Draw_Png_HasTheChartSizeAndDecodesToTheRasterPixels()
    {
        var raster = LineChartPng.Draw("accuracy per round", "round", "accuracy", FiveSeries());

        var decoded = HistogramPngTests.Decode(raster.ToPng());

        Assert.Equal((LineChartPng.Width, LineChartPng.Height), (decoded.Width, decoded.Height));
        Assert.Equal((LineChartPng.Width, LineChartPng.Height), (raster.Width, raster.Height));
        for (var y = 0; y < raster.Height; y++)
        {
            for (var x = 0; x < raster.Width; x++)
            {
                Assert.Equal(raster[x, y], At(decoded, x, y));
            }
        }
    }

    [Fact]
    public void Draw_EachSeries_HasItsPaletteColourOnEveryPointAndBetweenThem()
    {
        var image = HistogramPngTests.Decode(LineChartPng.Draw("accuracy per round", "round", "accuracy", FiveSeries()).ToPng());

        for (var i = 0; i < Names.Length; i++)
        {
            var colour = LineChartPng.Palette[i];
            for (var r = 1; r <= 5; r++)
            {
                // The whole 5×5 marker, centred on the point.
                for (var dy = -2; dy <= 2; dy++)
                {
                    for (var dx = -2; dx <= 2; dx++)
                    {
                        Assert.Equal(colour, At(image, Column(r) + dx, Row(Y(i, r)) + dy));
                    }
                }
            }

            // Halfway between rounds 2 and 3 the line passes between the two points' rows.
            var mid = Column(2.5);
            var rows = Enumerable.Range(Row(Y(i, 3)), Row(Y(i, 2)) - Row(Y(i, 3)) + 1).Where(y => At(image, mid, y) == colour).ToArray();
            Assert.NotEmpty(rows);
            Assert.InRange(rows.Min(), Row(Y(i, 3)) + 3, Row(Y(i, 2)) - 3);
            Assert.InRange(rows.Max(), Row(Y(i, 3)) + 3, Row(Y(i, 2)) - 3);

            // Below the series, 15 rows down (halfway to the next line), nothing is drawn: the background or a grid line.
            Assert.Contains(At(image, mid, rows.Max() + 15), new[] { White, LineChartPng.GridColour });
        }
    }

    [Fact]
    public void Draw_Axes_HaveIntegerRoundTicksAndGridLinesAtTheYTicks()
    {
        var image = HistogramPngTests.Decode(LineChartPng.Draw("t", "round", "accuracy", FiveSeries()).ToPng());
        var (left, top, right, bottom) = LineChartPng.Plot;

        for (var r = 1; r <= 5; r++)
        {
            Assert.NotEqual(White, At(image, Column(r), bottom + 3));
            Assert.Equal(White, At(image, Column(r) + 3, bottom + 3));
        }

        // [0, 1] ticks every 0.2: grid rows at 0.2 .. 1.0, none halfway between.
        foreach (var t in new[] { 0.2, 0.4, 0.6, 0.8, 1.0 })
        {
            Assert.Equal(LineChartPng.GridColour, At(image, right - 2, Row(t)));
        }

        Assert.Equal(White, At(image, right - 2, Row(0.3)));
        Assert.NotEqual(White, At(image, left - 1, (top + bottom) / 2));
    }

    [Fact]
    public void Draw_Legend_ListsEverySeriesColourInOrder()
    {
        var image = HistogramPngTests.Decode(LineChartPng.Draw("t", "round", "accuracy", FiveSeries()).ToPng());
        var (_, top, right, _) = LineChartPng.Plot;

        var firstRows = Names.Select((_, i) =>
            Enumerable.Range(top, LineChartPng.Height - top)
                .Where(y => Enumerable.Range(right + 1, LineChartPng.Width - right - 1).Any(x => At(image, x, y) == LineChartPng.Palette[i]))
                .DefaultIfEmpty(-1)
                .First())
            .ToArray();

        Assert.DoesNotContain(-1, firstRows);
        Assert.Equal([.. firstRows.Order()], firstRows);
        Assert.Equal(firstRows.Length, firstRows.Distinct().Count());
    }

    [Fact]
    public void Draw_OnePointSeries_DrawsOnlyItsMarker()
    {
        var image = HistogramPngTests.Decode(LineChartPng.Draw("t", "round", "accuracy",
        [
            new LineSeries("line", [(1, 0.2), (5, 0.2)]),
            new LineSeries("dot", [(3, 0.5)]),
        ]).ToPng());
        var (left, top, right, bottom) = LineChartPng.Plot;
        var dot = LineChartPng.Palette[1];

        var pixels = (from y in Enumerable.Range(0, LineChartPng.Height)
                      from x in Enumerable.Range(left, right - left)
                      where At(image, x, y) == dot
                      select (x, y)).ToArray();

        Assert.Equal(LineChartPng.MarkerSize * LineChartPng.MarkerSize, pixels.Length);
        Assert.Contains((Column(3), Row(0.5)), pixels);
        Assert.All(pixels, p => Assert.True(Math.Abs(p.x - Column(3)) <= 2 && Math.Abs(p.y - Row(0.5)) <= 2));
    }

    [Fact]
    public void Draw_NonFiniteY_IsSkippedAndItsNeighboursAreJoined()
    {
        var image = HistogramPngTests.Decode(LineChartPng.Draw("t", "round", "accuracy",
            [new LineSeries("gap", [(1, 0.5), (2, double.NaN), (3, 0.5), (4, double.PositiveInfinity), (5, 0.5)])]).ToPng());
        var colour = LineChartPng.Palette[0];

        foreach (var x in new[] { 1.5, 2, 2.5, 3.5, 4, 4.5 })
        {
            Assert.Equal(colour, At(image, Column(x), Row(0.5)));
        }

        // No marker where the NaN was: two rows above the line is a marker's edge at rounds 1, 3, 5 only.
        Assert.Equal(colour, At(image, Column(3), Row(0.5) - 2));
        Assert.NotEqual(colour, At(image, Column(2), Row(0.5) - 2));
        Assert.NotEqual(colour, At(image, Column(4), Row(0.5) - 2));
    }

    [Fact]
    public void Draw_DataOutsideZeroToOne_GetsAPaddedRange()
    {
        // Loss from 4 down to 2: the axis is [1.9, 4.1].
        var image = HistogramPngTests.Decode(LineChartPng.Draw("loss", "epoch", "loss",
            [new LineSeries("train", [(0, 4.0), (10, 2.0)])]).ToPng());
        var colour = LineChartPng.Palette[0];

        Assert.Equal(colour, At(image, Column(0, 0, 10), Row(4.0, 1.9, 4.1)));
        Assert.Equal(colour, At(image, Column(10, 0, 10), Row(2.0, 1.9, 4.1)));
        Assert.Equal(colour, At(image, Column(5, 0, 10), Row(3.0, 1.9, 4.1)));
    }

    [Fact]
    public void Draw_FixedYRange_CutsLinesAtThePlotEdgeAndDropsMarkersOutsideIt()
    {
        var image = HistogramPngTests.Decode(LineChartPng.Draw("t", "round", "accuracy",
            [new LineSeries("s", [(1, 0.91), (2, 0.95), (3, 0.99), (4, 0.5), (5, 0.92)])], yRange: (0.9, 1.0)).ToPng());
        var (left, top, right, bottom) = LineChartPng.Plot;
        var colour = LineChartPng.Palette[0];

        Assert.Equal(colour, At(image, Column(2), Row(0.95, 0.9, 1.0)));
        Assert.Equal(colour, At(image, Column(5), Row(0.92, 0.9, 1.0)));
        // The drop to 0.5 leaves through the x axis (near x = 3.18 and 4.95): nothing of the series below it, no marker
        // for round 4, and none of its colour on the axis in between.
        var below = from y in Enumerable.Range(bottom + 2, LineChartPng.Height - bottom - 2)
                    from x in Enumerable.Range(left, right - left)
                    where At(image, x, y) == colour
                    select (x, y);
        Assert.Empty(below);
        Assert.Contains(colour, Enumerable.Range(Column(3.1), Column(3.3) - Column(3.1)).Select(x => At(image, x, bottom)));
        Assert.DoesNotContain(colour, Enumerable.Range(Column(3.3), Column(4.9) - Column(3.3)).Select(x => At(image, x, bottom)));
    }

    [Fact]
    public void Draw_SameInput_GivesTheSameBytes_AndAnotherPointChangesThem()
    {
        var first = LineChartPng.Draw("accuracy per round", "round", "accuracy", FiveSeries()).ToPng();
        var second = LineChartPng.Draw("accuracy per round", "round", "accuracy", FiveSeries()).ToPng();
        var changed = FiveSeries();
        changed[2] = changed[2] with { Points = [.. changed[2].Points.Take(4), (5.0, 0.3)] };

        Assert.Equal(first, second);
        Assert.NotEqual(first, LineChartPng.Draw("accuracy per round", "round", "accuracy", changed).ToPng());
    }

    [Fact]
    public void Draw_BadInput_IsRefused()
    {
        LineSeries Ok(string name) => new(name, [(1, 0.5)]);

        Assert.Throws<ArgumentNullException>(() => LineChartPng.Draw("t", "x", "y", null!));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", []));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [Ok("a"), null!]));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [Ok(" ")]));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [Ok(null!)]));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [Ok("fedavg"), Ok("FedAvg")]));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [new LineSeries("a", null!)]));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [new LineSeries("a", [(double.NaN, 0.5)])]));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [Ok("a")], yRange: (1, 0)));
        Assert.Throws<ArgumentException>(() => LineChartPng.Draw("t", "x", "y", [Ok("a")], yRange: (0, double.PositiveInfinity)));
    }

    [Fact]
    public void Palette_HasAtLeastEightDistinctColours_AndCycles()
    {
        Assert.InRange(LineChartPng.Palette.Count, 8, int.MaxValue);
        Assert.Equal(LineChartPng.Palette.Count, LineChartPng.Palette.Distinct().Count());
        Assert.DoesNotContain(LineChartPng.GridColour, LineChartPng.Palette);
        Assert.Equal(LineChartPng.Palette[0], LineChartPng.ColourOf(LineChartPng.Palette.Count));
        Assert.Equal(LineChartPng.Palette[3], LineChartPng.ColourOf((2 * LineChartPng.Palette.Count) + 3));
    }

    [Fact]
    public void RasterLine_SegmentsAndFarOffEnds_CoverTheirPixelsOnly()
    {
        var raster = new Raster(10, 10);
        raster.Line(0, 0, 9, 9, 0x000000);
        raster.Line(9, 7, 0, 7, 0xFF0000, width: 2);
        raster.Line(int.MinValue / 2, 4, int.MaxValue / 2, 4, 0x00FF00);

        // The diagonal, bar where the later lines cross it; a 2-pixel line covers its row and the one below.
        Assert.All(new[] { 0, 1, 2, 3, 5, 6, 9 }, i => Assert.Equal(0x000000, raster[i, i]));
        Assert.Equal(White, raster[1, 0]);
        Assert.All(Enumerable.Range(0, 10), x => Assert.Equal(0xFF0000, raster[x, 7]));
        Assert.All(Enumerable.Range(0, 10), x => Assert.Equal(0xFF0000, raster[x, 8]));
        Assert.All(Enumerable.Range(0, 10).Where(x => x != 6), x => Assert.Equal(White, raster[x, 6]));
        Assert.All(Enumerable.Range(0, 10), x => Assert.Equal(0x00FF00, raster[x, 4]));
        Assert.Equal(White, raster[5, 3]);
    }
}
