using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Orchestration;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Workflow.Tests.Orchestration;

/// <summary>A model brought as TorchScript, trained federatedly: every silo loads the run's copy of the file.</summary>
public sealed class TorchScriptRunTests
{
    [Fact]
    public async Task RunAsync_ATorchScriptMlp_StartsFromItsSavedParameters_AndLearnsFederatedly()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var file = TorchScriptWriter.Mlp([8, 16, 4], seed: 4);
        var script = h.Blobs.Put($"mem://orchestrator/checkpoints/{BlobLayout.Script("scripted")}", file);
        var spec = TrainingOrchestratorTests.Spec("scripted", rounds: 3) with
        {
            Model = new ModelSpec { Architecture = ModelArchitectures.TorchScript, Inputs = 8, Script = new PretrainedSpec { Path = "scripts/net.pt", Sha256 = script.Sha256 } },
        };
        Assert.Empty(RunSpecValidator.Validate(spec));

        await h.Host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(TrainingOrchestrator), TrainingState.Start("scripted", spec, script: script), new StartOrchestrationOptions("scripted"));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var meta = await h.Host.Client.WaitForInstanceCompletionAsync("scripted", getInputsAndOutputs: true, cts.Token);

        Assert.True(meta.RuntimeStatus == OrchestrationRuntimeStatus.Completed, meta.FailureDetails?.ErrorMessage);
        var manifests = await h.Store.ListAsync("checkpoints", "scripted", default);
        Assert.All(manifests, m => Assert.Equal(script, m.Script));

        // Round 0 is the file's own parameters, under PyTorch's names.
        var round0 = Safetensors.Parse(h.Blobs.Items[manifests[0].Model.Uri]).Tensors;
        var written = TorchScriptWriter.MlpParameters([8, 16, 4], seed: 4);
        Assert.Equal(["b0", "b1", "w0", "w1"], round0.Select(t => t.Name));
        Assert.All(round0, t => Assert.Equal(written[t.Name], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray()));
        Assert.All(h.Backend.TrainRequests, r => Assert.Equal(script, r.Script));

        var accuracy = meta.ReadOutputAs<TrainingOutcome>()!.FinalAccuracy!.Value;
        Assert.True(accuracy > 0.5, $"final accuracy {accuracy}");
    }

    [Fact]
    public async Task RunAsync_AScriptThatDoesNotFitTheData_FailsAtTheStartNamingTheShape()
    {
        await using var h = await new TrainingOrchestratorTests.Harness().StartAsync();
        var script = h.Blobs.Put($"mem://orchestrator/checkpoints/{BlobLayout.Script("misfit")}", TorchScriptWriter.Mlp([8, 16, 3], seed: 4));
        var spec = TrainingOrchestratorTests.Spec("misfit", rounds: 1) with
        {
            Model = new ModelSpec { Architecture = ModelArchitectures.TorchScript, Inputs = 8, Script = new PretrainedSpec { Path = "scripts/net.pt", Sha256 = script.Sha256 } },
        };

        await h.Host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(TrainingOrchestrator), TrainingState.Start("misfit", spec, script: script), new StartOrchestrationOptions("misfit"));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var meta = await h.Host.Client.WaitForInstanceCompletionAsync("misfit", getInputsAndOutputs: true, cts.Token);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, meta.RuntimeStatus);
        Assert.Contains("[1, 4] (one logit per class)", meta.FailureDetails!.ToString(), StringComparison.Ordinal);
        Assert.Empty(h.Backend.TrainCalls);
    }
}
