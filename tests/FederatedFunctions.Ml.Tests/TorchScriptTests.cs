using FederatedFunctions.Core.Models;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.TestSupport;
using static TorchSharp.torch;

namespace FederatedFunctions.Ml.Tests;

/// <summary>Bring-your-own models: TorchScript files loaded, run and trained by TorchSharp under PyTorch's own parameter names.</summary>
public sealed class TorchScriptTests
{
    private static readonly int[] Widths = [8, 16, 4];

    private static ModelSpec Spec(int inputs) => new() { Architecture = ModelArchitectures.TorchScript, Inputs = inputs, Script = new PretrainedSpec { Path = "scripts/net.pt", Sha256 = new string('a', 64) } };

    private static byte[] PyTorchFile()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(dir!.FullName, "FederatedFunctions.sln")))
        {
            dir = dir.Parent;
        }

        return File.ReadAllBytes(Path.Combine(dir.FullName, "tests", "fixtures", "torchscript", "linrelu.pt"));
    }

    [Fact]
    public void Load_AFileWrittenByPyTorch_RunsWithTheOutputsTorchSharpDocumentsForIt()
    {
        using var module = Scripted.Load(PyTorchFile(), inputs: 10, classes: 6);
        module.eval();
        using var scope = NewDisposeScope();

        var output = module.forward(ones(1, 10)).data<float>().ToArray();

        // TorchSharp's TestJIT: linrelu.script.dat on torch.ones(10) gives [0.313458264, 0, 0.9996568, 0, 0, 0].
        float[] expected = [0.313458264f, 0, 0.9996568f, 0, 0, 0];
        Assert.Equal(expected.Length, output.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], output[i], 5);
        }

        Assert.Equal(["0.bias", "0.weight"], StateDicts.Export(module).Select(t => t.Name));
    }

    [Fact]
    public void Load_OurWrittenMlp_HasTheWrittenParametersUnderTheirNames_AndComputesTheMlp()
    {
        var file = TorchScriptWriter.Mlp(Widths, seed: 3);
        var written = TorchScriptWriter.MlpParameters(Widths, seed: 3);
        using var module = Scripted.Load(file, 8, 4);

        var state = StateDicts.Export(module);
        Assert.Equal(["b0", "b1", "w0", "w1"], state.Select(t => t.Name));
        foreach (var t in state)
        {
            Assert.Equal(written[t.Name], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Data.Span).ToArray());
        }

        // The forward, by hand: relu(x·w0ᵀ + b0)·w1ᵀ + b1 on x = [1, 2, …, 8] / 8.
        var x = Enumerable.Range(1, 8).Select(i => i / 8.0).ToArray();
        var hidden = Enumerable.Range(0, 16).Select(j => Math.Max(0, written["b0"][j] + Enumerable.Range(0, 8).Sum(k => written["w0"][(j * 8) + k] * x[k]))).ToArray();
        var logits = Enumerable.Range(0, 4).Select(c => written["b1"][c] + Enumerable.Range(0, 16).Sum(j => written["w1"][(c * 16) + j] * hidden[j])).ToArray();
        using var scope = NewDisposeScope();
        var output = module.forward(tensor(x.Select(v => (float)v).ToArray(), [1, 8])).data<float>().ToArray();
        for (var c = 0; c < 4; c++)
        {
            Assert.Equal(logits[c], output[c], 5);
        }
    }

    [Fact]
    public void Train_AScriptedMlp_LearnsDeterministically_AndKeepsItsNames()
    {
        var data = SyntheticData.Generate(new SyntheticOptions(1, 4, 8, 400, 200, null, 9))[0];
        var file = TorchScriptWriter.Mlp(Widths, seed: 1);
        var spec = Spec(8);
        var training = new TrainingSpec { LocalEpochs = 3, BatchSize = 32, LearningRate = 0.1, Seed = 2 };
        var initial = ModelFactory.InitialState(spec, 8, 4, seed: 0, script: file);
        var before = LocalTrainer.Evaluate(spec, 4, initial, data.Test, script: file);

        var a = LocalTrainer.Train(spec, training, 4, initial, data.Train, 1, "silo-1", script: file);
        var b = LocalTrainer.Train(spec, training, 4, initial, data.Train, 1, "silo-1", script: file);
        var after = LocalTrainer.Evaluate(spec, 4, a.State, data.Test, script: file);

        Assert.Equal(initial.Select(t => t.Name), a.State.Select(t => t.Name));
        Assert.Equal(Tensors.Concat(a.State), Tensors.Concat(b.State));
        Assert.True(after.Loss < before.Loss * 0.7, $"loss {before.Loss} → {after.Loss}");
        Assert.True((double)after.Correct / after.Examples > 0.6, $"accuracy {(double)after.Correct / after.Examples}");
    }

    [Fact]
    public void InitialState_OfAScript_IsTheFilesParameters_WhateverTheSeed()
    {
        var file = TorchScriptWriter.Mlp(Widths, seed: 5);

        Assert.Equal(
            Tensors.Concat(ModelFactory.InitialState(Spec(8), 8, 4, seed: 1, script: file)),
            Tensors.Concat(ModelFactory.InitialState(Spec(8), 8, 4, seed: 2, script: file)));
    }

    [Fact]
    public void Load_AModuleWithOtherOutputs_IsRefusedNamingTheShape()
    {
        var ex = Assert.Throws<InvalidScriptException>(() => Scripted.Load(TorchScriptWriter.Mlp(Widths, 1), inputs: 8, classes: 3));

        Assert.Contains("[1, 4]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 3]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_AModuleFedTheWrongWidth_IsRefused()
    {
        Assert.Throws<InvalidScriptException>(() => Scripted.Load(TorchScriptWriter.Mlp(Widths, 1), inputs: 5, classes: 4));
    }

    [Fact]
    public void Load_NotTorchScript_IsRefused()
    {
        Assert.Throws<InvalidScriptException>(() => Scripted.Load("not a zip archive"u8.ToArray(), 8, 4));
    }

    [Fact]
    public void Create_ATorchScriptSpecWithoutItsFile_Throws()
    {
        Assert.Throws<ArgumentException>(() => ModelFactory.Create(Spec(8), 8, 4));
    }
}
