using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;

namespace FederatedFunctions.Core.Tests.Strategies;

public sealed class ParticipationPolicyTests
{
    private static readonly string[] Silos = Enumerable.Range(1, 10).Select(i => $"silo-{i}").ToArray();

    [Fact]
    public void Sample_CountOrFraction_TakesThatManyInOriginalOrder()
    {
        var three = ParticipationPolicy.Sample(Silos, new ParticipationSpec { SampleCount = 3 }, 7, 1);
        Assert.Equal(3, three.Count);
        Assert.Equal(three.OrderBy(s => Array.IndexOf(Silos, s)), three);
        Assert.Equal(4, ParticipationPolicy.Sample(Silos, new ParticipationSpec { SampleFraction = 0.31 }, 7, 1).Count);
        Assert.Same(Silos, ParticipationPolicy.Sample(Silos, new ParticipationSpec(), 7, 1));
    }

    [Fact]
    public void Sample_SameSeedAndRound_SameSilosWhateverTheInputOrder()
    {
        var policy = new ParticipationSpec { SampleCount = 4 };
        var a = ParticipationPolicy.Sample(Silos, policy, 42, 3);
        var b = ParticipationPolicy.Sample(Silos.Reverse().ToArray(), policy, 42, 3);
        Assert.Equal(a.Order(), b.Order());
        Assert.Equal(a, ParticipationPolicy.Sample(Silos, policy, 42, 3));
    }

    [Fact]
    public void Sample_AcrossRounds_DrawsDifferentSilosAndCoversThemAll()
    {
        var policy = new ParticipationSpec { SampleCount = 3 };
        var draws = Enumerable.Range(1, 30).Select(r => string.Join(",", ParticipationPolicy.Sample(Silos, policy, 5, r))).ToArray();
        Assert.True(draws.Distinct().Count() > 10);
        Assert.Equal(Silos.Order(), draws.SelectMany(d => d.Split(',')).Distinct().Order());
    }

    [Fact]
    public void MinimumAccepted_StrictOrTolerate_IsEverySampledSiloOrMinSilos()
    {
        Assert.Equal(5, ParticipationPolicy.MinimumAccepted(new ParticipationSpec { MinSilos = 2, FailurePolicy = FailurePolicies.Strict }, 5));
        Assert.Equal(2, ParticipationPolicy.MinimumAccepted(new ParticipationSpec { MinSilos = 2 }, 5));
    }
}

public sealed class ParticipationValidationTests
{
    private static RunSpec Valid(ParticipationSpec? p = null, RetrySpec? r = null) => new()
    {
        Model = new ModelSpec { Inputs = 4 },
        Silos = ["a", "b", "c", "d"],
        Participation = p ?? new ParticipationSpec(),
        Retry = r ?? new RetrySpec(),
    };

    private static void AssertError(RunSpec spec, string path, string rule) =>
        Assert.Contains(RunSpecValidator.Validate(spec), e => e.Path == path && e.Rule == rule);

    [Fact]
    public void Validate_Defaults_AreValid() => Assert.Empty(RunSpecValidator.Validate(Valid()));

    [Fact]
    public void Validate_MinSilosAboveSiloCount_IsARangeError() =>
        AssertError(Valid(new ParticipationSpec { MinSilos = 5 }), "$.participation.minSilos", "range");

    [Fact]
    public void Validate_SampleCountBelowMinSilos_IsARangeError() =>
        AssertError(Valid(new ParticipationSpec { MinSilos = 3, SampleCount = 2 }), "$.participation.sampleCount", "range");

    [Fact]
    public void Validate_BothSampleCountAndFraction_IsAConflict() =>
        AssertError(Valid(new ParticipationSpec { SampleCount = 2, SampleFraction = 0.5 }), "$.participation.sampleFraction", "conflict");

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Validate_SampleFractionOutsideZeroToOne_IsARangeError(double fraction) =>
        AssertError(Valid(new ParticipationSpec { SampleFraction = fraction }), "$.participation.sampleFraction", "range");

    [Fact]
    public void Validate_FractionSamplingFewerThanMinSilos_IsARangeError() =>
        AssertError(Valid(new ParticipationSpec { MinSilos = 3, SampleFraction = 0.25 }), "$.participation.sampleFraction", "range");

