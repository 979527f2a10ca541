using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>What a failed silo task tells the orchestrator, by privacy mode.</summary>
/// <remarks>
/// In eyes-off mode an error message can carry what a silo's data looks like (a column name, a row number, a
/// parser's echo of a value). So the silo keeps the full error in its own outbox, under a reference derived from run,
/// round, silo and task, and the orchestrator receives only a category (<c>bad-data</c> or a failure) and that
/// reference, which the silo's administrator can look up. No inner exception travels: failure details in history
/// carry the inner exceptions' messages too.
/// </remarks>
public static class SiloErrors
{
    /// <summary>Runs <paramref name="task"/>; in eyes-off mode, replaces any failure with its category and a silo-side reference.</summary>
    public static async Task<T> GuardAsync<T>(ISiloRegistry registry, string privacy, string runId, int round, string siloId, string task, Func<Task<T>> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(work);
        if (privacy != PrivacyModes.EyesOff)
        {
            return await work().ConfigureAwait(false);
        }

        try
        {
            return await work().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            var reference = Reference(runId, round, siloId, task);
            try
            {
                var container = registry.GetContainer(siloId);
                var error = new { runId, round, silo = siloId, task, type = ex.GetType().FullName, message = ex.Message, detail = ex.ToString() };
                await container.GetBlobClient(BlobLayout.SiloError(runId, round, reference))
                    .UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(error)), overwrite: true, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // The silo's storage is unreachable as well: the reference still names the failure, without its detail.
            }

            if (ex is DataValidationException)
            {
                throw new DataValidationException(siloId, $"reference {reference}", "the silo's data is invalid; the details are kept in the silo");
            }

            throw new SiloTaskException($"silo '{siloId}': {task} failed (reference {reference}); the details are kept in the silo");
        }
    }

    /// <summary>The reference of a failure: 12 hex digits of SHA-256 over run, round, silo and task (stable across retries).</summary>
    public static string Reference(string runId, int round, string siloId, string task) =>
        Hashing.Sha256Hex(System.Text.Encoding.UTF8.GetBytes($"{runId}|{round.ToString(CultureInfo.InvariantCulture)}|{siloId}|{task}"))[..12];
}

/// <summary>A silo task failed; in eyes-off mode the message is a category and a silo-side reference only.</summary>
public sealed class SiloTaskException(string message) : Exception(message);
