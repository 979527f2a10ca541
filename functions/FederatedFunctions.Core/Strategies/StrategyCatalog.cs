using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Strategies;

/// <summary>Every strategy, by name: the one place a new algorithm is registered, and where the privacy and robustness wrappers are put around it.</summary>
public static class StrategyCatalog
{
    private static readonly Dictionary<string, Func<StrategySpec, IFederatedStrategy>> Strategies = new(StringComparer.Ordinal)
    {
        [StrategyNames.FedAvg] = _ => new FedAvg(),
        [StrategyNames.FedAvgM] = s => new FedAvgM(s),
        [StrategyNames.FedProx] = s => new FedProx(s),
        [StrategyNames.FedAdam] = s => new FedAdam(s),
        [StrategyNames.FedYogi] = s => new FedYogi(s),
        [StrategyNames.FedAdagrad] = s => new FedAdagrad(s),
        [StrategyNames.FedMedian] = _ => new FedMedian(),
        [StrategyNames.FedTrimmedAvg] = s => new FedTrimmedAvg(s),
        [StrategyNames.Krum] = s => new Krum(s),
        [StrategyNames.MultiKrum] = s => new MultiKrum(s),
    };

    /// <summary>The strategy a spec names, without wrappers.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static IFederatedStrategy Create(StrategySpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Strategies.TryGetValue(spec.Name, out var create)
            ? create(spec)
            : throw new ArgumentException($"Unknown strategy '{spec.Name}'; expected one of: {string.Join(", ", StrategyNames.All)}.", nameof(spec));
    }

    /// <summary>The strategy a run aggregates with: the named one, inside the norm screen and DP-FedAvg when the spec asks for them.</summary>
    /// <param name="spec">The strategy.</param>
    /// <param name="privacy">The run's privacy settings; DP wraps the strategy when they have it.</param>
    /// <param name="maxNormRatio">The norm screen's limit; null for none.</param>
    public static IFederatedStrategy Create(StrategySpec spec, PrivacySpec? privacy, double? maxNormRatio)
    {
        var strategy = Create(spec);
        if (maxNormRatio is { } ratio)
        {
            strategy = new NormScreened(strategy, ratio);
        }

        return privacy?.DifferentialPrivacy is { } dp ? new DifferentiallyPrivate(strategy, dp) : strategy;
    }

    /// <summary>Reports every problem with <c>strategy</c> in <paramref name="spec"/>: its name, its parameters, and what it cannot be combined with.</summary>
    public static void Validate(RunSpec spec, int sampledPerRound, Action<string, string, string> add)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(add);
        if (spec.Strategy?.Name is not { } name || !Strategies.ContainsKey(name))
        {
            return;
        }

        var strategy = Create(spec.Strategy);
        foreach (var field in StrategyParameters.Set(spec.Strategy).Except(strategy.Parameters))
        {
            add($"$.strategy.{field}", "unused", $"strategy.{field} is not a parameter of '{name}'" +
                (strategy.Parameters.Count == 0 ? ", which has none." : $"; its parameters are {string.Join(", ", strategy.Parameters)}."));
        }

        strategy.Validate(sampledPerRound, add);
        var why = strategy.Mode == AggregationMode.Buffered ? $"'{name}' needs every update in the clear at once" : $"'{name}'";
        if (spec.Privacy?.SecureAggregation is not null && !strategy.CombinesWithSecureAggregation)
        {
            add("$.strategy.name", "conflict", $"{why}, and privacy.secureAggregation releases only the sum of the updates; use a streaming strategy (fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad) or turn secure aggregation off.");
        }

        if (spec.Privacy?.Mode == PrivacyModes.EyesOff && strategy.Mode == AggregationMode.Buffered)
        {
            // Krum publishes one silo's update as the model, and a median or trimmed mean over few silos takes each
            // coordinate from a single silo: no aggregate over enough silos, which eyes-off promises.
            add("$.strategy.name", "conflict", $"{why}, and can release one silo's values as the model (Krum picks one update; a median or trimmed mean can take a coordinate from one silo), which eyes-off forbids; use a streaming strategy.");
        }

        if (spec.Privacy?.DifferentialPrivacy is not null && !strategy.CombinesWithDifferentialPrivacy)
        {
            add("$.strategy.name", "conflict", $"{why}, and privacy.differentialPrivacy's guarantee is for a mean of clipped updates; use a streaming strategy or turn differential privacy off.");
        }
    }
}
