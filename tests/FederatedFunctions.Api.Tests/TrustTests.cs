using System.Text;
using FederatedFunctions.Core.Audit;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Ml;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using Microsoft.DurableTask.Client;

namespace FederatedFunctions.Api.Tests;

public sealed class TrustTests
{
    private static string With(string json, string member) => json.TrimEnd()[..^1] + $", {member} }}";

    [Fact]
    public async Task StartAsync_EyesOffWithAnUnapprovedTrainer_Returns403AndStartsNothing()
    {
        await using var h = await ApiHarness.StartAsync(new TrustOptions { ApprovedTrainers = [new ApprovedTrainer { Id = LocalTrainerIdentity.Value.Id, Sha256 = new string('0', 64) }] });

        var response = await h.StartAsync(With(ApiHarness.SpecJson("eyes-off-refused", rounds: 1), "\"privacy\": { \"mode\": \"eyes-off\" }"));

        Assert.Equal(403, response.Status);
        var problem = Assert.IsType<ProblemDocument>(response.Body);
        Assert.EndsWith("trainer-not-approved", problem.Type, StringComparison.Ordinal);
        Assert.Contains(LocalTrainerIdentity.Value.Sha256, problem.Detail, StringComparison.Ordinal);
        Assert.Null(await h.Client.GetInstanceAsync("eyes-off-refused"));
        Assert.Empty(h.Backend.TrainCalls);
    }

