using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Writes the seeded round-0 model and commits rounds.</summary>
public sealed class CheckpointService(ICheckpointStore checkpoints, ITensorEngine tensors)
{
    /// <summary>Writes the run's spec and its first checkpoint (round 0, or the round a continued run goes on from) and commits it.</summary>
    /// <remarks>The same request yields the same bytes, so a retried call rewrites identical blobs.</remarks>
    /// <exception cref="IntegrityException">The checkpoint to resume from is missing or altered.</exception>
    /// <exception cref="IncompatibleCheckpointException">The checkpoint to resume from does not fit the spec's model.</exception>
    public async Task<InitializeModelResult> InitializeAsync(InitializeModelRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Spec is { } spec)
        {
            await checkpoints.PutSpecAsync(request.Container, request.RunId, JsonSerializer.SerializeToUtf8Bytes(spec, RunSpecJson.Options), cancellationToken).ConfigureAwait(false);
        }

        var script = request.Script is { } file ? await checkpoints.ReadModelAsync(file, cancellationToken).ConfigureAwait(false) : (ReadOnlyMemory<byte>?)null;
        var state = tensors.InitialModel(request.Model, request.Inputs, request.Classes, request.Seed, script);
        var metadata = new Dictionary<string, string>
        {
            ["run_id"] = request.RunId,
            ["round"] = request.Round.ToString(CultureInfo.InvariantCulture),
            ["seed"] = request.Seed.ToString(CultureInfo.InvariantCulture),
        };
        if (request.From is { } from)
        {
            // The earlier run's model replaces the seeded one, after checking it fits this spec's architecture.
            var bytes = await checkpoints.ReadModelAsync(from.Model, cancellationToken).ConfigureAwait(false);
            var resumed = Safetensors.Parse(bytes).Tensors;
            using (var template = tensors.CreateAccumulator(state))
            {
                var check = template.Validate(resumed);
                if (!check.Accepted)
                {
                    throw new IncompatibleCheckpointException(
                        $"Round {from.Round} of run '{from.RunId}' does not fit this run's model ({check.Reason}: {check.Detail}).");
                }
            }

            state = resumed;
            metadata["resumed_from"] = $"{from.RunId}/round-{from.Round.ToString(CultureInfo.InvariantCulture)}";
        }

        var model = await checkpoints.PutModelAsync(request.Container, request.RunId, request.Round, Safetensors.Serialize(state, metadata), firstWriterWins: false, cancellationToken).ConfigureAwait(false);
        var manifest = new RoundManifest
        {
            RunId = request.RunId,
            Round = request.Round,
            Strategy = request.Strategy,
            Model = model,
            ResumedFrom = request.From,
            Script = request.Script,
            CreatedAt = request.CreatedAt,
            Standardization = request.Spec?.Data.Standardization,
        };
        var manifestRef = await checkpoints.CommitRoundAsync(request.Container, manifest, cancellationToken).ConfigureAwait(false);
        return new InitializeModelResult(model, manifestRef);
    }

    /// <summary>Appends the round's audit entries, then writes its manifest (anchoring the audit head) and moves the latest pointer.</summary>
    /// <remarks>
    /// Once committed, the round's span and metrics are emitted (<see cref="FederatedTelemetry.RoundCommitted"/>).
    /// The entries are chained from <see cref="CommitRoundRequest.PreviousAudit"/> and stamped with the manifest's
    /// orchestration time, so a re-executed commit computes the same entries; the audit blob is written once.
    /// </remarks>
    public async Task<CommitRoundResult> CommitAsync(CommitRoundRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var head = request.PreviousAudit;
        if (request.Audit is { Count: > 0 } drafts)
        {
            (var lines, head) = AuditLog.Chain(head, drafts);
            await checkpoints.PutAuditAsync(request.Container, request.Manifest.RunId, request.Manifest.Round, lines, cancellationToken).ConfigureAwait(false);
        }

        var manifest = await checkpoints.CommitRoundAsync(request.Container, request.Manifest with { Audit = head }, cancellationToken).ConfigureAwait(false);
        FederatedTelemetry.RoundCommitted(request.Manifest, request.RoundStartedAt);
        return new CommitRoundResult(manifest, head);
    }
}
