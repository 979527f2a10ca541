using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tests.Silos;

public sealed class SiloStepTests
{
    private static SiloStep Evaluate(string? of) =>
        new(Evaluate: new EvaluateRequest("run", 3, "silo-2", new BlobRef("mem://m", new string('0', 64), 1), new ModelSpec(), new DataSpec(), 4, Of: of));

    [Fact]
    public void Name_EvaluationOfTheGlobalModel_KindRoundSilo()
    {
        Assert.Equal("evaluate-r00003-silo-2", Evaluate(null).Name);
    }

    [Fact]
    public void Name_CrossSiteEvaluationOfALocalModel_NamesWhoseModelSoEachModelGetsItsOwnJob()
    {
        Assert.Equal("evaluate-r00003-x6-silo-1-silo-2", Evaluate("silo-1").Name);
        Assert.Equal("evaluate-r00003-x0--silo-2", Evaluate(string.Empty).Name);
        Assert.NotEqual(SiloJobNames.For("run", Evaluate(null), 1), SiloJobNames.For("run", Evaluate(string.Empty), 1));
        Assert.NotEqual(SiloJobNames.For("run", Evaluate("silo-1"), 1), SiloJobNames.For("run", Evaluate("silo-3"), 1));
        Assert.NotEqual(SiloJobNames.For("run", Evaluate(null), 1), SiloJobNames.For("run", Evaluate("silo-1"), 1));
    }
}
