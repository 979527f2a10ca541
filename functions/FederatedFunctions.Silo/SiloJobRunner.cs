using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;

namespace FederatedFunctions.Silo;

/// <summary>Runs one silo job: the entry point of <c>fl silo run</c>, which a silo's compute (a separate process, an Azure ML job) starts.</summary>
/// <remarks>
/// The job names its document by reference and SHA-256; the runner reads and checks it with the silo's identity, runs the
/// step with <see cref="SiloProtocol"/>, and writes a <see cref="SiloJobOutcome"/> to the silo's outbox, where the
/// orchestrator collects it. The exit code says how it ended, so that a compute that sees only exit codes (Azure ML) marks a
/// failed step as a failed job.
/// </remarks>
public sealed class SiloJobRunner(SiloProtocol protocol)
{
    /// <summary>The step succeeded and its outcome is in the outbox.</summary>
    public const int Succeeded = 0;

    /// <summary>The step failed; its outcome (with the failure's category) is in the outbox when the outbox was reachable.</summary>
    public const int Failed = 1;

    /// <summary>The silo's data is invalid: retrying does not help.</summary>
    public const int BadData = 2;

    /// <summary>The job itself is unusable: its document is missing, altered or for another silo.</summary>
    public const int BadJob = 3;

    /// <summary>Runs the job whose document is <paramref name="request"/>.</summary>
    /// <param name="storage">The silo's storage, with its own credential.</param>
    /// <param name="request">The job document's reference.</param>
    /// <param name="expectedKind">The step kind the caller expects, or null for any.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>One of the exit codes of this class, and the outcome written to the outbox.</returns>
    public async Task<(int ExitCode, SiloJobOutcome? Outcome)> RunAsync(ISiloStorage storage, BlobRef request, string? expectedKind, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(request);
        SiloJobRequest job;
        try
        {
            job = JsonSerializer.Deserialize<SiloJobRequest>(await storage.ReadOrchestratorBlobAsync(request, cancellationToken).ConfigureAwait(false), JsonDefaults.Documents)
                ?? throw new JsonException("The job document is null.");
            if (job.Step.SiloId != storage.SiloId)
            {
                throw new InvalidOperationException($"The job is for silo '{job.Step.SiloId}', not '{storage.SiloId}'.");
            }

            if (expectedKind is not null && job.Step.Kind != expectedKind)
            {
                throw new InvalidOperationException($"The job is a '{job.Step.Kind}' step, not '{expectedKind}'.");
            }
        }
        catch (Exception ex) when (ex is IntegrityException or JsonException or InvalidOperationException or NotSupportedException)
        {
            // Nothing to name an outcome after: the orchestrator sees the job fail without one.
            return (BadJob, null);
        }

        SiloJobOutcome outcome;
        int code;
        try
        {
            outcome = new SiloJobOutcome(job.JobName, await protocol.RunAsync(storage, job.Step, cancellationToken).ConfigureAwait(false));
            code = Succeeded;
        }
        catch (DataValidationException ex)
        {
            outcome = new SiloJobOutcome(job.JobName, null, SiloFailures.BadData, ex.Message);
            code = BadData;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // In eyes-off mode the protocol has already reduced the message to a category and a silo-side reference.
            outcome = new SiloJobOutcome(job.JobName, null, SiloFailures.Failed, ex.Message);
            code = Failed;
        }

        await storage.WriteAsync(SiloArea.Outbox, BlobLayout.SiloJobOutcome(job.Step.RunId, job.Step.Round, job.JobName), JsonSerializer.SerializeToUtf8Bytes(outcome, JsonDefaults.Documents), cancellationToken).ConfigureAwait(false);
        return (code, outcome);
    }
}
