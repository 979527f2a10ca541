using FederatedFunctions.Core.Silos;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.Ml.Tests;

public sealed class ImageFolderReaderTests
{
    /// <summary>A silo's blobs in memory: the listing and the reads the reader asks for, counted.</summary>
    private sealed class Blobs
    {
        public SortedDictionary<string, byte[]> Items { get; } = new(StringComparer.Ordinal);

        public int Reads { get; private set; }

        public Blobs Add(string path, byte[] bytes)
        {
            Items[path] = bytes;
            return this;
        }

        public Task<ImageFolderSplit> ReadAsync(string prefix, int? classes = null, int? inputs = null, IReadOnlyList<string>? names = null) =>
            ImageFolderReader.ReadAsync(
                prefix,
                [.. Items.Where(i => i.Key.StartsWith(prefix + "/", StringComparison.Ordinal)).Select(i => new ImageFile(i.Key, i.Value.Length))],
                (path, _) =>
                {
                    Reads++;
                    return Task.FromResult(Items.TryGetValue(path, out var b) ? b : null);
                },
                classes,
                names,
                inputs,
                "silo-3");
    }

    // A 3×2 grayscale image whose pixels are start, start + 1, ...
    private static byte[] Gray(int start) => TestPng.Gray(3, 2, [.. Enumerable.Range(start, 6).Select(v => (byte)v)]);

    [Fact]
    public async Task ReadAsync_ClassFolders_AreSortedClassIdsAndRowsFollowClassThenFile()
    {
        var blobs = new Blobs()
            .Add("d/train/dog/b.png", Gray(40)).Add("d/train/dog/a.png", Gray(30))
            .Add("d/train/cat/z.png", Gray(20))
            .Add("d/train/bird/x.png", Gray(10))
            .Add("d/test/cat/other.png", Gray(0));

        var split = await blobs.ReadAsync("d/train", classes: 3, inputs: 6);

        Assert.Equal(["bird", "cat", "dog"], split.Classes);
        Assert.Equal([0L, 1L, 2L, 2L], split.Data.Labels);
        Assert.Equal([10, 20, 30, 40], Enumerable.Range(0, 4).Select(r => (int)Math.Round(split.Data.Features[r * 6] * 255)));
        Assert.Equal([.. Enumerable.Range(30, 6).Select(v => v / 255f)], split.Data.Features[12..18]);
        Assert.Equal((1, 2, 3), (split.Channels, split.Height, split.Width));
        Assert.Equal(["p0", "p1", "p2", "p3", "p4", "p5"], split.Data.FeatureNames);
        Assert.Equal(4, blobs.Reads);
    }

    [Fact]
    public async Task ReadAsync_RgbImages_AreFlattenedChannelByChannel()
    {
        // 2×1 RGB: pixel 0 = (1, 2, 3), pixel 1 = (4, 5, 6) → red plane, green plane, blue plane.
        var blobs = new Blobs().Add("rgb/a/0.png", TestPng.Encode(2, 1, 2, [1, 2, 3, 4, 5, 6], filter: _ => 4)).Add("rgb/b/0.png", TestPng.Encode(2, 1, 6, [1, 2, 3, 9, 4, 5, 6, 9]));

        var split = await blobs.ReadAsync("rgb", classes: 2, inputs: 6);

        float[] planes = [1 / 255f, 4 / 255f, 2 / 255f, 5 / 255f, 3 / 255f, 6 / 255f];
        Assert.Equal([.. planes, .. planes], split.Data.Features);
        Assert.Equal(3, split.Channels);
    }

    [Fact]
    public async Task ReadAsync_NotDataClassesFolders_IsRefusedListingThem()
    {
        var blobs = new Blobs().Add("t/0/a.png", Gray(0)).Add("t/1/a.png", Gray(0));

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.ReadAsync("t", classes: 3, inputs: 6));

