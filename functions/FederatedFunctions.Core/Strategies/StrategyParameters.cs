using System.Globalization;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Range checks on a strategy's parameters, reported like every other spec error (path, rule, message).</summary>
public static class StrategyParameters
{
    /// <summary>Reports <c>range</c> unless <paramref name="value"/> is finite and within the bounds.</summary>
    public static void Number(Action<string, string, string> add, string field, double? value, double min, double max, bool minExclusive = false, bool maxExclusive = false)
    {
        ArgumentNullException.ThrowIfNull(add);
        if (value is not { } v)
        {
            return;
        }

        if (!double.IsFinite(v) || (minExclusive ? v <= min : v < min) || (maxExclusive ? v >= max : v > max))
        {
            var low = minExclusive ? "more than" : "from";
            var high = maxExclusive ? "and less than" : minExclusive ? "and at most" : "to";
            add($"$.strategy.{field}", "range", $"strategy.{field} must be {low} {Format(min)} {high} {Format(max)}; got {Format(v)}.");
        }
    }

    /// <summary>The names (JSON) of the <see cref="StrategySpec"/> fields that are set, besides the name.</summary>
    public static IReadOnlyList<string> Set(StrategySpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var set = new List<string>();
        void If(object? value, string field)
        {
            if (value is not null)
            {
                set.Add(field);
            }
        }

        If(spec.ServerLearningRate, "serverLearningRate");
        If(spec.ServerMomentum, "serverMomentum");
        If(spec.Beta1, "beta1");
        If(spec.Beta2, "beta2");
        If(spec.Tau, "tau");
        If(spec.ProximalMu, "proximalMu");
        If(spec.TrimFraction, "trimFraction");
        If(spec.Byzantine, "byzantine");
        If(spec.Keep, "keep");
        return set;
    }

    private static string Format(double v) => v.ToString(CultureInfo.InvariantCulture);
}
