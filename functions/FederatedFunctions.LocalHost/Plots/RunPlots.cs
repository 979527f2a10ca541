using FederatedFunctions.Core.Runs;

namespace FederatedFunctions.LocalHost.Plots;

/// <summary>
/// The charts of a training run (<c>fl plot</c>), drawn from its round manifests only: evaluation accuracy, train and
/// evaluation loss, participation, and ε when the run has differential privacy. Each is a <see cref="LineChartPng"/> over
/// the committed rounds; a round without a value (not evaluated) has no point.
/// </summary>
public static class RunPlots
{
    /// <summary>One chart: the file it is written to, and what <see cref="LineChartPng.Draw"/> draws.</summary>
    /// <param name="File">File name, e.g. <c>accuracy.png</c>.</param>
    /// <param name="Title">Title.</param>
    /// <param name="YLabel">What y measures.</param>
    /// <param name="Series">The lines.</param>
    /// <param name="YRange">A fixed y range, or null for the data's.</param>
    public sealed record Chart(string File, string Title, string YLabel, IReadOnlyList<LineSeries> Series, (double Min, double Max)? YRange)
    {
        /// <summary>The chart as PNG bytes.</summary>
        public byte[] Png() => LineChartPng.Draw(Title, "round", YLabel, Series, YRange).ToPng();
    }

    /// <summary>The charts of run <paramref name="runId"/> from its manifests (round 0, the initial model, is left out).</summary>
    /// <exception cref="ArgumentException">No committed round after round 0.</exception>
    public static IReadOnlyList<Chart> Charts(string runId, IReadOnlyList<RoundManifest> manifests)
    {
        ArgumentNullException.ThrowIfNull(manifests);
        var rounds = manifests.Where(m => m.Round > 0).OrderBy(m => m.Round).ToArray();
        if (rounds.Length == 0)
        {
            throw new ArgumentException($"Run '{runId}' has no committed round to plot yet.", nameof(manifests));
        }

        LineSeries Line(string name, Func<RoundManifest, double?> value) => new(name, rounds.Select(m => ((double)m.Round, value(m) ?? double.NaN)).ToArray());
        var charts = new List<Chart>
        {
            new("accuracy.png", $"{runId}: accuracy per round", "accuracy", [Line("evaluation accuracy", m => m.Metrics.EvalAccuracy)], (0, 1)),
            new("loss.png", $"{runId}: loss per round", "loss", [Line("train loss", m => m.Metrics.TrainLoss), Line("evaluation loss", m => m.Metrics.EvalLoss)], null),
            new("participation.png", $"{runId}: silos per round", "silos", [
                Line("sampled", m => m.Sampled.Count),
                Line("took part", m => m.Participants.Count),
                Line("left out", m => m.Rejected.Count),
                Line("evaluation failed", m => m.EvaluationFailures.Count)], null),
        };
        if (rounds.Any(m => m.Privacy?.Epsilon is not null))
        {
            charts.Add(new("epsilon.png", $"{runId}: privacy spent", "epsilon", [Line("epsilon", m => m.Privacy?.Epsilon)], null));
        }

        return charts;
    }
}
