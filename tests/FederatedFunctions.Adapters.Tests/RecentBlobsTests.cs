using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Workflow.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace FederatedFunctions.Adapters.Tests;

public sealed class RecentBlobsTests
{
    private static byte[] Bytes(int length, byte value) => Enumerable.Repeat(value, length).ToArray();

    private static BlobRef Ref(string uri, byte[] bytes) => new(uri, Hashing.Sha256Hex(bytes), bytes.Length);

    [Fact]
    public void TryGet_AReference_HitsOnlyWithItsLengthAndSha256()
    {
        var recent = new RecentBlobs(1024);
        var bytes = Bytes(10, 7);
        recent.Remember("u/a", bytes);

        Assert.True(recent.TryGet(Ref("u/a", bytes), out var hit));
        Assert.Equal(bytes, hit.ToArray());
        Assert.False(recent.TryGet(Ref("u/a", Bytes(10, 8)), out _));
        Assert.False(recent.TryGet(Ref("u/a", bytes) with { Bytes = 11 }, out _));
        Assert.False(recent.TryGet(Ref("u/b", bytes), out _));
    }

    [Fact]
    public void Remember_PastTheCapacity_DropsTheOldestWrittenFirst()
    {
        var recent = new RecentBlobs(100);
        for (var i = 0; i < 4; i++)
        {
            recent.Remember($"u/{i}", Bytes(25, (byte)i));
        }

        Assert.Equal(100, recent.HeldBytes);
        recent.Remember("u/0", Bytes(25, 9));
        recent.Remember("u/4", Bytes(25, 4));

        // u/0 was written again after u/1, so u/1 is the oldest.
        Assert.False(recent.TryGet("u/1", out _));
        Assert.True(recent.TryGet("u/0", out var rewritten));
        Assert.Equal(Bytes(25, 9), rewritten.ToArray());
        Assert.All(new[] { "u/2", "u/3", "u/4" }, u => Assert.True(recent.TryGet(u, out _)));
        Assert.Equal(100, recent.HeldBytes);
    }

    [Fact]
    public void Remember_ABlobLargerThanAQuarter_IsNotKept_AndWhatItsUriHeldIsForgotten()
    {
        var recent = new RecentBlobs(100);
        recent.Remember("u/a", Bytes(25, 1));
        Assert.Equal(25, recent.MaxEntryBytes);

        recent.Remember("u/a", Bytes(26, 2));

        Assert.False(recent.TryGet("u/a", out _));
        Assert.Equal(0, recent.HeldBytes);
    }

    [Fact]
    public void Remember_KeepsACopy_AndAHitIsThatCopy()
    {
        var recent = new RecentBlobs(1024);
        var bytes = Bytes(8, 3);
        recent.Remember("u/a", bytes);
        bytes[0] = 99;

        Assert.True(recent.TryGet("u/a", out var held));
        Assert.Equal(Bytes(8, 3), held.ToArray());
        Assert.True(recent.TryGet(Ref("u/a", Bytes(8, 3)), out var checkedHit));
        Assert.Equal(Bytes(8, 3), checkedHit.ToArray());
    }

    [Fact]
    public void Remember_AnEmptyBlob_IsNotKept_AndWhatItsUriHeldIsForgotten()
    {
        var recent = new RecentBlobs(100);
        recent.Remember("u/a", Bytes(5, 1));

        recent.Remember("u/a", ReadOnlyMemory<byte>.Empty);

        Assert.False(recent.TryGet("u/a", out _));
        Assert.Equal((0, 0L), (recent.Count, recent.HeldBytes));
    }

    [Fact]
    public void Remember_MoreBlobsThanMaxEntries_DropsTheOldest()
    {
        var recent = new RecentBlobs();
        for (var i = 0; i <= RecentBlobs.MaxEntries; i++)
        {
            recent.Remember($"u/{i}", Bytes(1, 1));
        }

        Assert.Equal(RecentBlobs.MaxEntries, recent.Count);
        Assert.False(recent.TryGet("u/0", out _));
        Assert.True(recent.TryGet($"u/{RecentBlobs.MaxEntries}", out _));
    }

    [Theory]
    [InlineData(null, 64L * 1024 * 1024)]
    [InlineData(" ", 64L * 1024 * 1024)]
    [InlineData("0", 0L)]
    [InlineData("8", 8L * 1024 * 1024)]
    public void CreateRecentBlobs_StorageRecentBlobsMiB_SetsTheCapacity(string? mib, long capacity)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([KeyValuePair.Create("Storage:RecentBlobsMiB", mib)]).Build();

        Assert.Equal(capacity, AdaptersRegistration.CreateRecentBlobs(configuration).CapacityBytes);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("lots")]
    public void CreateRecentBlobs_ASettingThatIsNotAWholeNumberOfZeroOrMore_IsRefusedNamingIt(string mib)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([KeyValuePair.Create("Storage:RecentBlobsMiB", (string?)mib)]).Build();

        var ex = Assert.Throws<InvalidOperationException>(() => AdaptersRegistration.CreateRecentBlobs(configuration));
        Assert.Contains("Storage:RecentBlobsMiB", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(" ", null)]
    [InlineData("0", null)]
    [InlineData("lots", "Storage:RecentBlobsMiB")]
    public void AddFederatedAdapters_TheSetting_ReachesTheHostsStores_ABadOneIsRefusedNamingIt(string mib, string? error)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(
        [
            KeyValuePair.Create("Storage:ConnectionString", (string?)"UseDevelopmentStorage=true"),
            KeyValuePair.Create("Storage:RecentBlobsMiB", (string?)mib),
        ]).Build();
        using var services = new ServiceCollection().AddLogging().AddFederatedAdapters(configuration).BuildServiceProvider();

        if (error is not null)
        {
            Assert.Contains(error, Assert.Throws<InvalidOperationException>(() => services.GetRequiredService<ICheckpointStore>()).Message, StringComparison.Ordinal);
            return;
        }

        Assert.NotNull(services.GetRequiredService<ICheckpointStore>());
        Assert.Equal(mib == "0" ? 0 : RecentBlobs.DefaultCapacityBytes, services.GetRequiredService<RecentBlobs>().CapacityBytes);
    }

    [Fact]
    public void Remember_NoCapacity_KeepsNothing()
    {
        var recent = new RecentBlobs(0);
        recent.Remember("u/a", Bytes(1, 1));

        Assert.False(recent.TryGet("u/a", out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecentBlobs(-1));
    }
}
