namespace FederatedFunctions.Silo;

/// <summary>Pads a JSON document that leaves a silo, so that its size (which the orchestrator records) says little about its content.</summary>
internal static class JsonPadding
{
    /// <summary><paramref name="json"/> followed by spaces (still valid JSON) up to <paramref name="length"/> bytes; as it is when already that long.</summary>
    public static byte[] To(ReadOnlySpan<byte> json, int length)
    {
        var padded = new byte[Math.Max(length, json.Length)];
        json.CopyTo(padded);
        padded.AsSpan(json.Length).Fill((byte)' ');
        return padded;
    }
}
