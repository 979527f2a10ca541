using FederatedFunctions.Core.Specs;
using static FederatedFunctions.Core.Tests.Specs.TestSpecs;

namespace FederatedFunctions.Core.Tests.Specs;

public sealed class SimulationSpecTests
{
    private static RunSpec Simulation(SimulationSpec? simulation = null) => Valid() with
    {
        Silos = ["host"],
        Simulation = simulation ?? new SimulationSpec { VirtualSilos = 1000 },
        Participation = new ParticipationSpec { SampleCount = 10 },
    };

    [Fact]
    public void Validate_ThousandVirtualSilosOnOneHostTenPerRound_Accepted()
    {
        Assert.Empty(RunSpecValidator.Validate(Simulation()));
        Assert.Empty(RunSpecValidator.Validate(Simulation(new SimulationSpec { VirtualSilos = 50, Split = SimulationSplits.Dirichlet, Alpha = 0.3, PerStep = 7, Seed = -4 })));
    }

    [Fact]
    public void Validate_ParticipationAgainstTheVirtualSilos_NotTheOneHost()
    {
        // Ten sampled of one listed silo would be out of range; of 1,000 virtual silos it is not.
        Assert.Empty(RunSpecValidator.Validate(Simulation() with { Participation = new ParticipationSpec { SampleCount = 10, MinSilos = 8 } }));
        var errors = RunSpecValidator.Validate(Simulation() with { Participation = new ParticipationSpec { SampleCount = 10, MinSilos = 1001 } });
        Assert.Contains(errors, e => e.Path == "$.participation.minSilos" && e.Rule == "range" && e.Message.Contains("from 1 to 1000", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_TwoHosts_ReportsCountAtSilos()
    {
        AssertSingle(Simulation() with { Silos = ["host", "other"] }, "$.silos", "count");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100_001)]
    public void Validate_VirtualSilosOutsideTheLimit_ReportsRange(int count)
    {
        var error = AssertSingle(Simulation(new SimulationSpec { VirtualSilos = count }) with { Participation = new ParticipationSpec { SampleCount = 1 } }, "$.simulation.virtualSilos", "range");
        Assert.Contains(nameof(SpecLimits.MaxVirtualSilos), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TighterHostLimits_AreEnforced()
    {
        var limits = new SpecLimits { MaxVirtualSilos = 500, MaxVirtualSilosPerStep = 5 };
        var errors = RunSpecValidator.Validate(Simulation(new SimulationSpec { VirtualSilos = 600, PerStep = 6 }), limits);
        Assert.Equal(["$.simulation.virtualSilos", "$.simulation.perStep"], errors.Select(e => e.Path));
    }

    [Fact]
    public void Validate_EveryVirtualSiloEveryRoundPastThePerRoundLimit_ReportsRangeAtParticipation()
    {
        // Each sampled virtual silo's update is a reference in the round's history: 1,000 at most by default.
        var error = AssertSingle(Simulation() with { Simulation = new SimulationSpec { VirtualSilos = 1001 }, Participation = new ParticipationSpec() }, "$.participation", "range");
        Assert.Contains("samples 1001 of 1001", error.Message, StringComparison.Ordinal);
        Assert.Empty(RunSpecValidator.Validate(Simulation() with { Participation = new ParticipationSpec() }));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1001)]
    public void Validate_PerStepOutOfRange_ReportsRange(int perStep)
    {
        AssertSingle(Simulation(new SimulationSpec { VirtualSilos = 1000, PerStep = perStep }), "$.simulation.perStep", "range");
    }

    [Fact]
    public void Validate_UnknownSplit_ReportsEnum()
    {
        AssertSingle(Simulation(new SimulationSpec { VirtualSilos = 1000, Split = "shards" }), "$.simulation.split", "enum");
    }

    [Fact]
    public void Validate_DirichletWithoutAlpha_ReportsRequired_AndIidWithAlpha_ReportsUnused()
    {
        AssertSingle(Simulation(new SimulationSpec { VirtualSilos = 1000, Split = SimulationSplits.Dirichlet }), "$.simulation.alpha", "required");
        AssertSingle(Simulation(new SimulationSpec { VirtualSilos = 1000, Alpha = 0.5 }), "$.simulation.alpha", "unused");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(1000.5)]
    [InlineData(double.NaN)]
    public void Validate_DirichletAlphaOutOfRange_ReportsRange(double alpha)
    {
        AssertSingle(Simulation(new SimulationSpec { VirtualSilos = 1000, Split = SimulationSplits.Dirichlet, Alpha = alpha }), "$.simulation.alpha", "range");
    }

    [Fact]
    public void Validate_EyesOffSecureAggregationOrCrossSite_AreRefusedWithTheReason()
    {
        AssertSingle(Simulation() with { Privacy = new PrivacySpec { Mode = PrivacyModes.EyesOff } }, "$.privacy.mode", "conflict");
        var secure = RunSpecValidator.Validate(Simulation() with { Privacy = new PrivacySpec { SecureAggregation = new SecureAggregationSpec { ClipNorm = 1 } } });
        Assert.Contains(secure, e => e.Path == "$.privacy.secureAggregation" && e.Rule == "conflict");
        var crossSite = RunSpecValidator.Validate(Simulation() with { Evaluation = new EvaluationSpec { CrossSite = true } });
        Assert.Contains(crossSite, e => e.Path == "$.evaluation.crossSite" && e.Rule == "conflict" && e.Message.Contains("virtual silos", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_SimulationSection_ReadsEveryFieldAndRefusesUnknownOnes()
    {
        var json = DemoJson.Replace("\"silos\": [\"silo-1\", \"silo-2\", \"silo-3\", \"silo-4\"]", "\"silos\": [\"host\"], \"simulation\": { \"virtualSilos\": 40, \"split\": \"dirichlet\", \"alpha\": 0.25, \"seed\": 9, \"perStep\": 16 }", StringComparison.Ordinal);
        Assert.NotEqual(DemoJson, json);
        var parsed = RunSpecParser.Parse(json);
        Assert.True(parsed.IsValid, string.Join("; ", parsed.Errors));
        Assert.Equal(new SimulationSpec { VirtualSilos = 40, Split = SimulationSplits.Dirichlet, Alpha = 0.25, Seed = 9, PerStep = 16 }, parsed.Spec!.Simulation);

        var unknown = RunSpecParser.Parse(json.Replace("\"perStep\": 16", "\"perStep\": 16, \"clients\": 3", StringComparison.Ordinal));
        Assert.Contains(unknown.Errors, e => e.Path == "$.simulation.clients" && e.Rule == "unknown-field");
    }
}
