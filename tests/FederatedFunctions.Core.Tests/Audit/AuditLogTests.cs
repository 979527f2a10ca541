using System.Text;
using FederatedFunctions.Core.Audit;

namespace FederatedFunctions.Core.Tests.Audit;

public sealed class AuditLogTests
{
    private static byte[] Serialize(IEnumerable<AuditEntry> entries) => entries.SelectMany(AuditLog.ToJsonLine).ToArray();

    [Fact]
    public void ToJsonLine_ParseAndWriteAgain_IsByteStableAndEqual()
    {
        var chain = AuditTestLogs.Chain(6);
        var bytes = Serialize(chain);

        var parsed = AuditLog.Parse(bytes);

        Assert.Equal(chain, parsed);
        Assert.Equal(bytes, Serialize(parsed));
        Assert.True(AuditChain.Verify(parsed, chain[^1].Hash).IsValid);
    }

    [Fact]
    public void ToJsonLine_OneLineEndingInNewlineWithHashLast()
    {
        var entry = AuditTestLogs.Chain(3)[2]; // checks contain a quote, a tab, non-ASCII and a control character
        var text = Encoding.UTF8.GetString(AuditLog.ToJsonLine(entry));

        Assert.EndsWith($",\"hash\":\"{entry.Hash}\"}}\n", text, StringComparison.Ordinal);
        Assert.Equal(1, text.Count(c => c == '\n'));
        Assert.StartsWith("{\"sequence\":2,\"runId\":\"run-audit\",", text, StringComparison.Ordinal);
        Assert.Contains("\\\"quoted\\\"\\tü→\\u0001", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_Empty_IsEmptyLog()
    {
        Assert.Empty(AuditLog.Parse([]));
    }

    [Fact]
    public void Parse_TornLastLine_ThrowsNamingTheLine()
    {
        var bytes = Serialize(AuditTestLogs.Chain(3));
        var torn = bytes[..^20];

        var e = Assert.Throws<AuditLogFormatException>(() => AuditLog.Parse(torn));

        Assert.Equal(3, e.LineNumber);
        Assert.Contains("line 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("torn", e.Message, StringComparison.Ordinal);
        Assert.Contains("did not complete", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CompleteJsonWithoutFinalNewline_IsStillTorn()
    {
        var bytes = Serialize(AuditTestLogs.Chain(2));

        var e = Assert.Throws<AuditLogFormatException>(() => AuditLog.Parse(bytes[..^1]));

        Assert.Equal(2, e.LineNumber);
    }

    public static TheoryData<string, string> MalformedLines => new()
    {
        { "empty line", "\n" },
        { "not json", "{\"sequence\":\n" },
        { "not an object", "[1,2]\n" },
        { "unknown property", "{\"extra\":1}\n" },
    };

    [Theory]
    [MemberData(nameof(MalformedLines))]
    public void Parse_MalformedSecondLine_ThrowsForLineTwo(string what, string secondLine)
    {
        var bytes = AuditLog.ToJsonLine(AuditTestLogs.Chain(1)[0]).Concat(Encoding.UTF8.GetBytes(secondLine)).ToArray();

        var e = Assert.Throws<AuditLogFormatException>(() => AuditLog.Parse(bytes));

        Assert.True(e.LineNumber == 2, what);
    }

    [Theory]
    [InlineData("\"kind\":\"update\",", "", "missing")]
    [InlineData("\"kind\":\"update\",", "\"kind\":\"update\",\"kind\":\"metrics\",", "twice")]
    [InlineData("\"kind\":\"update\",", "\"kind\":\"update\",\"note\":\"x\",", "unknown")]
    [InlineData("\"bytes\":1000,", "\"bytes\":\"1000\",", "integer")]
    [InlineData("\"bytes\":1000,", "\"bytes\":1000.5,", "integer")]
    [InlineData("\"recordedAt\":\"2025-03-14T09:26:53.0000000Z\"", "\"recordedAt\":\"2025-03-14T09:26:53Z\"", "recordedAt")]
    public void Parse_NonConformingEntry_ThrowsSayingWhat(string original, string replacement, string expectedInMessage)
    {
        var line = Encoding.UTF8.GetString(AuditLog.ToJsonLine(AuditTestLogs.Chain(1)[0]));
        Assert.Contains(original, line, StringComparison.Ordinal);

        var e = Assert.Throws<AuditLogFormatException>(() => AuditLog.Parse(Encoding.UTF8.GetBytes(line.Replace(original, replacement, StringComparison.Ordinal))));

        Assert.Contains(expectedInMessage, e.Message, StringComparison.Ordinal);
        Assert.Equal(1, e.LineNumber);
    }

    [Fact]
    public void Parse_ReformattedButEquivalentLine_ReadsSameEntryThatStillVerifies()
    {
        var entry = AuditTestLogs.Chain(1)[0];
        var line = Encoding.UTF8.GetString(AuditLog.ToJsonLine(entry)).Replace(",\"", ", \"", StringComparison.Ordinal);

        var parsed = AuditLog.Parse(Encoding.UTF8.GetBytes(line));

        Assert.Equal(entry, Assert.Single(parsed));
        Assert.True(AuditChain.Verify(parsed).IsValid);
    }

    [Fact]
    public void Parse_ValueEditedInStoredBytes_ParsesButFailsVerification()
    {
        var chain = AuditTestLogs.Chain(3);
        var text = Encoding.UTF8.GetString(Serialize(chain));
        var edited = text.Replace("\"bytes\":1001,", "\"bytes\":1002,", StringComparison.Ordinal);
        Assert.NotEqual(text, edited);

        var result = AuditChain.Verify(AuditLog.Parse(Encoding.UTF8.GetBytes(edited)));

        Assert.Equal(AuditFailureReasons.HashMismatch, result.Reason);
        Assert.Equal(1, result.FirstBadIndex);
    }
}
