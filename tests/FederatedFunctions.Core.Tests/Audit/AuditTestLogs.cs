using FederatedFunctions.Core.Audit;

namespace FederatedFunctions.Core.Tests.Audit;

internal static class AuditTestLogs
{
    public static readonly DateTimeOffset Start = new(2025, 3, 14, 9, 26, 53, TimeSpan.Zero);

    public static AuditDraft Draft(int i, string runId = "run-audit") => new()
    {
        RunId = runId,
        Round = 1 + i / 2,
        SiloId = $"silo-{1 + i % 2}",
        Kind = i % 3 == 0 ? AuditKinds.Update : i % 3 == 1 ? AuditKinds.Metrics : AuditKinds.MaskedUpdate,
        Blob = $"outbox/{runId}/round-{1 + i / 2:D5}/update-{i}.safetensors",
        Bytes = 1000 + i,
        Sha256 = Hashing.Sha256Hex([(byte)i]),
        Policy = new AuditPolicy("eyes-off", i == 2 ? "finite,shape,clip-norm<=1.0 \"quoted\"\tü→\u0001" : "finite,shape"),
        DpNoise = i % 2 == 0 ? new DpNoiseParameters(1.1, 0.5) : null,
        Identity = i % 2 == 0 ? "3f2a7c1e-0000-4000-8000-00000000000" + i : "local",
        RecordedAt = Start.AddTicks(i * 12_345_678L).ToOffset(TimeSpan.FromHours(i % 2 == 0 ? 0 : 2)),
    };

    public static List<AuditEntry> Chain(int count, string runId = "run-audit")
    {
        var entries = new List<AuditEntry>();
        AuditEntry? previous = null;
        for (var i = 0; i < count; i++)
        {
            previous = AuditChain.Append(previous, Draft(i, runId));
            entries.Add(previous);
        }

        return entries;
    }
}