    [Theory]
    [InlineData(0)]
    [InlineData(RunSpecValidator.MaxRoundDeadlineSeconds + 1)]
    public void Validate_DeadlineOutOfRange_IsARangeError(int seconds) =>
        AssertError(Valid(new ParticipationSpec { RoundDeadlineSeconds = seconds }), "$.participation.roundDeadlineSeconds", "range");

    [Fact]
    public void Validate_UnknownFailurePolicy_IsAnEnumError() =>
        AssertError(Valid(new ParticipationSpec { FailurePolicy = "lenient" }), "$.participation.failurePolicy", "enum");

    [Fact]
    public void Validate_RetryOutOfRange_ReportsEachField()
    {
        var errors = RunSpecValidator.Validate(Valid(r: new RetrySpec { MaxAttempts = 0, FirstIntervalSeconds = 0, BackoffCoefficient = 0.5, MaxIntervalSeconds = double.PositiveInfinity }));
        Assert.Equal(
            ["$.retry.backoffCoefficient", "$.retry.firstIntervalSeconds", "$.retry.maxAttempts", "$.retry.maxIntervalSeconds"],
            errors.Select(e => e.Path).Order());
    }

    [Fact]
    public void Parse_ParticipationJson_BindsAndRejectsUnknownFields()
    {
        var ok = RunSpecParser.Parse("""{ "model": { "inputs": 4 }, "silos": ["a", "b"], "participation": { "minSilos": 2, "roundDeadlineSeconds": 60, "failurePolicy": "strict" }, "retry": { "maxAttempts": 5 } }""");
        Assert.True(ok.IsValid, string.Join("; ", ok.Errors));
        Assert.Equal((2, 60, "strict", 5), (ok.Spec!.Participation.MinSilos, ok.Spec.Participation.RoundDeadlineSeconds!.Value, ok.Spec.Participation.FailurePolicy, ok.Spec.Retry.MaxAttempts));
        var bad = RunSpecParser.Parse("""{ "model": { "inputs": 4 }, "silos": ["a"], "participation": { "deadline": 5 } }""");
        Assert.Contains(bad.Errors, e => e.Rule == "unknown-field" && e.Path.StartsWith("$.participation", StringComparison.Ordinal));
    }

    [Fact]
    public void SampleVirtual_TenOfAThousand_DistinctInOrderSeededAndFreshEachRound()
    {
        var ids = Enumerable.Range(1, 1000).Select(i => $"h#{i}").ToArray();
        var policy = new ParticipationSpec { SampleCount = 10 };

        var first = ParticipationPolicy.SampleVirtual(ids, policy, seed: 5, round: 1);

        Assert.Equal(10, first.Distinct().Count());
        Assert.Equal(first.OrderBy(id => Array.IndexOf(ids, id)), first);
        Assert.Equal(first, ParticipationPolicy.SampleVirtual(ids, policy, seed: 5, round: 1));
        Assert.NotEqual(first, ParticipationPolicy.SampleVirtual(ids, policy, seed: 5, round: 2));
        Assert.NotEqual(first, ParticipationPolicy.SampleVirtual(ids, policy, seed: 6, round: 1));
        Assert.Same(ids, ParticipationPolicy.SampleVirtual(ids, new ParticipationSpec(), seed: 5, round: 1));
    }

    [Fact]
    public void SampleVirtual_ManyRounds_EveryVirtualSiloAboutEquallyOften()
    {
        // 3 of 12 over 4,000 rounds: each is drawn 1,000 times in expectation (binomial sd about 27).
        var ids = Enumerable.Range(1, 12).Select(i => $"h#{i}").ToArray();
        var counts = ids.ToDictionary(id => id, _ => 0);
        for (var round = 1; round <= 4000; round++)
        {
            foreach (var id in ParticipationPolicy.SampleVirtual(ids, new ParticipationSpec { SampleCount = 3 }, seed: 9, round))
            {
                counts[id]++;
            }
        }

        Assert.All(counts.Values, c => Assert.InRange(c, 880, 1120));
    }
}
