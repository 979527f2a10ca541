using System.Text.Json;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api;

/// <summary>Why a run failed, whichever durable backend recorded it.</summary>
public static class RunFailures
{
    /// <summary>The failure message of a failed run, or null when it has not failed.</summary>
    /// <remarks>The in-memory backend reports a failure in <see cref="OrchestrationMetadata.FailureDetails"/>; the Azure
    /// Storage backend behind the local sidecar leaves those empty and keeps the message as the instance's output, as
    /// plain text or as a JSON string.</remarks>
    public static string? Message(OrchestrationMetadata? meta)
    {
        if (meta is null || meta.RuntimeStatus != OrchestrationRuntimeStatus.Failed)
        {
            return null;
        }

        if (!string.IsNullOrEmpty(meta.FailureDetails?.ErrorMessage))
        {
            return meta.FailureDetails.ErrorMessage;
        }

        var output = meta.SerializedOutput;
        if (string.IsNullOrWhiteSpace(output))
        {
            return null;
        }

        if (output.StartsWith('"'))
        {
            try
            {
                return JsonSerializer.Deserialize<string>(output) ?? output;
            }
            catch (JsonException)
            {
                return output;
            }
        }

        return output;
    }
}