    [Fact]
    public async Task StartAsync_EyesOffWithTheApprovedTrainer_Runs()
    {
        var trainer = LocalTrainerIdentity.Value;
        await using var h = await ApiHarness.StartAsync(new TrustOptions { ApprovedTrainers = [new ApprovedTrainer { Id = trainer.Id, Sha256 = trainer.Sha256.ToUpperInvariant() }] });

        var response = await h.StartAsync(With(ApiHarness.SpecJson("eyes-off-ok", rounds: 1), "\"privacy\": { \"mode\": \"eyes-off\" }"));

        Assert.Equal(202, response.Status);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await h.WaitAsync("eyes-off-ok")).RuntimeStatus);
    }

    // An eyes-off analysis of the harness's silos (securely aggregated, so the label's values are declared).
    private static string EyesOffAnalysis(string id) => ApiHarness.AnalysisSpecJson(id)
        .Replace("\"statistics\": [\"valueCounts\"] }", "\"statistics\": [\"valueCounts\"], \"categories\": [\"0\", \"1\"] }", StringComparison.Ordinal)
        .Replace("\"mode\": \"eyes-on\", \"minCount\": 1", "\"mode\": \"eyes-off\", \"minCount\": 3, \"minSilos\": 2", StringComparison.Ordinal);

    [Fact]
    public async Task StartAnalysis_EyesOffWithAnUnapprovedTrainer_Returns403AndStartsNothing_AndWithTheApprovedOneRuns()
    {
        var trainer = LocalTrainerIdentity.Value;
        await using var refusing = await ApiHarness.StartAsync(new TrustOptions { ApprovedTrainers = [new ApprovedTrainer { Id = trainer.Id, Sha256 = new string('0', 64) }] });

        var refused = await refusing.StartAnalysisAsync(EyesOffAnalysis("an-eyes-off-refused"));

        Assert.Equal(403, refused.Status);
        var problem = Assert.IsType<ProblemDocument>(refused.Body);
        Assert.EndsWith("trainer-not-approved", problem.Type, StringComparison.Ordinal);
        Assert.Contains(trainer.Sha256, problem.Detail, StringComparison.Ordinal);
        Assert.Null(await refusing.Client.GetInstanceAsync("an-eyes-off-refused"));

        await using var approving = await ApiHarness.StartAsync(new TrustOptions { ApprovedTrainers = [new ApprovedTrainer { Id = trainer.Id, Sha256 = trainer.Sha256 }] });
        Assert.Equal(202, (await approving.StartAnalysisAsync(EyesOffAnalysis("an-eyes-off-ok"))).Status);
        var done = await approving.WaitAsync("an-eyes-off-ok");
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, done.FailureDetails?.ErrorMessage);
    }

    [Fact]
    public async Task StartAsync_EyesOffWithOneSilosImageUnapproved_Returns403NamingThatSilo()
    {
        var local = LocalTrainerIdentity.Value;
        var image = new TrainerIdentity("azureml-environment:azureml:fl-silo-runner:3", new string('d', 64));
        await using var h = await ApiHarness.StartAsync();
        var azureMlSilo = ApiHarness.Data[1].SiloId;
        var catalog = new TrainerCatalog(h.Backend, azureMlSilo, image);
        var spec = Encoding.UTF8.GetBytes(With(ApiHarness.SpecJson("eyes-off-image", rounds: 1), "\"privacy\": { \"mode\": \"eyes-off\" }"));

        var onlyLocal = new RunsApi(h.Store, catalog, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<RunsApi>.Instance, Microsoft.Extensions.Options.Options.Create(new TrustOptions { ApprovedTrainers = [new ApprovedTrainer { Id = local.Id, Sha256 = local.Sha256 }] }));
        var refused = await onlyLocal.StartAsync(h.Client, spec, ApiHarness.Urls, default);

        Assert.Equal(403, refused.Status);
        var detail = Assert.IsType<ProblemDocument>(refused.Body).Detail!;
        Assert.Contains(image.Sha256, detail, StringComparison.Ordinal);
        Assert.Contains($"(silos {azureMlSilo})", detail, StringComparison.Ordinal);
        Assert.DoesNotContain(local.Sha256, detail, StringComparison.Ordinal);
        Assert.Null(await h.Client.GetInstanceAsync("eyes-off-image"));

        var both = new RunsApi(h.Store, catalog, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<RunsApi>.Instance, Microsoft.Extensions.Options.Options.Create(new TrustOptions
        {
            ApprovedTrainers = [new ApprovedTrainer { Id = local.Id, Sha256 = local.Sha256 }, new ApprovedTrainer { Id = image.Id, Sha256 = image.Sha256 }],
        }));
        Assert.Equal(202, (await both.StartAsync(h.Client, spec, ApiHarness.Urls, default)).Status);
        await h.WaitAsync("eyes-off-image");
    }

    // The harness's silos, one of which declares an Azure ML image as its trainer.
    private sealed class TrainerCatalog(FederatedFunctions.TestSupport.InMemorySiloBackend silos, string siloId, TrainerIdentity image) : FederatedFunctions.Workflow.Abstractions.ISiloCatalog
    {
        public bool Contains(string id) => silos.Contains(id);

        public TrainerIdentity Trainer(string id) => id == siloId ? image : silos.Trainer(id);

        public SiloPlacement Placement(string id) => silos.Placement(id);

        public FederatedFunctions.Workflow.Abstractions.ISiloCompute Compute(string id) => silos.Compute(id);
    }

    [Fact]
    public async Task Run_WithDifferentialPrivacy_ReportsTheAccountantsEpsilonEveryRoundAndStopsAtTheBudget()
    {
        await using var h = await ApiHarness.StartAsync();
        // Three silos, all sampled (q = 1), z = 2: the budget admits exactly the rounds whose ε stays within it.
        const double z = 2, delta = 1e-5;
        var eps3 = RdpAccountant.GetEpsilon(1, z, delta, 3);
        var eps4 = RdpAccountant.GetEpsilon(1, z, delta, 4);
        var budget = (eps3 + eps4) / 2;
        var dp = FormattableString.Invariant($"\"privacy\": {{ \"differentialPrivacy\": {{ \"clipNorm\": 0.5, \"noiseMultiplier\": {z}, \"delta\": {delta}, \"epsilonBudget\": {budget} }} }}");

        Assert.Equal(202, (await h.StartAsync(With(ApiHarness.SpecJson("dp-budget", rounds: 6), dp))).Status);
        var meta = await h.WaitAsync("dp-budget");

        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        var outcome = meta.ReadOutputAs<TrainingOutcome>()!;
        Assert.Equal(("budget-exhausted", 3), (outcome.Stopped, outcome.Rounds));
        Assert.Equal("budget-exhausted", meta.ReadCustomStatusAs<RunStatus>()!.Phase);
        var manifests = await h.Store.ListAsync("checkpoints", "dp-budget", default);
        Assert.Equal([0, 1, 2, 3], manifests.Select(m => m.Round));
        foreach (var m in manifests.Skip(1))
        {
            Assert.Equal(RdpAccountant.GetEpsilon(1, z, delta, m.Round), m.Privacy!.Epsilon!.Value, 12);
            Assert.Equal((z, 0.5, 1.0, delta), (m.Privacy.NoiseMultiplier, m.Privacy.ClipNorm, m.Privacy.SampleRate, m.Privacy.Delta));
            Assert.All(m.Participants, p => Assert.Equal(1.0 / 3, p.Weight!.Value, 12));
        }

        Assert.Equal(eps3, outcome.Epsilon!.Value, 12);
        Assert.True(eps3 <= budget && eps4 > budget);
    }

    [Fact]
    public async Task Audit_AfterARun_VerifiesAndDetectsAModifiedAndARemovedEntry()
    {
        await using var h = await ApiHarness.StartAsync();
        await h.StartAsync(ApiHarness.SpecJson("audited", rounds: 3));
        await h.WaitAsync("audited");

        var report = Assert.IsType<AuditReport>((await h.Api.AuditAsync(h.Client, "audited", default)).Body);
        Assert.True(report.Verification.IsValid, report.Verification.Detail);
        Assert.Equal(9, report.Entries.Count); // 3 rounds × 3 silos' updates
        Assert.All(report.Entries, e => Assert.Equal(AuditKinds.Update, e.Kind));
        Assert.Equal(report.Entries[^1].Hash, report.AnchoredHead);
        var manifests = await h.Store.ListAsync("checkpoints", "audited", default);
        Assert.Equal(
            manifests.Skip(1).SelectMany(m => m.Participants.Select(p => p.UpdateSha256)).Order(),
            report.Entries.Select(e => e.Sha256).Order());

        // A modified entry: round 2's blob with one silo id changed.
        var round2 = h.Blobs.Items.Keys.Single(k => k.EndsWith(BlobLayout.Audit("audited", 2), StringComparison.Ordinal));
        var original = h.Blobs.Items[round2];
        h.Blobs.Items[round2] = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(original).Replace("\"bytes\":", "\"bytes\":1", StringComparison.Ordinal));
        var modified = (AuditReport)(await h.Api.AuditAsync(h.Client, "audited", default)).Body!;
        Assert.False(modified.Verification.IsValid);
        Assert.Equal(AuditFailureReasons.HashMismatch, modified.Verification.Reason);
        Assert.Equal(3, modified.Verification.FirstBadIndex);

        // A removed entry: the first line of round 2 dropped.
        var text = Encoding.UTF8.GetString(original);
        h.Blobs.Items[round2] = Encoding.UTF8.GetBytes(text[(text.IndexOf('\n', StringComparison.Ordinal) + 1)..]);
        var removed = (AuditReport)(await h.Api.AuditAsync(h.Client, "audited", default)).Body!;
        Assert.False(removed.Verification.IsValid);
        Assert.Equal(AuditFailureReasons.ChainBroken, removed.Verification.Reason);

        // The last round's blob removed entirely: only the anchored head shows it.
        h.Blobs.Items[round2] = original;
        Assert.True(h.Blobs.Items.TryRemove(h.Blobs.Items.Keys.Single(k => k.EndsWith(BlobLayout.Audit("audited", 3), StringComparison.Ordinal)), out _));
        var truncated = (AuditReport)(await h.Api.AuditAsync(h.Client, "audited", default)).Body!;
        Assert.False(truncated.Verification.IsValid);
        Assert.Equal(AuditFailureReasons.HeadMismatch, truncated.Verification.Reason);
    }
}
