using System.Diagnostics;
using System.Globalization;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Telemetry;
using FederatedFunctions.Workflow.Tests.Orchestration;
using Microsoft.DurableTask.Client;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using static FederatedFunctions.Workflow.Telemetry.FederatedTelemetry;

namespace FederatedFunctions.Workflow.Tests.Telemetry;

/// <summary>
/// The workflow's spans and metrics, collected with the OpenTelemetry in-memory exporter from runs on the durable test host:
/// one trace per run, with the run, its rounds and their silo steps and aggregations; and, eyes-off, no per-silo value.
/// </summary>
public sealed class TelemetryTests
{
    // Per-silo row counts (train, test), five digits so that no duration or byte count matches one by chance. Each is a
    // marker: eyes-off, none may appear in any span or metric, nor may their totals.
    private static readonly (int Train, int Test)[] Sizes = [(13731, 10301), (14093, 10357), (14471, 10391), (14813, 10433)];

    private static readonly IReadOnlyList<SiloDataset> Data = SyntheticData
        .Generate(new SyntheticOptions(Silos: 4, Classes: 4, Features: 8, TrainPerSilo: Sizes.Max(s => s.Train), TestPerSilo: Sizes.Max(s => s.Test), DirichletAlpha: null, Seed: 5))
        .Select((d, i) => d with { Train = Head(d.Train, Sizes[i].Train), Test = Head(d.Test, Sizes[i].Test) })
        .ToArray();

    private static readonly string[] Markers =
    [
        .. Sizes.SelectMany(s => new[] { s.Train, s.Test }).Select(n => n.ToString(CultureInfo.InvariantCulture)),
        Sizes.Sum(s => s.Train).ToString(CultureInfo.InvariantCulture),
        Sizes.Sum(s => s.Test).ToString(CultureInfo.InvariantCulture),
    ];

    private static TabularData Head(TabularData table, int rows) =>
        table with { Features = table.Features[..(rows * table.Columns)], Labels = table.Labels[..rows], Rows = rows };

    private static RunSpec Spec(string runId, string mode) => TrainingOrchestratorTests.Spec(runId, rounds: 2) with
    {
        Silos = Data.Select(d => d.SiloId).ToArray(),
        Privacy = new PrivacySpec { Mode = mode, MinAggregateSilos = 2 },
    };

    /// <summary>Runs a spec with tracing and metrics collected; returns the run's spans (its trace) and the metric points tagged with its id.</summary>
    private static async Task<(IReadOnlyList<Activity> Spans, IReadOnlyList<(string Metric, IReadOnlyList<KeyValuePair<string, object?>> Tags, double Value)> Points, OrchestrationMetadata Meta)> RunTracedAsync(RunSpec spec, Action<TrainingOrchestratorTests.Harness>? arrange = null)
    {
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(Name).AddInMemoryExporter(spans).Build();
        using var meters = Sdk.CreateMeterProviderBuilder().AddMeter(Name).AddInMemoryExporter(metrics).Build();
        await using var h = await new TrainingOrchestratorTests.Harness(Data).StartAsync();
        arrange?.Invoke(h);
        var meta = await h.RunAsync(spec);
        tracing.ForceFlush();
        meters.ForceFlush();

        var trace = TraceId(spec.RunId!);
        var points = new List<(string, IReadOnlyList<KeyValuePair<string, object?>>, double)>();
        foreach (var metric in metrics.ToArray())
        {
            foreach (var point in metric.MetricPoints)
            {
                var tags = new List<KeyValuePair<string, object?>>();
                foreach (var tag in point.Tags)
                {
                    tags.Add(tag);
                }

                if (tags.Any(t => t.Key == Tags.RunId && Equals(t.Value, spec.RunId)))
                {
                    var value = metric.MetricType is MetricType.Histogram ? point.GetHistogramCount() : metric.MetricType is MetricType.LongSum ? point.GetSumLong() : point.GetSumDouble();
                    points.Add((metric.Name, tags, value));
                }
            }
        }

        lock (spans)
        {
            return (spans.Where(s => s.TraceId == trace).ToArray(), points, meta);
        }
    }

    private static object? Tag(Activity span, string key) => span.TagObjects.FirstOrDefault(t => t.Key == key).Value;