        Assert.Equal(("silo-3", "t"), (ex.SiloId, ex.Field));
        Assert.Contains("there are 2 class folders ('0', '1'), but data.classes is 3", ex.Problem, StringComparison.Ordinal);
        Assert.Equal(0, blobs.Reads);
    }

    [Fact]
    public async Task ReadAsync_ClassNames_NumberTheFoldersInTheirOrderAndAllowMissingClasses()
    {
        var blobs = new Blobs().Add("t/dog/1.png", Gray(0)).Add("t/ant/1.png", Gray(10));

        var split = await blobs.ReadAsync("t", classes: 3, inputs: 6, names: ["dog", "cat", "ant"]);

        Assert.Equal(["dog", "cat", "ant"], split.Classes);
        Assert.Equal([0L, 2L], split.Data.Labels);
        Assert.Equal(0f, split.Data.Features[0]);

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.Add("t/cow/1.png", Gray(0)).ReadAsync("t", 3, 6, ["dog", "cat", "ant"]));
        Assert.Equal(("t/cow", "the class folder is not one of data.classNames"), (ex.Field, ex.Problem));
    }

    [Fact]
    public async Task ReadAsync_ImagesOfAnotherSize_AreRefusedNamingBothFiles()
    {
        var blobs = new Blobs().Add("t/a/1.png", Gray(0)).Add("t/b/1.png", TestPng.Gray(2, 3, new byte[6]));

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.ReadAsync("t", 2, 6));

        Assert.Equal("t/b/1.png", ex.Field);
        Assert.Contains("1×3×2", ex.Problem, StringComparison.Ordinal);
        Assert.Contains("but t/a/1.png is 1×2×3", ex.Problem, StringComparison.Ordinal);
        Assert.Contains("same size and channels", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_ImagesWithOtherChannels_AreRefused()
    {
        var blobs = new Blobs().Add("t/a/1.png", TestPng.Encode(3, 2, 2, new byte[18])).Add("t/b/1.png", Gray(0));
        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.ReadAsync("t", 2));
        Assert.Equal("t/b/1.png", ex.Field);
        Assert.Contains("1×2×3 (grayscale", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_ImagesNotOfTheModelsInputs_AreRefusedBeforeDecodingTheRest()
    {
        var blobs = new Blobs().Add("t/a/1.png", Gray(0)).Add("t/b/1.png", Gray(0));

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.ReadAsync("t", 2, inputs: 64));

        Assert.Contains("the images are 1×2×3", ex.Problem, StringComparison.Ordinal);
        Assert.Contains("6 values, but the model expects 64 inputs", ex.Problem, StringComparison.Ordinal);
        Assert.Equal(1, blobs.Reads);
    }

    [Theory]
    [InlineData("t/a/notes.txt", "is not a .png file")]
    [InlineData("t/a/b/nested.png", "is not an image of a class folder")]
    [InlineData("t/loose.png", "is not an image of a class folder")]
    [InlineData("t/a/photo.jpg", "is not a .png file")]
    public async Task ReadAsync_BlobOutsideTheLayout_IsRefusedByName(string path, string expected)
    {
        var blobs = new Blobs().Add("t/a/1.png", Gray(0)).Add(path, [1]);

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.ReadAsync("t"));

        Assert.Equal(path, ex.Field);
        Assert.Contains(expected, ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_EmptyFolderMarkers_AreSkipped()
    {
        var blobs = new Blobs().Add("t/a", []).Add("t/b/", []).Add("t/a/1.png", Gray(0)).Add("t/b/1.png", Gray(6)).Add("t/b/2.PNG", Gray(7));

        var split = await blobs.ReadAsync("t", 2, 6);

        Assert.Equal([0L, 1L, 1L], split.Data.Labels);
    }

    [Fact]
    public async Task ReadAsync_CorruptImage_IsRefusedNamingTheBlob()
    {
        var bad = Gray(0);
        bad[^5] ^= 1;
        var blobs = new Blobs().Add("t/a/1.png", Gray(0)).Add("t/a/2.png", bad);

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => blobs.ReadAsync("t", 1 + 0, 6));

        Assert.Equal("t/a/2.png", ex.Field);
        Assert.Contains("CRC", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_NoImages_IsRefused()
    {
        var ex = await Assert.ThrowsAsync<DataValidationException>(() => new Blobs().Add("t/a", []).ReadAsync("t"));
        Assert.Contains("there are no images under t/", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_MoreBytesThanTheBound_IsRefusedFromTheListingAlone()
    {
        ImageFile[] listing = [new("t/a/1.png", ImageFolderReader.MaxBytes), new("t/b/1.png", 1)];

        var ex = await Assert.ThrowsAsync<DataValidationException>(() => ImageFolderReader.ReadAsync("t", listing, (_, _) => throw new InvalidOperationException("nothing may be read"), 2, null, 6, "silo-1"));

        Assert.Contains($"more than {ImageFolderReader.MaxBytes}", ex.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_ManyImages_AreAllDecodedInTheirRows()
    {
        var blobs = new Blobs();
        for (var i = 0; i < 120; i++)
        {
            blobs.Add($"t/{i % 3}/{i:D3}.png", TestPng.Gray(3, 2, [(byte)i, 0, 0, 0, 0, (byte)(255 - i)]));
        }

        var split = await blobs.ReadAsync("t", 3, 6);

        var expected = Enumerable.Range(0, 120).OrderBy(i => i % 3).ThenBy(i => i).ToArray();
        Assert.Equal(expected, Enumerable.Range(0, 120).Select(r => (int)Math.Round(split.Data.Features[r * 6] * 255)));
        Assert.Equal(expected.Select(i => 255 - i), Enumerable.Range(0, 120).Select(r => (int)Math.Round(split.Data.Features[(r * 6) + 5] * 255)));
        Assert.Equal(expected.Select(i => (long)(i % 3)), split.Data.Labels);
    }
}
