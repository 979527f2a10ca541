using System.Text.Json;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api;

/// <summary>Why a run failed, whichever durable backend recorded it.</summary>
public static class RunFailures
{
    /// <summary>
    /// <see cref="Message"/> with every credential-looking part replaced by <c>[redacted]</c>: the query of any URL (a SAS
    /// token), and the value of <c>AccountKey=</c>, <c>SharedAccessSignature=</c>, <c>sig=</c>, <c>password=</c>,
    /// <c>secret=</c>, <c>token=</c> and the like.
    /// </summary>
    /// <remarks>
    /// A failure message comes from whatever threw, storage clients included, whose messages can quote a request URL
    /// with its SAS. What a caller of the API reads must leak no secret; what remains still says which step failed and why.
    /// </remarks>
    public static string? SafeMessage(OrchestrationMetadata? meta) => Redact(Message(meta));

    /// <summary>The text with URL queries and credential values replaced by <c>[redacted]</c>; null stays null (<see cref="Core.Redaction"/>).</summary>
    public static string? Redact(string? text) => Core.Redaction.Redact(text);

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
