using System.Text;
using FederatedFunctions.Core.Audit;

namespace FederatedFunctions.Core.Tests.Audit;

public sealed class AuditChainTests
{
    private const int Length = 5;

    [Fact]
    public void Append_FirstAndNext_ChainsSequenceAndHashes()
    {
        var first = AuditChain.Append(null, AuditTestLogs.Draft(0));
        var second = AuditChain.Append(first, AuditTestLogs.Draft(1));

        Assert.Equal(0, first.Sequence);
        Assert.Equal(AuditChain.GenesisHash, first.PreviousHash);
        Assert.Equal(new string('0', 64), AuditChain.GenesisHash);
        Assert.Equal(1, second.Sequence);
        Assert.Equal(first.Hash, second.PreviousHash);
        Assert.Matches("^[0-9a-f]{64}$", second.Hash);
        Assert.Equal(AuditChain.ComputeHash(second), second.Hash);
        Assert.Equal(TimeSpan.Zero, second.RecordedAt.Offset);
        Assert.Equal(AuditTestLogs.Draft(1).RecordedAt, second.RecordedAt);
    }

    [Fact]
    public void ComputeHash_IsSha256OfDocumentedCanonicalForm()
    {
        var entry = AuditChain.Append(null, new AuditDraft
        {
            RunId = "r",
            Round = 2,
            SiloId = "s",
            Kind = "update",
            Blob = "outbox/r/u",
            Bytes = 7,
            Sha256 = new string('a', 64),
            Policy = new AuditPolicy("eyes-off", "a\"b\\c\n\u001f/ü"),
            DpNoise = new DpNoiseParameters(1.1, 1),
            Identity = "local",
            RecordedAt = new DateTimeOffset(2025, 1, 2, 4, 4, 5, TimeSpan.FromHours(1)).AddTicks(1234567),
        });

        var canonical =
            "{\"sequence\":0,\"runId\":\"r\",\"round\":2,\"siloId\":\"s\",\"kind\":\"update\",\"blob\":\"outbox/r/u\",\"bytes\":7," +
            "\"sha256\":\"" + new string('a', 64) + "\",\"policy\":{\"name\":\"eyes-off\",\"checks\":\"a\\\"b\\\\c\\n\\u001f/ü\"}," +
            "\"dpNoise\":{\"noiseMultiplier\":1.1,\"clipNorm\":1},\"identity\":\"local\",\"recordedAt\":\"2025-01-02T03:04:05.1234567Z\"," +
            "\"previousHash\":\"" + AuditChain.GenesisHash + "\"}";

        Assert.Equal(Hashing.Sha256Hex(Encoding.UTF8.GetBytes(canonical)), entry.Hash);
    }

    [Fact]
    public void Verify_ValidChain_IsValidWithHead()
    {
        var chain = AuditTestLogs.Chain(Length);

        var result = AuditChain.Verify(chain);

        Assert.True(result.IsValid, result.Detail);
        Assert.Null(result.FirstBadIndex);
        Assert.Null(result.Reason);
        Assert.Equal(chain[^1].Hash, result.HeadHash);
        Assert.True(AuditChain.Verify(chain, chain[^1].Hash, "run-audit").IsValid);
    }

    [Fact]
    public void Verify_EmptyLog_IsValidWithGenesisHead()
    {
        var result = AuditChain.Verify([]);

        Assert.True(result.IsValid);
        Assert.Equal(AuditChain.GenesisHash, result.HeadHash);
        Assert.Equal(AuditFailureReasons.HeadMismatch, AuditChain.Verify([], new string('f', 64)).Reason);
    }

