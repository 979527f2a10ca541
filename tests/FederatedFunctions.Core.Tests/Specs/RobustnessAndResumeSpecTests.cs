using FederatedFunctions.Core.Specs;
using static FederatedFunctions.Core.Tests.Specs.TestSpecs;

namespace FederatedFunctions.Core.Tests.Specs;

public sealed class RobustnessAndResumeSpecTests
{
    [Theory]
    [InlineData(1.0)]
    [InlineData(3.5)]
    [InlineData(1000.0)]
    public void Validate_MaxNormRatioInRange_Accepted(double ratio)
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { Robustness = new RobustnessSpec { MaxNormRatio = ratio } }));
    }

    [Theory]
    [InlineData(0.99)]
    [InlineData(0.0)]
    [InlineData(-2.0)]
    [InlineData(1000.5)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Validate_MaxNormRatioOutOfRange_ReportsRange(double ratio)
    {
        AssertSingle(Valid() with { Robustness = new RobustnessSpec { MaxNormRatio = ratio } }, "$.robustness.maxNormRatio", "range");
    }

    [Fact]
    public void Validate_NullRobustness_ReportsRequired()
    {
        AssertSingle(Valid() with { Robustness = null! }, "$.robustness", "required");
    }

    [Fact]
    public void Validate_ResumeFromAnotherRunsRound_Accepted()
    {
        Assert.Empty(RunSpecValidator.Validate(Valid() with { ResumeFrom = new ResumeFromSpec { RunId = "earlier-run", Round = 4 } }));
        Assert.Empty(RunSpecValidator.Validate(Valid() with { ResumeFrom = new ResumeFromSpec { RunId = "earlier-run" } }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("../other")]
    [InlineData("Earlier")]
    [InlineData("earlier/run")]
    [InlineData("e\u0430rlier")] // Cyrillic а
    public void Validate_ResumeFromInvalidRunId_ReportsPattern(string runId)
    {
        var error = AssertSingle(Valid() with { ResumeFrom = new ResumeFromSpec { RunId = runId } }, "$.resumeFrom.runId", "pattern");
        Assert.DoesNotContain("\u0430", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ResumeFromItself_ReportsConflict()
    {
        AssertSingle(Valid() with { ResumeFrom = new ResumeFromSpec { RunId = Valid().RunId! } }, "$.resumeFrom.runId", "conflict");
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(10)] // training.rounds is 10: no round would be left to train
    [InlineData(11)]
    public void Validate_ResumeFromRoundLeavingNothingToTrain_ReportsRange(int round)
    {
        AssertSingle(Valid() with { ResumeFrom = new ResumeFromSpec { RunId = "earlier-run", Round = round } }, "$.resumeFrom.round", "range");
    }

    [Fact]
    public void Parse_ResumeFromWithUnknownField_ReportsUnknownField()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["s"],"resumeFrom":{"runId":"earlier-run","rund":3}}""");

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors);
        Assert.Equal("unknown-field", error.Rule);
        Assert.Equal("$.resumeFrom.rund", error.Path);
    }

    [Fact]
    public void Parse_MaxNormRatioAsString_ReportsType()
    {
        var result = RunSpecParser.Parse("""{"model":{"inputs":4},"silos":["s"],"robustness":{"maxNormRatio":"3"}}""");

        var error = Assert.Single(result.Errors);
        Assert.Equal("type", error.Rule);
        Assert.Equal("$.robustness.maxNormRatio", error.Path);
    }
}
