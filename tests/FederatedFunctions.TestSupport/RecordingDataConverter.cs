using System.Collections.Concurrent;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Converters;

namespace FederatedFunctions.TestSupport;

/// <summary>The default JSON converter, recording the size of every payload it serializes: everything that enters history.</summary>
public sealed class RecordingDataConverter : DataConverter
{
    private readonly DataConverter inner = JsonDataConverter.Default;

    public ConcurrentBag<(string Type, int Length)> Payloads { get; } = [];

    /// <summary>Every payload's text, for leak scans.</summary>
    public ConcurrentBag<string> Texts { get; } = [];

    public override string? Serialize(object? value)
    {
        var text = inner.Serialize(value);
        if (text is not null)
        {
            Payloads.Add((value?.GetType().Name ?? "null", text.Length));
            Texts.Add(text);
        }

        return text;
    }

    public override object? Deserialize(string? data, Type targetType) => inner.Deserialize(data, targetType);
}
