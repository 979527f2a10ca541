using System.CommandLine;
using System.Text.Json;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Commands;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary><c>fl data put</c> with array files and image folders: checked on the user's machine, then uploaded with the silo's own credential.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DataPutTests(AzuriteFixture azurite)
{
    private static async Task<(int Code, string Out, string Err)> InvokeAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var root = FlCommands.Build(new CommandContext(output, error));
        var code = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private static TabularData Table(int rows) =>
        new([.. Enumerable.Range(0, rows * 4).Select(i => i / 100f)], [.. Enumerable.Range(0, rows).Select(i => (long)(i % 3))], rows, 4, ["a", "b", "c", "d"]);

    private static void WriteImage(string path, byte value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, TestPng.Gray(2, 2, [value, 0, 0, 0]));
    }

    [Fact]
    public async Task Put_NpzSplitsAndAnImageFolder_UploadsThemWhereTheSpecFindsThem()
    {
        using var home = new TempDirectory();
        var train = Path.Combine(home.Path, "train.npz");
        await File.WriteAllBytesAsync(train, TensorDataWriter.ToNpz(Table(30), [1, 2, 2]));

        var (code, output, error) = await FlProcess.RunAsync(home.Path, azurite.ConnectionString, "data", "put", "--silo", "put-arrays", "--train", train, "--json");

        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
        Assert.Contains("as data/train.npz: npz, 30 examples of shape [1, 2, 2] (4 inputs, stored as Float32), labels 0 to 2", output, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]))
        {
            Assert.Equal("npz", json.RootElement.GetProperty("format").GetString());
            Assert.Equal("data/train.npz", json.RootElement.GetProperty("train").GetString());
        }

        var container = azurite.Blobs.GetBlobContainerClient("put-arrays");
        Assert.Equal(await File.ReadAllBytesAsync(train), (await container.GetBlobClient("data/train.npz").DownloadContentAsync()).Value.Content.ToArray());

        // An image folder: its class folders' PNGs become blobs under data/test, and a folder missing one of them is refused.
        var images = Path.Combine(home.Path, "images");
        WriteImage(Path.Combine(images, "cat", "1.png"), 1);
        WriteImage(Path.Combine(images, "dog", "1.png"), 2);
        WriteImage(Path.Combine(images, "dog", "2.png"), 3);
        (code, output, error) = await FlProcess.RunAsync(home.Path, azurite.ConnectionString, "data", "put", "--silo", "put-arrays", "--test", images);

        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
        Assert.Contains("as data/test/ (3 files): imagefolder, 3 images in 2 classes (cat, dog), each 1×2×2 (4 inputs)", output, StringComparison.Ordinal);
        Assert.Contains("In the run spec: \"data\": {\"format\":\"imagefolder\",\"test\":\"data/test\"", output, StringComparison.Ordinal);
        var blobs = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "data/test/", default))
        {
            blobs.Add(blob.Name);
        }

        Assert.Equal(["data/test/cat/1.png", "data/test/dog/1.png", "data/test/dog/2.png"], blobs);

        File.Delete(Path.Combine(images, "dog", "2.png"));
        (code, _, error) = await FlProcess.RunAsync(home.Path, azurite.ConnectionString, "data", "put", "--silo", "put-arrays", "--test", images);
        Assert.Equal(2, code);
        Assert.Contains("already has 1 blobs under data/test/", error, StringComparison.Ordinal);
        Assert.Contains("Nothing was uploaded", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Put_InvalidArraysOrFolder_AreRefusedBeforeAnythingIsUploaded()
    {
        using var dir = new TempDirectory();
        var npz = Path.Combine(dir.Path, "train.npz");
        await File.WriteAllTextAsync(npz, "x,label\n1,0\n");
        var folder = Path.Combine(dir.Path, "images");
        WriteImage(Path.Combine(folder, "cat", "1.png"), 1);
        await File.WriteAllTextAsync(Path.Combine(folder, "cat", "notes.txt"), "not an image");

        // These fail on the local check, before the command opens a workspace or any storage.
        var (code, _, error) = await InvokeAsync("data", "put", "--silo", "refused", "--train", npz);
        Assert.Equal(2, code);
        Assert.Contains("is not valid npz data", error, StringComparison.Ordinal);
        Assert.Contains("not a .npz archive", error, StringComparison.Ordinal);

        (code, _, error) = await InvokeAsync("data", "put", "--silo", "refused", "--train", folder);
        Assert.Equal(2, code);
        Assert.Contains("data/train/cat/notes.txt: is not a .png file", error, StringComparison.Ordinal);

        (code, _, error) = await InvokeAsync("data", "put", "--silo", "refused", "--as", "data/x.npz");
        Assert.Equal(2, code);
        Assert.Contains("give --file (with --as), or --train and/or --test", error, StringComparison.Ordinal);

        (code, _, error) = await InvokeAsync("data", "put", "--silo", "refused", "--file", npz, "--as", "data/../x.npz");
        Assert.Equal(2, code);
        Assert.Contains("is not a relative blob path", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a.csv", DataFormats.Csv, "data/train.csv")]
    [InlineData("b.PARQUET", DataFormats.Parquet, "data/train.parquet")]
    [InlineData("c.npz", DataFormats.Npz, "data/train.npz")]
    [InlineData("d.safetensors", DataFormats.Safetensors, "data/train.safetensors")]
    [InlineData("e.bin", null, "data/train.bin")]
    public void FormatOf_ANameOrAFolder_IsTheDataFormat(string name, string? format, string blob)
    {
        var file = new FileInfo(Path.Combine(Path.GetTempPath(), name));
        Assert.Equal(format, Local.LocalDataFiles.FormatOf(file));
        Assert.Equal(blob, Local.LocalDataFiles.DefaultBlobPath("train", file));
        Assert.Equal(DataFormats.ImageFolder, Local.LocalDataFiles.FormatOf(new DirectoryInfo(Path.GetTempPath())));
        Assert.Equal("data/test", Local.LocalDataFiles.DefaultBlobPath("test", new DirectoryInfo(Path.GetTempPath())));
    }
}
