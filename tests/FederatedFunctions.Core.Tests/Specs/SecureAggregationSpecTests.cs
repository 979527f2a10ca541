using FederatedFunctions.Core.Specs;
using static FederatedFunctions.Core.Tests.Specs.TestSpecs;

namespace FederatedFunctions.Core.Tests.Specs;

public sealed class SecureAggregationSpecTests
{
    private static RunSpec With(SecureAggregationSpec secure, DifferentialPrivacySpec? dp = null) =>
        Valid() with { Privacy = new PrivacySpec { SecureAggregation = secure, DifferentialPrivacy = dp } };

    [Fact]
    public void Parse_SecureAggregationSection_ReadsEveryField()
    {
        var json = DemoJson.Replace("\"strategy\":", "\"privacy\": { \"mode\": \"eyes-off\", \"secureAggregation\": { \"clipNorm\": 2.5, \"maxExamples\": 5000, \"maxAttempts\": 4 } }, \"strategy\":", StringComparison.Ordinal);
        var result = RunSpecParser.Parse(json);

        Assert.Empty(result.Errors);
        var sa = result.Spec!.Privacy.SecureAggregation!;
        Assert.Equal((2.5, 5000L, 4), (sa.ClipNorm!.Value, sa.MaxExamples, sa.MaxAttempts));
    }

    [Fact]
    public void Parse_UnknownSecureAggregationField_IsRefused()
    {
        var json = DemoJson.Replace("\"strategy\":", "\"privacy\": { \"secureAggregation\": { \"clipNorm\": 1, \"threshold\": 3 } }, \"strategy\":", StringComparison.Ordinal);
        Assert.NotEmpty(RunSpecParser.Parse(json).Errors);
    }

    [Fact]
    public void Validate_ClipNormOrDifferentialPrivacy_Accepted()
    {
        Assert.Empty(RunSpecValidator.Validate(With(new SecureAggregationSpec { ClipNorm = 1 })));
        Assert.Empty(RunSpecValidator.Validate(With(new SecureAggregationSpec(), new DifferentialPrivacySpec { ClipNorm = 0.5 })));
        Assert.Empty(RunSpecValidator.Validate(With(new SecureAggregationSpec { ClipNorm = 0.5 }, new DifferentialPrivacySpec { ClipNorm = 0.5 })));
    }

    [Fact]
    public void Validate_NoClipNormAnywhere_ReportsRequired()
    {
        AssertSingle(With(new SecureAggregationSpec()), "$.privacy.secureAggregation.clipNorm", "required");
    }

    [Fact]
    public void Validate_ClipNormDifferentFromDifferentialPrivacy_ReportsConflict()
    {
        AssertSingle(With(new SecureAggregationSpec { ClipNorm = 1 }, new DifferentialPrivacySpec { ClipNorm = 0.5 }), "$.privacy.secureAggregation.clipNorm", "conflict");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(2e6)]
    public void Validate_ClipNormOutOfRange_ReportsRange(double clip)
    {
        AssertSingle(With(new SecureAggregationSpec { ClipNorm = clip }), "$.privacy.secureAggregation.clipNorm", "range");
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-5L)]
    [InlineData((1L << 53) + 1)]
    public void Validate_MaxExamplesOutOfRange_ReportsRange(long max)
    {
        AssertSingle(With(new SecureAggregationSpec { ClipNorm = 1, MaxExamples = max }), "$.privacy.secureAggregation.maxExamples", "range");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    public void Validate_MaxAttemptsOutOfRange_ReportsRange(int attempts)
    {
        AssertSingle(With(new SecureAggregationSpec { ClipNorm = 1, MaxAttempts = attempts }), "$.privacy.secureAggregation.maxAttempts", "range");
    }

    [Fact]
    public void Validate_OneSilo_ReportsConflict()
    {
        var spec = With(new SecureAggregationSpec { ClipNorm = 1 }) with { Silos = ["silo-1"] };
        Assert.Contains(RunSpecValidator.Validate(spec), e => e.Path == "$.privacy.secureAggregation" && e.Rule == "conflict");
    }

    [Fact]
    public void Validate_OneSiloSampledPerRound_ReportsConflict()
    {
        var spec = With(new SecureAggregationSpec { ClipNorm = 1 }) with { Participation = new ParticipationSpec { SampleCount = 1 } };
        AssertSingle(spec, "$.participation", "conflict");
        Assert.Empty(RunSpecValidator.Validate(spec with { Participation = new ParticipationSpec { SampleCount = 2 } }));
    }

    [Fact]
    public void Validate_WithNormScreen_ReportsConflict()
    {
        var spec = With(new SecureAggregationSpec { ClipNorm = 1 }) with { Robustness = new RobustnessSpec { MaxNormRatio = 3 } };
        AssertSingle(spec, "$.robustness.maxNormRatio", "conflict");
    }
}
