using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;

namespace FederatedFunctions.Silo;

/// <summary>What a failed silo step tells the orchestrator, by privacy mode.</summary>
/// <remarks>
/// In eyes-off mode an error message can carry what a silo's data looks like (a column name, a row number, a parser's echo
/// of a value). So the silo keeps the full error in its private area, under a reference derived from run, round, silo and
/// step, and the orchestrator receives only a category (<c>bad-data</c> or a failure) and that reference, which the silo's
/// administrator can look up. No inner exception travels: failure details in history carry the inner exceptions' messages too.
/// </remarks>
public static class SiloErrorGuard
{
    /// <summary>Runs <paramref name="work"/>; in eyes-off mode, replaces any failure with its category and a silo-side reference.</summary>
    public static async Task<T> GuardAsync<T>(ISiloStorage storage, SiloStep step, Func<Task<T>> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(work);
        if (step.Privacy != PrivacyModes.EyesOff)
        {
            return await work().ConfigureAwait(false);
        }

        try
        {
            return await work().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            var reference = Reference(step.RunId, step.Round, step.SiloId, step.Kind);
            try
            {
                var error = new { runId = step.RunId, round = step.Round, silo = step.SiloId, task = step.Kind, type = ex.GetType().FullName, message = ex.Message, detail = ex.ToString() };
                await storage.WriteAsync(SiloArea.Private, BlobLayout.SiloError(step.RunId, step.Round, reference), JsonSerializer.SerializeToUtf8Bytes(error), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // The silo's storage is unreachable as well: the reference still names the failure, without its detail.
            }

            if (ex is DataValidationException)
            {
                throw new DataValidationException(step.SiloId, $"reference {reference}", "the silo's data is invalid; the details are kept in the silo");
            }

            throw new SiloTaskException($"silo '{step.SiloId}': {step.Kind} failed (reference {reference}); the details are kept in the silo");
        }
    }

    /// <summary>The reference of a failure: 12 hex digits of SHA-256 over run, round, silo and step kind (stable across retries).</summary>
    public static string Reference(string runId, int round, string siloId, string task) =>
        Hashing.Sha256Hex(System.Text.Encoding.UTF8.GetBytes($"{runId}|{round.ToString(CultureInfo.InvariantCulture)}|{siloId}|{task}"))[..12];
}
