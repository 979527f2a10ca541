using Azure;
using Azure.Storage.Blobs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>One check of a silo's onboarding: its name, whether it passed, and what was seen.</summary>
/// <param name="Name">A stable name, e.g. <c>orchestrator-cannot-read-data</c>.</param>
/// <param name="Passed">Whether it passed.</param>
/// <param name="Detail">What was seen: the storage service's answer, or the registry's refusal.</param>
public sealed record OnboardingCheck(string Name, bool Passed, string Detail);

/// <summary>
/// Checks a deployed silo from the outside, against the permission matrix (infra/main.bicep): the registry entry is
/// complete; the orchestrator's grant reads the outbox and nothing else (it cannot write the outbox, it cannot read the
/// data container); and, run with the silo's own access, the silo's identity reads its data, writes its private area
/// and its outbox, and cannot write its data outside the private area.
/// </summary>
/// <remarks>
/// Writes are probes under <c>onboarding/</c> (outbox) and <c>private/onboarding/</c> (data), deleted at once; a probe
/// that a forbidden grant could write is deleted too. Nothing is read beyond one listing page; no data is printed.
/// </remarks>
public sealed class SiloOnboarding(ISiloRegistry registry, ISiloCatalog catalog)
{
    /// <summary>Every check, in order; checks that need a usable entry are left out when it is not.</summary>
    /// <param name="siloId">The silo.</param>
    /// <param name="silo">The silo's own access (its runner's credentials), or null to check the orchestrator's side only.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public async Task<IReadOnlyList<OnboardingCheck>> CheckAsync(string siloId, SiloRunnerCredentials? silo, CancellationToken cancellationToken)
    {
        var checks = new List<OnboardingCheck>();
        SiloEndpoint entry;
        BlobContainerClient reader;
        try
        {
            entry = registry.Entry(siloId);
            var placement = catalog.Placement(siloId);
            var trainer = catalog.Trainer(siloId);
            reader = registry.GetOutboxReader(siloId);
            checks.Add(new("registry-entry", true, $"compute {placement.Kind}, trainer {trainer.Id} ({trainer.Sha256[..12]}…), outbox {reader.Uri.AbsoluteUri}"));
        }
        catch (ArgumentException ex)
        {
            checks.Add(new("registry-entry", false, ex.Message));
            return checks;
        }

        checks.Add(entry.OutboxReader is null
            ? new("orchestrator-own-grant", false, "no 'OutboxReader': the orchestrator would read the outbox with the silo's own credential ('local' compute, simulation only)")
            : new("orchestrator-own-grant", true, $"'OutboxReader' with credential {entry.OutboxReader.Credential}"));
        checks.Add(await CanAsync("orchestrator-reads-outbox", () => ListAsync(reader, cancellationToken)).ConfigureAwait(false));
        checks.Add(await CannotAsync("orchestrator-cannot-write-outbox", () => ProbeAsync(reader, "onboarding/", cancellationToken)).ConfigureAwait(false));
        var readerOnData = SiloRegistry.ClientFor(SiloRegistry.ContainerUri(siloId, entry, entry.Container), entry.OutboxReader ?? entry, $"silo '{siloId}', the orchestrator's grant");
        checks.Add(await CannotAsync("orchestrator-cannot-read-data", () => ListAsync(readerOnData, cancellationToken)).ConfigureAwait(false));

        if (silo is not null)
        {
            var data = silo.Container(SiloRegistry.ContainerUri(siloId, entry, entry.Container));
            var outbox = silo.Container(SiloRegistry.ContainerUri(siloId, entry, entry.OutboxContainerName));
            checks.Add(await CanAsync("silo-reads-data", () => ListAsync(data, cancellationToken)).ConfigureAwait(false));
            checks.Add(await CanAsync("silo-writes-private", () => ProbeAsync(data, "private/onboarding/", cancellationToken)).ConfigureAwait(false));
            checks.Add(await CanAsync("silo-writes-outbox", () => ProbeAsync(outbox, "onboarding/", cancellationToken)).ConfigureAwait(false));
            checks.Add(await CannotAsync("silo-cannot-write-data", () => ProbeAsync(data, "onboarding-", cancellationToken)).ConfigureAwait(false));
        }

        return checks;
    }

    private static async Task<string> ListAsync(BlobContainerClient container, CancellationToken cancellationToken)
    {
        await foreach (var page in container.GetBlobsAsync(cancellationToken: cancellationToken).AsPages(pageSizeHint: 1).ConfigureAwait(false))
        {
            return $"listed {container.Uri.AbsoluteUri}";
        }

        return $"listed {container.Uri.AbsoluteUri} (empty)";
    }

    // Writes a probe blob and deletes it: the write is what is checked; a delete that is refused is reported.
    private static async Task<string> ProbeAsync(BlobContainerClient container, string prefix, CancellationToken cancellationToken)
    {
        var blob = container.GetBlobClient($"{prefix}probe-{Guid.NewGuid():N}");
        await blob.UploadAsync(BinaryData.FromString("onboarding probe"), cancellationToken).ConfigureAwait(false);
        try
        {
            await blob.DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return $"wrote and deleted {blob.Name}";
        }
        catch (RequestFailedException ex)
        {
            return $"wrote {blob.Name}; could not delete it ({ex.Status} {ex.ErrorCode})";
        }
    }

    private static async Task<OnboardingCheck> CanAsync(string name, Func<Task<string>> action)
    {
        try
        {
            return new(name, true, await action().ConfigureAwait(false));
        }
        catch (RequestFailedException ex)
        {
            return new(name, false, $"refused: {ex.Status} {ex.ErrorCode}");
        }
    }

    private static async Task<OnboardingCheck> CannotAsync(string name, Func<Task<string>> action)
    {
        try
        {
            return new(name, false, $"allowed, and the permission matrix forbids it: {await action().ConfigureAwait(false)}");
        }
        catch (RequestFailedException ex) when (ex.Status is 401 or 403 or 404)
        {
            return new(name, true, $"refused as it should be: {ex.Status} {ex.ErrorCode}");
        }
    }
}
