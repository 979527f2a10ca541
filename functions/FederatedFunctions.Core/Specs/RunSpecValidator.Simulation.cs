using System.Globalization;

namespace FederatedFunctions.Core.Specs;

/// <summary>The rules of a run spec's <c>simulation</c> section.</summary>
public static partial class RunSpecValidator
{
    /// <summary>Largest accepted <see cref="SimulationSpec.Alpha"/>: beyond it a Dirichlet split is IID in all but name.</summary>
    public const double MaxSimulationAlpha = 1000;

    /// <summary>
    /// A simulation partitions one host silo's data into virtual silos, eyes-on: the host is the one listed silo, and the
    /// features that need real data owners (eyes-off, secure aggregation, cross-site evaluation) are refused with the reason.
    /// </summary>
    private static void ValidateSimulation(RunSpec spec, SpecLimits limits, Reporter report)
    {
        if (spec.Simulation is not { } simulation)
        {
            return;
        }

        const string at = "$.simulation";
        report.Range(simulation.VirtualSilos, 2, limits.MaxVirtualSilos, at + ".virtualSilos", nameof(SpecLimits.MaxVirtualSilos));
        report.Range(simulation.PerStep, 1, limits.MaxVirtualSilosPerStep, at + ".perStep", nameof(SpecLimits.MaxVirtualSilosPerStep));
        if (report.Required(simulation.Split, at + ".split"))
        {
            report.Enum(simulation.Split, SimulationSplits.All, at + ".split");
        }

        if (simulation.Split == SimulationSplits.Dirichlet)
        {
            if (simulation.Alpha is not { } alpha)
            {
                report.Add(at + ".alpha", "required", "simulation.alpha is required with the dirichlet split: the concentration of each class's proportions (0.1 is strongly skewed, 100 nearly IID).");
            }
            else if (!double.IsFinite(alpha) || alpha <= 0 || alpha > MaxSimulationAlpha)
            {
                report.Add(at + ".alpha", "range", $"simulation.alpha must be more than 0 and at most {MaxSimulationAlpha.ToString(CultureInfo.InvariantCulture)}; got {simulation.Alpha.Value.ToString(CultureInfo.InvariantCulture)}.");
            }
        }
        else if (simulation.Alpha is not null)
        {
            report.Add(at + ".alpha", "unused", $"simulation.alpha applies to the dirichlet split only; this split is {SpecPath.Quote(simulation.Split)}.");
        }

        if (spec.Silos is { Count: not 1 } silos)
        {
            report.Add("$.silos", "count", $"A simulation lists exactly one silo, the host whose data its virtual silos partition; got {silos.Count}.");
        }

        if (spec.Participation is { } participation && (participation.SampleCount is null or > 0) && (participation.SampleFraction is null or (> 0 and <= 1))
            && simulation.VirtualSilos >= 2 && simulation.VirtualSilos <= limits.MaxVirtualSilos
            && Strategies.ParticipationPolicy.SampleSize(participation, simulation.VirtualSilos) is var sampled && sampled > limits.MaxVirtualSilosPerRound)
        {
            report.Add("$.participation", "range", $"A simulation samples at most {limits.MaxVirtualSilosPerRound} virtual silos per round (limit {nameof(SpecLimits.MaxVirtualSilosPerRound)}); this participation samples {sampled} of {simulation.VirtualSilos}: set participation.sampleCount or sampleFraction.");
        }

        if (spec.Privacy is { } privacy)
        {
            if (privacy.Mode == PrivacyModes.EyesOff)
            {
                report.Add("$.privacy.mode", "conflict", "A simulation is eyes-on: its virtual silos are parts of one host's data, and nothing about them is private from that host.");
            }

            if (privacy.SecureAggregation is not null)
            {
                report.Add("$.privacy.secureAggregation", "conflict", "Secure aggregation hides each data owner's update from the aggregator; a simulation's virtual silos have one owner, the host, which trains them all.");
            }
        }

        if (spec.Evaluation is { CrossSite: true })
        {
            report.Add("$.evaluation.crossSite", "conflict", "A simulation evaluates the global model on the host's whole test split; cross-site evaluation of virtual silos is not built.");
        }
    }
}
