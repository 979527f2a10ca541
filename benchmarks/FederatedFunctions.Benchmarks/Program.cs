// Aggregation benchmark: time, effective bandwidth and peak memory of the aggregation paths,
// against this machine's memory-copy bandwidth measured in the same run.
//
//   dotnet run -c Release --project benchmarks/FederatedFunctions.Benchmarks            (full table)
//   dotnet run -c Release --project benchmarks/FederatedFunctions.Benchmarks -- --quick (K ∈ {2, 8}, P = 1 M)
//
// Each (path, K, P) cell runs in a fresh child process, so its peak RSS (VmHWM) is its own.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;

var ci = CultureInfo.InvariantCulture;
if (args.Length >= 4 && args[0] == "--cell")
{
    var result = RunCell(args[1], int.Parse(args[2], ci), int.Parse(args[3], ci));
    Console.WriteLine(JsonSerializer.Serialize(result));
    return 0;
}

var quick = args.Contains("--quick");
// K = 1,000 shows whether memory stays flat with many silos; the fused kernel, which holds every update by definition
// (4 GB and 40 GB there), is left out of it.
int[] ks = quick ? [2, 8] : [2, 8, 32, 1000];
int[] ps = quick ? [1_000_000] : [1_000_000, 10_000_000];
var rows = new List<Cell>();
foreach (var p in ps)
{
    foreach (var k in ks)
    {
        foreach (var path in new[] { "fused", "streaming", "windowed", "streamed" }.Where(path => path != "fused" || k <= 32))
        {
            var cell = RunChild(path, k, p);
            rows.Add(cell);
            Console.Error.WriteLine($"{path,-9} K={k,2} P={p,10}: {cell.Milliseconds,8:0.0} ms  {cell.GBps,6:0.0} GB/s  bound {cell.BoundMilliseconds,6:0.0} ms  ({cell.Milliseconds / cell.BoundMilliseconds:0.00}x)  peak {cell.PeakMiB,7:0} MiB");
        }
    }
}

Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {RuntimeInformation.OSDescription}");
Console.WriteLine();
Console.WriteLine("| path | K | P (float32) | time (ms) | effective GB/s | copy GB/s | read-once/write-once bound (ms) | time / bound | adds alone (ms) | adds / bound | peak RSS (MiB) |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
foreach (var r in rows)
{
    var adds = r.AddsMilliseconds is { } a ? string.Create(ci, $"{a:0.0} | {a / r.BoundMilliseconds:0.00}") : "— | —";
    Console.WriteLine(string.Create(ci, $"| {r.Path} | {r.K} | {r.P:N0} | {r.Milliseconds:0.0} | {r.GBps:0.0} | {r.CopyGBps:0.0} | {r.BoundMilliseconds:0.0} | {r.Milliseconds / r.BoundMilliseconds:0.00} | {adds} | {r.PeakMiB:0} |"));
}

return 0;

static Cell RunChild(string path, int k, int p)
{
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
    {
        psi.ArgumentList.Add(typeof(Cell).Assembly.Location);
    }

    foreach (var a in new[] { "--cell", path, k.ToString(CultureInfo.InvariantCulture), p.ToString(CultureInfo.InvariantCulture) })
    {
        psi.ArgumentList.Add(a);
    }

    using var child = Process.Start(psi)!;
    var text = child.StandardOutput.ReadToEnd();
    child.WaitForExit();
    if (child.ExitCode != 0)
    {
        throw new InvalidOperationException($"cell {path} {k} {p} failed with {child.ExitCode}");
    }

    return JsonSerializer.Deserialize<Cell>(text.Trim().Split('\n')[^1])!;
}

static Cell RunCell(string path, int k, int p)
{
    var copyGBps = MeasureCopyBandwidth(p);
    var inputBytes = (double)p * sizeof(float);

    // Read every input once and write the result once: the floor for any weighted sum.
    var boundMs = (k + 1) * inputBytes / (copyGBps * 1e9) * 1e3;
    var weights = Enumerable.Range(0, k).Select(i => (float)(i + 1) / (k * (k + 1) / 2)).ToArray();
    double ms;
    double? addsMs = null;
    if (path == "fused")
    {
        // All K updates in memory: one pass, result chunk kept in cache.
        var inputs = Enumerable.Range(0, k).Select(i => (ReadOnlyMemory<float>)Fill(new float[p], i)).ToArray();
        var destination = new float[p];
        ms = Median(5, () => FusedAggregation.WeightedSumInto(destination, inputs, weights));
    }
    else if (path == "streamed")
    {
        // The aggregation activity's path for large models: windows of up to eight updates read as streams, a piece of each
        // at a time (the next piece reading while this one is added), one pass over the sum per window. The streams read
        // pre-filled buffers in memory, as if each were a download; memory holds two pieces per update.
        var template = Template(p);
        var files = Enumerable.Range(0, 2).Select(b => Safetensors.Serialize([template[0] with { Data = MemoryMarshal.AsBytes(Fill(new float[p], b + 1).AsSpan()).ToArray() }])).ToArray();
        var start = (int)Safetensors.DataStart(files[0], files[0].Length);
        var layout = Safetensors.ParseLayout(files[0].AsMemory(0, start), files[0].Length);
        (ms, addsMs) = TimeAggregations(template, aggregator =>
        {
            for (var i = 0; i < k; i += StreamedWindow)
            {
                var window = Enumerable.Range(i, Math.Min(StreamedWindow, k - i))
                    .Select(u => new StreamedUpdate(new MemoryStream(files[u % 2], start, files[u % 2].Length - start, writable: false, publiclyVisible: true), weights[u]))
                    .ToArray();
                if (!aggregator.TryAddStreamedAsync(layout, window, _ => ValueTask.FromResult(true), last: i + StreamedWindow >= k, CancellationToken.None).GetAwaiter().GetResult())
                {
                    throw new InvalidOperationException("a benchmark window was refused");
                }
            }
        });
    }
    else
    {
        // The aggregation activity's path: the updates in memory (as if downloaded), added into one accumulator, one at a
        // time ("streaming") or in windows of up to four with one pass over the sum each ("windowed", TryAddAll).
        var template = Template(p);
        // Pre-filled update buffers used in turn, as if each update were downloaded into one of them (two for one at a
        // time, the window's size for windows): memory stays flat in K, and random numbers stay out of the timed region.
        var window = path == "windowed" ? Math.Min(Window, k) : 1;
        var buffers = Enumerable.Range(0, Math.Max(2, window)).Select(b => MemoryMarshal.AsBytes(Fill(new float[p], b + 1).AsSpan()).ToArray()).ToArray();
        (ms, addsMs) = TimeAggregations(template, aggregator =>
        {
            if (window == 1)
            {
                for (var i = 0; i < k; i++)
                {
                    aggregator.Add([template[0] with { Data = buffers[i % 2] }], weights[i]);
                }

                return;
            }

            for (var i = 0; i < k; i += window)
            {
                var updates = Enumerable.Range(i, Math.Min(window, k - i))
                    .Select(u => new WeightedUpdate([template[0] with { Data = buffers[u - i] }], weights[u]))
                    .ToArray();
                if (aggregator.TryAddAll(updates).Any(c => !c.Accepted))
                {
                    throw new InvalidOperationException("a benchmark update was refused");
                }
            }
        });
    }

    return new Cell(path, k, p, ms, (k + 1) * inputBytes / (ms / 1e3) / 1e9, copyGBps, boundMs, PeakRssMiB(), addsMs);
}

// One float32 tensor of p parameters, the template of the aggregator's paths.
static NamedTensor[] Template(int p)
{
    TorchRuntime.EnsureInitialized();
    return [new NamedTensor("w", TensorDType.F32, [p], new byte[p * sizeof(float)])];
}

// Medians of eight aggregations by `add` into a new accumulator, the first one a warm-up (as in Median): the whole time with
// the mean (`MeanInPlace`, divided over the sum as the aggregation activity takes it), and the adds alone.
static (double Milliseconds, double AddsMilliseconds) TimeAggregations(NamedTensor[] template, Action<StreamingAggregator> add)
{
    var totals = new double[8];
    var adds = new double[8];
    for (var rep = 0; rep < totals.Length; rep++)
    {
        var clock = Stopwatch.StartNew();
        using var aggregator = new StreamingAggregator(template);
        add(aggregator);
        adds[rep] = clock.Elapsed.TotalMilliseconds;
        _ = aggregator.MeanInPlace();
        totals[rep] = clock.Elapsed.TotalMilliseconds;
    }

    return (MedianOf(totals[1..]), MedianOf(adds[1..]));
}

static float[] Fill(float[] a, int seed)
{
    var rng = new Random(seed);
    for (var i = 0; i < a.Length; i++)
    {
        a[i] = (float)rng.NextDouble();
    }

    return a;
}

static double MeasureCopyBandwidth(int p)
{
    var src = new float[Math.Max(p, 4_000_000)];
    var dst = new float[src.Length];
    Fill(src, 99);
    var ms = Median(7, () => src.AsSpan().CopyTo(dst));

    // Read plus write bytes per second.
    return 2.0 * src.Length * sizeof(float) / (ms / 1e3) / 1e9;
}

static double Median(int reps, Action action)
{
    action();
    var times = new double[reps];
    for (var i = 0; i < reps; i++)
    {
        var sw = Stopwatch.StartNew();
        action();
        times[i] = sw.Elapsed.TotalMilliseconds;
    }

    return MedianOf(times);
}

static double MedianOf(double[] times)
{
    var sorted = times.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

static double PeakRssMiB()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
        {
            return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
    }

    return double.NaN;
}

internal static partial class Program
{
    /// <summary>Updates added together by the "windowed" path.</summary>
    private const int Window = 4;

    /// <summary>Updates read as streams together by the "streamed" path, as the aggregation activity reads them (<c>AggregationService.StreamedWindow</c>).</summary>
    private const int StreamedWindow = 8;
}

internal sealed record Cell(string Path, int K, int P, double Milliseconds, double GBps, double CopyGBps, double BoundMilliseconds, double PeakMiB, double? AddsMilliseconds);
