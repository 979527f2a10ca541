using System.Globalization;
using System.Text;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using FederatedFunctions.Workflow.Services;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>Runs a federated analysis on a local host and prints its result as a table.</summary>
public sealed class AnalysisRunner(LocalDurableHost host)
{
    /// <summary>The checkpoint container analyses write to.</summary>
    public const string Container = AnalysisState.DefaultContainer;

    /// <summary>Schedules the analysis, waits for it, and reads its result back.</summary>
    /// <exception cref="RunFailedException">The analysis did not complete.</exception>
    /// <exception cref="InvalidOperationException">An analysis with that id already has a result or is running, or the id is a training run's: ids are not reused.</exception>
    /// <exception cref="ArgumentException">The spec is invalid (the same rules as a parsed spec's, for a spec built in code).</exception>
    public async Task<AnalysisResult> RunAsync(AnalysisSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        AnalysisSpecValidator.EnsureValid(spec);
        var id = spec.AnalysisId!;
        var store = host.Services.GetRequiredService<Workflow.Abstractions.ICheckpointStore>();
        if (await AnalysisService.ReadResultAsync(store, Container, id, cancellationToken).ConfigureAwait(false) is not null)
        {
            throw new InvalidOperationException($"Analysis '{id}' already has a result in container '{Container}'; analysis ids are not reused (read it with 'fl analysis {id}', or choose another analysisId).");
        }

        // The API's other refusals: an id that is running, or a training run's.
        if (await host.Services.GetRequiredService<Api.AnalysesApi>().RefuseTakenAsync(host.Client, id, Container, cancellationToken).ConfigureAwait(false) is { Body: Api.ProblemDocument problem })
        {
            throw new InvalidOperationException($"{problem.Title} {problem.Detail}");
        }

        await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AnalysisOrchestrator), new AnalysisState(id, spec, Container), new StartOrchestrationOptions(id), cancellationToken).ConfigureAwait(false);
        var meta = await host.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        if (meta.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            throw new RunFailedException(id, meta.RuntimeStatus.ToString().ToLowerInvariant(), Api.RunFailures.Message(meta) ?? "no details");
        }

        return await AnalysisService.ReadResultAsync(store, Container, id, cancellationToken).ConfigureAwait(false)
            ?? throw new RunFailedException(id, "completed", "its result is missing from the checkpoint container");
    }

    /// <summary>The result as a readable table: one line per column and statistic, then groups and the covariance.</summary>
    public static string Format(AnalysisResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Analysis {result.AnalysisId}: {result.Silos.Count} silos ({string.Join(", ", result.Silos)}), {result.Privacy}, cells under {result.MinCount} rows suppressed, {Number(result.Rows)} rows");
        if (result.DifferentialPrivacy is { } dp)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"differential privacy: {dp.Mechanism}, epsilon {dp.Epsilon:0.######}{(dp.Delta is { } delta ? $", delta {delta:g3}" : string.Empty)} charged to budget '{dp.Budget}', split over {dp.Queries.Count} queries; noise standard deviation per query: {string.Join(", ", dp.Queries.Select(q => $"{q.Name} {q.StandardDeviation:g4}"))}");
        }

        Features(text, result.Results, "");
        foreach (var (group, g) in result.Groups ?? new Dictionary<string, GroupResult>())
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"group {group}: {(g.Rows is { } rows ? rows.ToString(CultureInfo.InvariantCulture) + " rows" : "suppressed (fewer rows than the minimum)")}");
            Features(text, g.Results, "  ");
        }

        if (result.Covariance is { } cov)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"correlation over {cov.Rows} complete rows:");
            text.AppendLine("  " + string.Concat(cov.Columns.Select(c => $"{c,12}")));
            for (var i = 0; i < cov.Columns.Count; i++)
            {
                var row = string.Concat(cov.Correlation[i].Select(v => $"{Number(v),12}"));
                text.AppendLine(CultureInfo.InvariantCulture, $"  {cov.Columns[i],-10}{row}");
            }
        }

        return text.ToString();
    }

    private static void Features(StringBuilder text, IReadOnlyDictionary<string, FeatureResult> features, string indent)
    {
        foreach (var (column, f) in features)
        {
            if (f.Suppressed == true)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}{column}: suppressed (fewer values than the minimum)");
                continue;
            }

            var parts = new List<string>();
            void Add(string name, object? value)
            {
                if (value is not null)
                {
                    parts.Add($"{name} {Number(value)}");
                }
            }

            Add("count", f.Count);
            Add("missing", f.Missing);
            Add("sum", f.Sum);
            Add("mean", f.Mean);
            Add("variance", f.Variance);
            Add("stddev", f.Stddev);
            Add("min", f.Min);
            Add("max", f.Max);
            text.AppendLine(CultureInfo.InvariantCulture, $"{indent}{column}: {string.Join(", ", parts)}");
            if (f.Quantiles is { } quantiles)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}  quantiles: {string.Join(", ", quantiles.Select(q => $"p{q.Key} {(q.Value.Value is { } v ? Number(v) : $"in [{Number(q.Value.Low)}, {Number(q.Value.High)}]")}"))}");
            }

            if (f.Histogram is { } h)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}  histogram: {string.Join(" ", h.Counts.Select((c, i) => $"[{Number(h.Edges[i])},{Number(h.Edges[i + 1])}{(i == h.Counts.Length - 1 ? "]" : ")")}:{(c is null ? "<min" : c.Value.ToString(CultureInfo.InvariantCulture))}"))}");
            }

            if (f.ValueCounts is { } counts)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{indent}  values: {string.Join(", ", counts.Select(c => $"{c.Key} {(c.Value is null ? "<min" : c.Value.Value.ToString(CultureInfo.InvariantCulture))}"))}");
            }
        }
    }

    private static string Number(object? value) => value switch
    {
        null => "—",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}