    /// <summary>Every text a span or metric point carries: names, tag values, event names and tags, status descriptions.</summary>
    private static IEnumerable<string> Texts(IEnumerable<Activity> spans, IEnumerable<(string Metric, IReadOnlyList<KeyValuePair<string, object?>> Tags, double Value)> points)
    {
        static string Text(object? value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty;
        foreach (var s in spans)
        {
            yield return s.DisplayName;
            yield return s.StatusDescription ?? string.Empty;
            foreach (var t in s.TagObjects)
            {
                yield return $"{t.Key}={Text(t.Value)}";
            }

            foreach (var e in s.Events)
            {
                yield return e.Name;
                foreach (var t in e.Tags)
                {
                    yield return $"{t.Key}={Text(t.Value)}";
                }
            }
        }

        foreach (var p in points)
        {
            foreach (var t in p.Tags)
            {
                yield return $"{p.Metric}:{t.Key}={Text(t.Value)}";
            }
        }
    }

    private static string[] Leaks(IEnumerable<string> texts) =>
        texts.SelectMany(text => Markers.Where(m => text.Contains(m, StringComparison.Ordinal)).Select(m => $"{m} in '{text}'")).Distinct().ToArray();

    [Fact]
    public void TraceAndSpanIds_AreDerivedFromTheRunIdAlone()
    {
        Assert.Equal(TraceId("run-a"), TraceId("run-a"));
        Assert.NotEqual(TraceId("run-a"), TraceId("run-b"));
        Assert.Equal(RoundSpanId("run-a", 3), RoundSpanId("run-a", 3));
        Assert.Equal(4, new[] { RunSpanId("run-a"), RoundSpanId("run-a", 1), RoundSpanId("run-a", 2), RoundSpanId("run-b", 1) }.Distinct().Count());
    }

    [Fact]
    public async Task Run_EyesOn_EmitsOneTraceWithTheRunItsRoundsAndEverySiloStepUnderItsRound()
    {
        var spec = Spec("otel-on", PrivacyModes.EyesOn);
        var (spans, points, meta) = await RunTracedAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var run = Assert.Single(spans, s => s.DisplayName == "fl.run");
        Assert.Equal((RunSpanId("otel-on"), default(ActivitySpanId)), (run.SpanId, run.ParentSpanId));
        Assert.Equal(("otel-on", Outcomes.Completed, 2, PrivacyModes.EyesOn), (Tag(run, Tags.RunId), Tag(run, Tags.Outcome), Tag(run, Tags.Rounds), Tag(run, Tags.PrivacyMode)));

        var rounds = spans.Where(s => s.DisplayName == "fl.round").OrderBy(s => Tag(s, Tags.Round)).ToArray();
        Assert.Equal([1, 2], rounds.Select(r => Tag(r, Tags.Round)));
        var silos = Data.Select(d => d.SiloId).Order().ToArray();
        foreach (var round in rounds)
        {
            var number = (int)Tag(round, Tags.Round)!;
            Assert.Equal((RoundSpanId("otel-on", number), run.SpanId), (round.SpanId, round.ParentSpanId));
            Assert.True(run.StartTimeUtc <= round.StartTimeUtc && round.StartTimeUtc + round.Duration <= run.StartTimeUtc + run.Duration, "the round lies within the run");
            Assert.Equal((4, 4, 0), (Tag(round, Tags.Sampled), Tag(round, Tags.Participants), Tag(round, Tags.Rejected)));
            Assert.Equal((long)Sizes.Sum(s => s.Train), Tag(round, Tags.TrainExamples));
            Assert.NotNull(Tag(round, Tags.EvalAccuracy));

            var children = spans.Where(s => s.ParentSpanId == round.SpanId).ToArray();
            Assert.Equal(silos, children.Where(c => c.DisplayName == "fl.silo.train").Select(c => (string)Tag(c, Tags.SiloId)!).Order());
            Assert.Equal(silos, children.Where(c => c.DisplayName == "fl.silo.evaluate").Select(c => (string)Tag(c, Tags.SiloId)!).Order());
            var aggregate = Assert.Single(children, c => c.DisplayName == "fl.aggregate");
            Assert.Equal((4, 4, 0), (Tag(aggregate, Tags.Updates), Tag(aggregate, Tags.Participants), Tag(aggregate, Tags.Rejected)));
            Assert.Equal(9, children.Length);
            Assert.All(children, c => Assert.Equal((number, Outcomes.Completed, "otel-on"), (Tag(c, Tags.Round), Tag(c, Tags.Outcome), Tag(c, Tags.RunId))));
        }

        // Eyes-on, each silo's own counts are on its spans: the scan the eyes-off test relies on finds them.
        foreach (var (silo, i) in Data.Select((d, i) => (d.SiloId, i)))
        {
            Assert.All(spans.Where(s => s.DisplayName == "fl.silo.train" && (string?)Tag(s, Tags.SiloId) == silo), s => Assert.Equal((long)Sizes[i].Train, Tag(s, Tags.Examples)));
            Assert.All(spans.Where(s => s.DisplayName == "fl.silo.evaluate" && (string?)Tag(s, Tags.SiloId) == silo), s => Assert.Equal((long)Sizes[i].Test, Tag(s, Tags.Examples)));
        }

        var found = Leaks(Texts(spans, points));
        Assert.All(Markers.Take(Sizes.Length * 2), m => Assert.Contains(found, f => f.StartsWith(m + " in ", StringComparison.Ordinal)));
        Assert.Equal(1 + 2 + (2 * 9), spans.Count);

        // Metrics: two rounds' durations, a latency per silo step, an aggregation throughput per round.
        Assert.Equal(2, points.Where(p => p.Metric == "fl.round.duration").Sum(p => p.Value));
        Assert.Equal(16, points.Where(p => p.Metric == "fl.silo.latency").Sum(p => p.Value));
        Assert.Equal(silos, points.Where(p => p.Metric == "fl.silo.latency").Select(p => (string)p.Tags.Single(t => t.Key == Tags.SiloId).Value!).Distinct().Order());
        Assert.Equal(2, points.Where(p => p.Metric == "fl.aggregation.throughput").Sum(p => p.Value));
    }

    [Fact]
    public async Task Run_EyesOff_SpansAndMetricsHoldIdsAndDurationsButNoPerSiloValue()
    {
        var spec = Spec("otel-off", PrivacyModes.EyesOff);
        var (spans, points, meta) = await RunTracedAsync(spec);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        // The same spans as eyes-on, so the scan below has something to scan.
        Assert.Single(spans, s => s.DisplayName == "fl.run");
        Assert.Equal(2, spans.Count(s => s.DisplayName == "fl.round"));
        Assert.Equal(8, spans.Count(s => s.DisplayName == "fl.silo.train" && Tag(s, Tags.SiloId) is string));
        Assert.Equal(8, spans.Count(s => s.DisplayName == "fl.silo.evaluate" && s.Duration > TimeSpan.Zero));
        Assert.All(spans, s => Assert.Equal(PrivacyModes.EyesOff, Tag(s, Tags.PrivacyMode)));
        Assert.Equal(16, points.Where(p => p.Metric == "fl.silo.latency").Sum(p => p.Value));

        Assert.Empty(Leaks(Texts(spans, points)));
        Assert.DoesNotContain(spans, s => s.TagObjects.Any(t => t.Key is Tags.Examples or Tags.Loss or Tags.Accuracy or Tags.TrainExamples));
        // What eyes-off shows of a round: its mean loss and accuracy over enough silos, as its manifest does.
        Assert.All(spans.Where(s => s.DisplayName == "fl.round"), r => Assert.NotNull(Tag(r, Tags.EvalAccuracy)));
    }

    [Fact]
    public async Task Run_SiloFailsUnderTolerate_TheRoundRecordsTheRejectionAndTheSilosFailedAttempts()
    {
        var spec = Spec("otel-reject", PrivacyModes.EyesOn) with { Retry = new RetrySpec { MaxAttempts = 1 } };
        var (spans, points, meta) = await RunTracedAsync(spec, h => h.Backend.Failing.Add(Data[1].SiloId));

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.All(spans.Where(s => s.DisplayName == "fl.round"), r =>
        {
            Assert.Equal((3, 1), (Tag(r, Tags.Participants), Tag(r, Tags.Rejected)));
            var rejected = Assert.Single(r.Events);
            Assert.Equal(("fl.rejected", Data[1].SiloId, "train-failed"), (rejected.Name, rejected.Tags.Single(t => t.Key == Tags.SiloId).Value, rejected.Tags.Single(t => t.Key == Tags.Reason).Value));
        });
        var failed = spans.Where(s => s.DisplayName == "fl.silo.train" && (string?)Tag(s, Tags.SiloId) == Data[1].SiloId).ToArray();
        Assert.Equal(2, failed.Length);
        Assert.All(failed, s => Assert.Equal((Outcomes.Failed, Core.Silos.SiloFailures.Failed, ActivityStatusCode.Error), (Tag(s, Tags.Outcome), Tag(s, Tags.Reason), s.Status)));
        var counted = Assert.Single(points, p => p.Metric == "fl.rejections");
        Assert.Equal((2.0, Data[1].SiloId, "train-failed"), (counted.Value, counted.Tags.Single(t => t.Key == Tags.SiloId).Value, counted.Tags.Single(t => t.Key == Tags.Reason).Value));
    }

    [Fact]
    public async Task Run_Failing_EmitsAFailedRunSpanWithItsReasonCode()
    {
        var spec = Spec("otel-fail", PrivacyModes.EyesOff) with
        {
            Retry = new RetrySpec { MaxAttempts = 1 },
            Participation = new ParticipationSpec { FailurePolicy = FailurePolicies.Strict },
        };
        var (spans, _, meta) = await RunTracedAsync(spec, h => h.Backend.Failing.Add(Data[1].SiloId));

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        var run = Assert.Single(spans, s => s.DisplayName == "fl.run");
        Assert.Equal((Outcomes.Failed, 0, "NoAcceptedUpdates", ActivityStatusCode.Error), (Tag(run, Tags.Outcome), Tag(run, Tags.Rounds), Tag(run, Tags.Reason), run.Status));
        Assert.Null(run.StatusDescription); // eyes-off: the reason code only, not the message
        Assert.DoesNotContain(spans, s => s.DisplayName == "fl.round");
    }
}
