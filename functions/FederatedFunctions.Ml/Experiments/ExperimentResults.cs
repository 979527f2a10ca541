using System.Globalization;
using System.Text;

namespace FederatedFunctions.Ml.Experiments;

/// <summary>The kinds of arm.</summary>
public static class ArmKinds
{
    /// <summary>Trained centrally on the union of the silos' data.</summary>
    public const string Centralized = "centralized";

    /// <summary>One silo alone.</summary>
    public const string Local = "local";

    /// <summary>Federated, through the durable orchestrator.</summary>
    public const string Federated = "federated";
}

/// <summary>One evaluated round of an arm, scored on the union of the silos' test splits.</summary>
public sealed record ArmRound(int Round, double Accuracy, double Loss);

/// <summary>What one arm of an experiment gave.</summary>
/// <param name="Name">Its label in the table and the plots.</param>
/// <param name="Kind">One of <see cref="ArmKinds"/>.</param>
/// <param name="Rounds">Its evaluated rounds, in order.</param>
/// <param name="Seconds">Wall time of the arm.</param>
/// <param name="RunId">The federated run, whose checkpoints and manifests hold the details.</param>
/// <param name="Failure">Why the arm has no result (its run failed); null when it ran.</param>
public sealed record ArmResult(string Name, string Kind, IReadOnlyList<ArmRound> Rounds, double Seconds, string? RunId = null, string? Failure = null)
{
    /// <summary>Accuracy after the last round.</summary>
    public double FinalAccuracy => Rounds.Count == 0 ? double.NaN : Rounds[^1].Accuracy;

    /// <summary>Highest accuracy of any evaluated round.</summary>
    public double BestAccuracy => Rounds.Count == 0 ? double.NaN : Rounds.Max(r => r.Accuracy);

    /// <summary>Loss after the last round.</summary>
    public double FinalLoss => Rounds.Count == 0 ? double.NaN : Rounds[^1].Loss;

    /// <summary>The first evaluated round whose accuracy reaches <paramref name="target"/>, or null.</summary>
    public int? RoundsTo(double target) => Rounds.FirstOrDefault(r => r.Accuracy >= target)?.Round;
}

/// <summary>The comparison table of an experiment.</summary>
public static class ExperimentTable
{
    /// <summary>A fixed-width table, one line per arm in the given order: final and best accuracy, final loss, rounds to the target, wall time.</summary>
    public static string Format(IReadOnlyList<ArmResult> arms, double? target)
    {
        ArgumentNullException.ThrowIfNull(arms);
        var width = Math.Max(12, arms.Count == 0 ? 0 : arms.Max(a => a.Name.Length));
        var text = new StringBuilder();
        var toTarget = target is { } t ? string.Create(CultureInfo.InvariantCulture, $"to {t:P0}") : "to target";
        text.Append(CultureInfo.InvariantCulture, $"{"arm".PadRight(width)}  {"kind",-11}  {"final acc",9}  {"best acc",8}  {"final loss",10}  {toTarget,9}  {"wall s",7}").AppendLine();
        foreach (var a in arms)
        {
            if (a.Failure is not null)
            {
                text.Append(CultureInfo.InvariantCulture, $"{a.Name.PadRight(width)}  {a.Kind,-11}  failed: {a.Failure}").AppendLine();
                continue;
            }

            var rounds = target is { } goal ? a.RoundsTo(goal)?.ToString(CultureInfo.InvariantCulture) ?? "-" : "-";
            text.Append(CultureInfo.InvariantCulture, $"{a.Name.PadRight(width)}  {a.Kind,-11}  {a.FinalAccuracy,9:P1}  {a.BestAccuracy,8:P1}  {a.FinalLoss,10:F4}  {rounds,9}  {a.Seconds,7:F1}").AppendLine();
        }

        return text.ToString();
    }
}
