using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Core.Tests.Silos;

public sealed class VirtualSilosTests
{
    [Fact]
    public void Id_ThenTryParse_GivesTheHostAndIndexBack()
    {
        Assert.Equal("sim-1#42", VirtualSilos.Id("sim-1", 42));
        Assert.True(VirtualSilos.TryParse("sim-1#42", out var host, out var index));
        Assert.Equal(("sim-1", 42), (host, index));
        Assert.False(RunSpecValidator.IsValidSiloId("sim-1#42"));
    }

    [Fact]
    public void IdOrder_AHostsVirtualSilosByNumber_OtherIdsAsOrdinalStrings()
    {
        string[] ids = ["h#10", "b", "h#2", "h", "h#1", "h-2#3", "a#100", "h2", "a#99", "h#11"];

        Assert.Equal(["a#99", "a#100", "b", "h", "h#1", "h#2", "h#10", "h#11", "h-2#3", "h2"], ids.Order(VirtualSilos.IdOrder));
        Assert.Equal(0, VirtualSilos.IdOrder.Compare("h#7", "h#7"));
        Assert.Equal(ids.Order(VirtualSilos.IdOrder), ids.Reverse().Order(VirtualSilos.IdOrder));
    }

    [Theory]
    [InlineData("silo-1")]
    [InlineData("#3")]
    [InlineData("host#")]
    [InlineData("host#0")]
    [InlineData("host#07")]
    [InlineData("host#-1")]
    [InlineData("host#+1")]
    [InlineData("host#1a")]
    public void TryParse_NotAVirtualId_False(string id)
    {
        Assert.False(VirtualSilos.TryParse(id, out _, out _));
    }

    [Fact]
    public void Participants_Simulation_AreTheVirtualSilosInOrder_ElseTheSilos()
    {
        var spec = new RunSpec { Silos = ["host"], Simulation = new SimulationSpec { VirtualSilos = 3 } };
        Assert.Equal(["host#1", "host#2", "host#3"], VirtualSilos.Participants(spec));
        Assert.Equal(3, VirtualSilos.ParticipantCount(spec));
        var real = new RunSpec { Silos = ["a", "b"] };
        Assert.Same(real.Silos, VirtualSilos.Participants(real));
        Assert.Equal(2, VirtualSilos.ParticipantCount(real));
    }

    [Theory]
    [InlineData(23, 10, new[] { 8, 8, 7 })]
    [InlineData(10, 10, new[] { 10 })]
    [InlineData(10, 1, new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 })]
    [InlineData(3, 100, new[] { 3 })]
    public void Batches_SampledInOrder_FewestEvenGroupsWithinPerStep(int sampled, int perStep, int[] sizes)
    {
        var simulation = new SimulationSpec { VirtualSilos = 1000, PerStep = perStep };
        var ids = Enumerable.Range(0, sampled).Select(i => VirtualSilos.Id("h", (i * 37 % 997) + 1)).ToArray();

        var batches = VirtualSilos.Batches("h", ids, simulation);

        Assert.Equal(sizes, batches.Select(b => b.Indices.Count));
        Assert.Equal(Enumerable.Range(1, sizes.Length), batches.Select(b => b.Batch));
        Assert.Equal(ids, batches.SelectMany(b => b.Indices).Select(i => VirtualSilos.Id("h", i)));
        Assert.All(batches, b => Assert.Same(simulation, b.Simulation));
    }

    [Fact]
    public void Batches_AnIdOfAnotherHost_Throws()
    {
        Assert.Throws<ArgumentException>(() => VirtualSilos.Batches("h", ["h#1", "g#2"], new SimulationSpec { VirtualSilos = 5 }));
        Assert.Throws<ArgumentException>(() => VirtualSilos.Batches("h", ["silo-1"], new SimulationSpec { VirtualSilos = 5 }));
    }

    [Fact]
    public void StepName_GroupsOfOneHost_AreDistinct()
    {
        var model = new Runs.BlobRef("mem://m", new string('0', 64), 1);
        SiloStep Step(int batch) => new(Train: new TrainRequest("run", 3, "sim", model, new ModelSpec(), new DataSpec(), new TrainingSpec(), 4, Virtual: new VirtualBatch(batch, [1], new SimulationSpec { VirtualSilos = 2 })));
        Assert.Equal("train-r00003-v0002-sim", Step(2).Name);
        Assert.NotEqual(Step(1).Name, Step(2).Name);
        Assert.Equal("train-r00003-sim", new SiloStep(Train: Step(1).Train! with { Virtual = null }).Name);
    }
}