    public static TheoryData<string> Fields => new()
    {
        "sequence", "runId", "round", "siloId", "kind", "blob", "bytes", "sha256", "policy.name", "policy.checks",
        "dpNoise.noiseMultiplier", "dpNoise.clipNorm", "dpNoise.presence", "identity", "recordedAt", "previousHash", "hash",
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public void Verify_AnyFieldOfAnyEntryModified_ReportsHashMismatchAtThatEntry(string field)
    {
        for (var i = 0; i < Length; i++)
        {
            var chain = AuditTestLogs.Chain(Length);
            var modified = Modify(chain[i], field);
            Assert.NotEqual(chain[i], modified);
            chain[i] = modified;

            var result = AuditChain.Verify(chain);

            Assert.False(result.IsValid, $"{field} of entry {i}");
            Assert.Equal(i, result.FirstBadIndex);
            Assert.Equal(AuditFailureReasons.HashMismatch, result.Reason);
        }
    }

    [Fact]
    public void Verify_MiddleEntryRemoved_ReportsChainBroken()
    {
        var chain = AuditTestLogs.Chain(Length);
        chain.RemoveAt(2);

        var result = AuditChain.Verify(chain);

        Assert.False(result.IsValid);
        Assert.Equal(2, result.FirstBadIndex);
        Assert.Equal(AuditFailureReasons.ChainBroken, result.Reason);
    }

    [Fact]
    public void Verify_FirstEntryRemoved_ReportsChainBrokenAtZero()
    {
        var chain = AuditTestLogs.Chain(Length);
        chain.RemoveAt(0);

        var result = AuditChain.Verify(chain);

        Assert.False(result.IsValid);
        Assert.Equal(0, result.FirstBadIndex);
        Assert.Equal(AuditFailureReasons.ChainBroken, result.Reason);
    }

    [Fact]
    public void Verify_TwoEntriesSwapped_ReportsChainBroken()
    {
        var chain = AuditTestLogs.Chain(Length);
        (chain[1], chain[3]) = (chain[3], chain[1]);

        var result = AuditChain.Verify(chain);

        Assert.False(result.IsValid);
        Assert.Equal(1, result.FirstBadIndex);
        Assert.Equal(AuditFailureReasons.ChainBroken, result.Reason);
    }

    [Fact]
    public void Verify_TailTruncated_DetectedOnlyAgainstAnchoredHead()
    {
        var chain = AuditTestLogs.Chain(Length);
        var anchoredHead = chain[^1].Hash;
        var truncated = chain.Take(Length - 2).ToList();

        var unanchored = AuditChain.Verify(truncated);
        var anchored = AuditChain.Verify(truncated, anchoredHead);

        Assert.True(unanchored.IsValid);
        Assert.False(anchored.IsValid);
        Assert.Equal(AuditFailureReasons.HeadMismatch, anchored.Reason);
        Assert.Equal(Length - 2, anchored.FirstBadIndex);
    }

    [Fact]
    public void Verify_LastEntryRewrittenWithRecomputedHash_DetectedOnlyAgainstAnchoredHead()
    {
        var chain = AuditTestLogs.Chain(Length);
        var anchoredHead = chain[^1].Hash;
        var forged = chain[^1] with { Sha256 = new string('b', 64) };
        chain[^1] = forged with { Hash = AuditChain.ComputeHash(forged) };

        Assert.True(AuditChain.Verify(chain).IsValid);
        Assert.Equal(AuditFailureReasons.HeadMismatch, AuditChain.Verify(chain, anchoredHead).Reason);
    }

    [Fact]
    public void Verify_LogGrewPastAnchor_ReportsFirstEntryAfterAnchorAndPrefixVerifies()
    {
        var chain = AuditTestLogs.Chain(Length);
        var anchor = chain[2];

        var whole = AuditChain.Verify(chain, anchor.Hash);
        var prefix = AuditChain.Verify(chain.Take((int)anchor.Sequence + 1).ToList(), anchor.Hash);

        Assert.Equal(AuditFailureReasons.HeadMismatch, whole.Reason);
        Assert.Equal(3, whole.FirstBadIndex);
        Assert.True(prefix.IsValid);
    }

    [Fact]
    public void Verify_SequenceWrongButChainedAndHashed_ReportsSequenceGap()
    {
        var chain = AuditTestLogs.Chain(2);
        var skipped = chain[1] with { Sequence = 5 };
        chain[1] = skipped with { Hash = AuditChain.ComputeHash(skipped) };

        var result = AuditChain.Verify(chain);

        Assert.Equal(AuditFailureReasons.SequenceGap, result.Reason);
        Assert.Equal(1, result.FirstBadIndex);
    }

    [Fact]
    public void Verify_EntryOfOtherRunSpliced_ReportsRunMismatch()
    {
        var chain = AuditTestLogs.Chain(2);
        var foreign = chain[1] with { RunId = "other-run" };
        chain[1] = foreign with { Hash = AuditChain.ComputeHash(foreign) };

        Assert.Equal(AuditFailureReasons.RunMismatch, AuditChain.Verify(chain).Reason);
        Assert.Equal(AuditFailureReasons.RunMismatch, AuditChain.Verify(AuditTestLogs.Chain(2), expectedRunId: "other-run").Reason);
    }

    [Fact]
    public void Append_DraftForOtherRun_Throws()
    {
        var first = AuditChain.Append(null, AuditTestLogs.Draft(0));

        Assert.Throws<ArgumentException>(() => AuditChain.Append(first, AuditTestLogs.Draft(1, runId: "other-run")));
    }

    [Fact]
    public void Append_AfterTamperedPrevious_Throws()
    {
        var first = AuditChain.Append(null, AuditTestLogs.Draft(0)) with { Bytes = 1 };

        Assert.Throws<InvalidOperationException>(() => AuditChain.Append(first, AuditTestLogs.Draft(1)));
    }

    public static TheoryData<string> InvalidDrafts => new()
    {
        "sas", "userinfo", "sha-upper", "sha-short", "negative-bytes", "negative-round", "empty-silo", "empty-identity", "nan-noise", "zero-clip", "lone-surrogate",
    };

    [Theory]
    [MemberData(nameof(InvalidDrafts))]
    public void Append_InvalidDraft_Throws(string what)
    {
        var d = AuditTestLogs.Draft(0);
        var draft = what switch
        {
            "sas" => d with { Blob = "https://acct.blob.core.windows.net/c/u?sv=2024&sig=abc" },
            "userinfo" => d with { Blob = "https://user:pw@host/c/u" },
            "sha-upper" => d with { Sha256 = d.Sha256.ToUpperInvariant() },
            "sha-short" => d with { Sha256 = d.Sha256[..63] },
            "negative-bytes" => d with { Bytes = -1 },
            "negative-round" => d with { Round = -1 },
            "empty-silo" => d with { SiloId = "" },
            "empty-identity" => d with { Identity = "" },
            "nan-noise" => d with { DpNoise = new DpNoiseParameters(double.NaN, 1) },
            "zero-clip" => d with { DpNoise = new DpNoiseParameters(1, 0) },
            "lone-surrogate" => d with { Kind = "update\ud800" },
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };

        Assert.Throws<ArgumentException>(() => AuditChain.Append(null, draft));
    }

    private static AuditEntry Modify(AuditEntry e, string field) => field switch
    {
        "sequence" => e with { Sequence = e.Sequence + 1 },
        "runId" => e with { RunId = e.RunId + "x" },
        "round" => e with { Round = e.Round + 1 },
        "siloId" => e with { SiloId = e.SiloId + "x" },
        "kind" => e with { Kind = e.Kind + "x" },
        "blob" => e with { Blob = e.Blob + "x" },
        "bytes" => e with { Bytes = e.Bytes + 1 },
        "sha256" => e with { Sha256 = new string('c', 64) },
        "policy.name" => e with { Policy = e.Policy with { Name = "eyes-on" } },
        "policy.checks" => e with { Policy = e.Policy with { Checks = e.Policy.Checks + ",none" } },
        "dpNoise.noiseMultiplier" => e with { DpNoise = (e.DpNoise ?? new DpNoiseParameters(1, 1)) with { NoiseMultiplier = (e.DpNoise?.NoiseMultiplier ?? 1) + 0.25 } },
        "dpNoise.clipNorm" => e with { DpNoise = (e.DpNoise ?? new DpNoiseParameters(1, 1)) with { ClipNorm = (e.DpNoise?.ClipNorm ?? 1) * 2 } },
        "dpNoise.presence" => e with { DpNoise = e.DpNoise is null ? new DpNoiseParameters(1, 1) : null },
        "identity" => e with { Identity = e.Identity + "x" },
        "recordedAt" => e with { RecordedAt = e.RecordedAt.AddTicks(1) },
        "previousHash" => e with { PreviousHash = new string('d', 64) },
        "hash" => e with { Hash = new string('e', 64) },
        _ => throw new ArgumentOutOfRangeException(nameof(field)),
    };
}
