using FederatedFunctions.Core.Specs;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Api;

/// <summary>
/// Eyes-off work runs only code the orchestrator's configuration approves: the trainer each silo's compute declares (this
/// build's silo runner in process or in a separate process, a pinned image on Azure ML), by name and SHA-256. The same
/// runner trains, evaluates and computes an analysis's partials, so runs and analyses are gated alike.
/// </summary>
public static class TrainerApproval
{
    /// <summary>A 403 <c>trainer-not-approved</c> naming each unapproved trainer and its silos, or null when eyes-on or every trainer is approved.</summary>
    /// <param name="mode">The privacy mode.</param>
    /// <param name="siloIds">The silos the work would run on.</param>
    /// <param name="silos">The silo catalog, which knows each silo's trainer.</param>
    /// <param name="trust">The host's trust settings; none approves nothing.</param>
    /// <param name="work">What is refused, for the title: <c>runs</c> or <c>analyses</c>.</param>
    /// <param name="refused">Called once per refused trainer, to log it.</param>
    public static ApiResponse? Refuse(string mode, IReadOnlyList<string> siloIds, ISiloCatalog silos, TrustOptions? trust, string work, Action<TrainerIdentityView> refused)
    {
        ArgumentNullException.ThrowIfNull(siloIds);
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentNullException.ThrowIfNull(refused);
        if (mode != PrivacyModes.EyesOff)
        {
            return null;
        }

        var approved = trust?.ApprovedTrainers ?? [];
        var unapproved = siloIds
            .Select(silo => (Silo: silo, Trainer: silos.Trainer(silo)))
            .Where(s => !approved.Any(t => string.Equals(t.Id, s.Trainer.Id, StringComparison.Ordinal) && string.Equals(t.Sha256, s.Trainer.Sha256, StringComparison.OrdinalIgnoreCase)))
            .ToArray();
        if (unapproved.Length == 0)
        {
            return null;
        }

        foreach (var trainer in unapproved.Select(r => r.Trainer).Distinct())
        {
            refused(new TrainerIdentityView(trainer.Id, trainer.Sha256));
        }

        return ApiResponse.Problem(
            403,
            "trainer-not-approved",
            $"The trainer is not approved for eyes-off {work}.",
            string.Join(" ", unapproved.GroupBy(r => r.Trainer).Select(g => $"Trainer '{g.Key.Id}' with SHA-256 {g.Key.Sha256} (silos {string.Join(", ", g.Select(r => r.Silo))}) is not in {TrustOptions.Section}:ApprovedTrainers.")) + " Nothing was started.");
    }

    /// <summary>
    /// A 403 <c>trainer-not-approved</c> for a run of a TorchScript model whose SHA-256 is not in <c>Trust:ApprovedScripts</c>,
    /// or null. Whatever the privacy mode: the module is code, which the orchestrator's worker loads (to read round 0 and
    /// check its shapes) beside every run's checkpoints, and every silo runs on its data.
    /// </summary>
    public static ApiResponse? RefuseScript(string? scriptSha256, TrustOptions? trust, Action<TrainerIdentityView> refused)
    {
        ArgumentNullException.ThrowIfNull(refused);
        if (scriptSha256 is null || (trust?.ApprovedScripts ?? []).Any(s => string.Equals(s, scriptSha256, StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        refused(new TrainerIdentityView("torchscript", scriptSha256));
        return ApiResponse.Problem(
            403,
            "trainer-not-approved",
            "The TorchScript model is not approved.",
            $"The model.script module with SHA-256 {scriptSha256} is not in {TrustOptions.Section}:ApprovedScripts; the orchestrator and the silos would run its code. Nothing was started.");
    }
}

/// <summary>The zip container TorchScript files come in.</summary>
public static class TorchScriptFiles
{
    /// <summary>Whether <paramref name="bytes"/> is a zip archive holding a <c>data.pkl</c> record, as <c>torch.jit.save</c> writes.</summary>
    public static bool LooksLikeTorchScript(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4 || bytes[0] != 'P' || bytes[1] != 'K' || bytes[2] != 3 || bytes[3] != 4)
        {
            return false;
        }

        try
        {
            using var zip = new System.IO.Compression.ZipArchive(new MemoryStream(bytes.ToArray()), System.IO.Compression.ZipArchiveMode.Read);
            return zip.Entries.Any(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }
}

/// <summary>A trainer's name and SHA-256, as a refusal names it.</summary>
/// <param name="Id">The trainer's name.</param>
/// <param name="Sha256">Its SHA-256.</param>
public sealed record TrainerIdentityView(string Id, string Sha256);
