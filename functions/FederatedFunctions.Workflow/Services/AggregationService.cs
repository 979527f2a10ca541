using System.Globalization;
using FederatedFunctions.Core.Privacy;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Strategies;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Contracts;
using FederatedFunctions.Workflow.Telemetry;
using Microsoft.Extensions.Logging;

namespace FederatedFunctions.Workflow.Services;

/// <summary>Aggregates one round: checks every update, streams the accepted ones into one accumulator, writes the model.</summary>
/// <remarks>
/// Updates are read in silo-id order (<see cref="VirtualSilos.IdOrder"/>), so the result is bit-identical for the same inputs and
/// peak memory is about two sums, one template, the update being added and at most max(one update, 64 MiB) of downloads
/// ahead (<see cref="PrefetchBytes"/>), whatever the number of silos. In the aggregating pass, updates of models larger
/// than 8 MiB are read as streams instead, up to <see cref="StreamedWindow"/> side by side, and held as two 256 KiB pieces
/// each; the measuring pass (eyes-off, norm screen) and DP-clipped updates still hold whole updates within that budget.
/// An update is checked completely (size, SHA-256, format, keys, shapes, dtypes, finiteness) before it counts, and, when the
/// spec sets <c>robustness.maxNormRatio</c>, screened by <see cref="NormScreen"/> in a first pass over the round's updates;
/// a refused update is returned with its reason, never dropped silently.
/// </remarks>
public sealed partial class AggregationService(ICheckpointStore checkpoints, IUpdateStore updates, ITensorEngine tensors, ILogger<AggregationService> logger)
{
    /// <summary>Largest example count a silo may claim (2⁵³): more could overflow the weighted sums.</summary>
    public const long MaxExamples = 1L << 53;

    /// <summary>Reason detail shown instead of a value derived from silo data, in eyes-off mode.</summary>
    public const string WithheldDetail = "details withheld in eyes-off mode";

    /// <summary>Aggregates the round described by <paramref name="request"/>.</summary>
    /// <exception cref="NoAcceptedUpdatesException">Every update was refused.</exception>
    public Task<AggregateResult> AggregateAsync(AggregateRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var scope = new AggregationScope(request.RunId, request.Round, request.Privacy?.Mode ?? PrivacyModes.EyesOn, "aggregate", request.Updates.Count, request.Updates.Sum(u => u.Update.Bytes));
        return FederatedTelemetry.AggregateAsync(scope, () => AggregateRoundAsync(request, cancellationToken), r => (r.Participants.Count, r.Rejected.Count));
    }

    private async Task<AggregateResult> AggregateRoundAsync(AggregateRequest request, CancellationToken cancellationToken)
    {
        var strategy = StrategyCatalog.Create(request.Strategy, request.Privacy, request.MaxNormRatio);
        var eyesOff = request.Privacy?.Mode == PrivacyModes.EyesOff;
        var dp = request.Privacy?.DifferentialPrivacy;
        var rejected = new List<RejectedUpdate>();
        var candidates = new List<Candidate>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var u in request.Updates.OrderBy(u => u.SiloId, VirtualSilos.IdOrder))
        {
            if (u.Round != request.Round)
            {
                rejected.Add(new RejectedUpdate(u.SiloId, "wrong-round", $"update is for round {u.Round}, not {request.Round}"));
            }
            else if (!eyesOff && u.Examples is not (> 0 and <= MaxExamples))
            {
                rejected.Add(new RejectedUpdate(u.SiloId, "bad-example-count", $"example count {u.Examples?.ToString(CultureInfo.InvariantCulture) ?? "missing"} is not positive"));
            }
            else if (seen.Contains(u.SiloId))
            {
                rejected.Add(new RejectedUpdate(u.SiloId, "duplicate", "a second update from the same silo"));
            }
            else if (!OwnOutbox(u))
            {
                // Only a virtual silo's update lives in another silo's outbox (its host's), and only such an update is a slice.
                rejected.Add(new RejectedUpdate(u.SiloId, "wrong-outbox", $"the update names the outbox of '{u.Host}' or a slice of a blob, which only a virtual silo of that host may"));
            }
            else
            {
                candidates.Add(new Candidate(u, u.Examples ?? 0, u.Loss ?? 0, double.NaN));
                seen.Add(u.SiloId);
            }
        }

        // A streaming pass that measures nothing first starts its downloads while the global model downloads. Updates of a
        // large model are read as streams instead, several at once (Streamed).
        var measure = eyesOff || strategy.NeedsDistances;
        var streamed = Streamed(request.GlobalModel.Bytes);
        await using var early = strategy.Mode == AggregationMode.Streaming && !measure && !streamed ? new Downloads(updates, request, candidates, cancellationToken) : null;
        early?.Fill(held: 1);

        // The global model is the template every update must match, the point distances are taken from, and (with DP)
        // what clipped updates are pulled back towards.
        var global = Safetensors.Parse(await checkpoints.ReadModelAsync(request.GlobalModel, cancellationToken).ConfigureAwait(false)).Tensors;
        using var aggregator = tensors.CreateAccumulator(global);
        if (measure)
        {
            candidates = await MeasureAsync(request, aggregator, global, candidates, eyesOff, strategy.NeedsDistances, rejected, cancellationToken).ConfigureAwait(false);
        }

        if (strategy.NeedsDistances)
        {
            candidates = Screen(request, strategy, candidates, eyesOff, rejected);
        }

        IReadOnlyList<NamedTensor> result;
        List<Candidate> accepted;
        IReadOnlyList<double>? shares;
        if (strategy.Mode == AggregationMode.Buffered)
        {
            (result, accepted, shares) = await CombineAsync(request, strategy, aggregator, candidates, eyesOff, rejected, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await using var downloads = early is null && !streamed ? new Downloads(updates, request, candidates, cancellationToken) : null;
            (result, accepted, shares) = await StreamAsync(request, strategy, aggregator, global, candidates, early ?? downloads, eyesOff, rejected, cancellationToken).ConfigureAwait(false);
        }

        if (accepted.Count == 0 || accepted.Count < request.MinAccepted)
        {
            var what = accepted.Count == 0 ? "no update to aggregate" : $"only {accepted.Count} accepted update(s), below the minimum of {request.MinAccepted}";
            throw new NoAcceptedUpdatesException(
                $"Round {request.Round} of run '{request.RunId}' has {what}: " +
                (rejected.Count == 0 ? "no silo reported one." : string.Join("; ", rejected.Select(r => $"{r.SiloId}: {r.Reason} ({r.Detail})"))));
        }

        result = strategy.Release(result, global, accepted.Count, Math.Max(request.Sampled, accepted.Count));
        var (next, state) = await ServerStep.ApplyAsync(checkpoints, strategy, request.Container, request.RunId, request.Round, global, result, request.Frozen, request.StrategyState, firstWriterWins: dp is not null, release: null, cancellationToken).ConfigureAwait(false);
        var bytes = Safetensors.Serialize(next, ModelMetadata(request.RunId, request.Round, strategy.Name, dp));
        // With DP a re-execution draws other noise: the first model written is the one the run keeps.
        var model = await checkpoints.PutModelAsync(request.Container, request.RunId, request.Round, bytes, firstWriterWins: dp is not null, cancellationToken).ConfigureAwait(false);

        var fits = accepted.Select(a => new FitOutcome(a.Update.SiloId, a.Examples, a.Loss)).ToArray();
        var participants = accepted.Select((a, i) => eyesOff
            ? new Participant(a.Update.SiloId, null, a.Update.Update.Sha256, null)
            : new Participant(a.Update.SiloId, a.Examples, a.Update.Update.Sha256, shares?[i])).ToArray();
        var minimum = request.Privacy?.MinAggregateSilos ?? 1;
        // Eyes-off: no loss over fewer than the minimum silos, and no example total at all (it goes into history, and
        // totals over rounds with different participants would give each silo's count by subtraction).
        var fit = !eyesOff ? strategy.AggregateFit(fits) : accepted.Count < minimum ? null : strategy.AggregateFit(fits) with { Examples = 0 };
        LogAggregated(logger, request.RunId, request.Round, participants.Length, rejected.Count, model.Sha256);
        return new AggregateResult(model, participants, rejected, fit, state);
    }

    // Streaming: the accepted updates, each weighted by the strategy (and scaled by its clip), added to one accumulator.
    // Small models: each update downloaded whole, the next ones downloading meanwhile (Downloads), and added with those
    // behind it that have already downloaded, in one pass over the sum; memory stays the accumulator and at most
    // max(one update, 64 MiB) of downloads beside the update being added, plus one range read (up to UpdateReads.RunBytes,
    // 32 MiB) that virtual silos' slices of one blob share until the last of them is taken. Large models (no `downloads`):
    // windows of up to StreamedWindow updates read as streams side by side, one pass over the sum per window, memory two
    // pieces per update (TryStreamAsync); a window refused anywhere is read again whole, each update with its own verdict.
    private async Task<(IReadOnlyList<NamedTensor> Result, List<Candidate> Accepted, IReadOnlyList<double>? Shares)> StreamAsync(
        AggregateRequest request, IFederatedStrategy strategy, IModelAccumulator aggregator, IReadOnlyList<NamedTensor> global, List<Candidate> candidates, Downloads? downloads, bool eyesOff, List<RejectedUpdate> rejected, CancellationToken cancellationToken)
    {
        var weights = candidates.Count == 0 ? [] : strategy.AggregationWeights(Fits(candidates));
        var accepted = new List<Candidate>();
        if (downloads is not null)
        {
            await AddDownloadedAsync(request, strategy, aggregator, global, candidates, 0, candidates.Count, weights, downloads, eyesOff, rejected, accepted, cancellationToken).ConfigureAwait(false);
            return Finish(accepted);
        }

        for (var i = 0; i < candidates.Count;)
        {
            // A window of unclipped updates, or the run of clipped ones that starts here (each clipped add pairs with the
            // global model's, so they are read whole, one downloading while the one before it is added).
            var end = i + 1;
            var clip = strategy.ClipScale(candidates[i].Distance);
            while (end < candidates.Count && (clip >= 1
                ? end - i < StreamedWindow && strategy.ClipScale(candidates[end].Distance) >= 1
                : strategy.ClipScale(candidates[end].Distance) < 1))
            {
                end++;
            }

            if (clip >= 1 && await TryStreamAsync(request, aggregator, candidates, i, end, weights, last: end == candidates.Count, eyesOff, cancellationToken).ConfigureAwait(false))
            {
                accepted.AddRange(candidates.GetRange(i, end - i));
            }
            else
            {
                await using var whole = new Downloads(updates, request, candidates.GetRange(i, end - i), cancellationToken);
                await AddDownloadedAsync(request, strategy, aggregator, global, candidates, i, end, weights, whole, eyesOff, rejected, accepted, cancellationToken).ConfigureAwait(false);
            }

            i = end;
        }

        return Finish(accepted);

        // The mean in the aggregator's own sums (no copy of it before the file is serialized), readable until
        // AggregateRoundAsync disposes the aggregator, after the model is written.
        (IReadOnlyList<NamedTensor>, List<Candidate>, IReadOnlyList<double>?) Finish(List<Candidate> added) =>
            added.Count == 0 ? ([], added, null) : (aggregator.MeanInPlace(), added, strategy.AggregationWeights(Fits(added)));
    }

    // Candidates [from, to), downloaded whole by `downloads` (which reads exactly those, in order), each checked and added or refused.
    private async Task AddDownloadedAsync(
        AggregateRequest request, IFederatedStrategy strategy, IModelAccumulator aggregator, IReadOnlyList<NamedTensor> global, List<Candidate> candidates, int from, int to, IReadOnlyList<double> weights, Downloads downloads, bool eyesOff, List<RejectedUpdate> rejected, List<Candidate> accepted, CancellationToken cancellationToken)
    {
        for (var i = from; i < to;)
        {
            cancellationToken.ThrowIfCancellationRequested();

            // Refilled now that the last window's updates are let go, so downloads keep going while the next is awaited.
            downloads.Fill(held: 1);

            // The next update, with those after it already downloaded (and not clipped, whose adds pair with the
            // global model's): added together, with one pass over the sum instead of one each.
            var clip = strategy.ClipScale(candidates[i].Distance);
            var ready = new List<(SafetensorsFile? File, RejectedUpdate? Refusal)> { await downloads.NextAsync().ConfigureAwait(false) };
            while (clip >= 1 && i + ready.Count < to
                && strategy.ClipScale(candidates[i + ready.Count].Distance) >= 1
                && downloads.TryTakeDownloaded(out var next))
            {
                ready.Add(next);
            }

            downloads.Fill(ready.Count);
            var refusals = TryAdd(aggregator, candidates, i, ready, weights, clip);
            for (var r = 0; r < ready.Count; r++, i++)
            {
                if (refusals[r] is { } refusal)
                {
                    Refuse(request, refusal, eyesOff, rejected);
                    continue;
                }

                if (clip < 1)
                {
                    // global + clip·(update − global) = clip·update + (1 − clip)·global.
                    aggregator.Add(global, weights[i] * (1 - clip));
                }

                accepted.Add(candidates[i]);
            }
        }
    }

    /// <summary>Most updates read as streams side by side, with one pass over the sum, when the model is large (<see cref="Streamed"/>).</summary>
    public const int StreamedWindow = 8;

    // Updates of models too large for a window of whole downloads within PrefetchBytes are read as streams.
    internal static bool Streamed(long modelBytes) => PrefetchWindow(modelBytes) < StreamedWindow;

    // Candidates [from, to) read as streams side by side and added in one pass over the sum (IModelAccumulator.TryAddStreamedAsync),
    // each stream hashed as it is read and checked against its reference before the window counts. False, with nothing
    // added, at the first thing wrong with any of them (missing, malformed header, another layout, a NaN, short, another
    // hash, a download that broke off on the way): the caller then reads the window whole, which refuses the culprit with
    // its reason and adds the others. The last window (`last`, no candidate after it) writes the mean as it sums, when it counts.
    private async Task<bool> TryStreamAsync(AggregateRequest request, IModelAccumulator aggregator, List<Candidate> candidates, int from, int to, IReadOnlyList<double> weights, bool last, bool eyesOff, CancellationToken cancellationToken)
    {
        using var opens = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var opening = candidates.GetRange(from, to - from).Select(c => OpenCheckedAsync(c.Update, opens.Token)).ToArray();
        var streams = new List<CheckedUpdateStream>();
        try
        {
            foreach (var open in opening)
            {
                if (await open.ConfigureAwait(false) is not { } stream)
                {
                    return false;
                }

                streams.Add(stream);
            }

            SafetensorsLayout? layout = null;
            foreach (var stream in streams)
            {
                var own = await stream.ReadLayoutAsync(cancellationToken).ConfigureAwait(false);
                if (own is null || (layout is not null && !layout.SameTensors(own)))
                {
                    return false;
                }

                layout ??= own;
            }

            return await aggregator.TryAddStreamedAsync(
                layout!,
                [.. streams.Select((s, j) => new StreamedUpdate(s, weights[from + j]))],
                async ct =>
                {
                    var verified = true;
                    foreach (var stream in streams)
                    {
                        verified &= await stream.VerifyAsync(ct).ConfigureAwait(false);
                    }

                    return verified;
                },
                last,
                cancellationToken).ConfigureAwait(false);
        }
        catch (UpdateDownloadException ex)
        {
            // A download that broke off on the way (after the SDK's own retries): nothing of the window was added, and
            // reading it whole either succeeds or refuses the update as a whole read would (missing). Anything else that
            // fails here is a fault of this process, and fails the activity. Logged, so that downloads that keep breaking
            // off do not go unseen; in eyes-off mode without the storage's message.
            LogStreamFailed(logger, request.RunId, request.Round, candidates[from].Update.SiloId, candidates[to - 1].Update.SiloId, ex.InnerException!.GetType().Name, eyesOff ? WithheldDetail : ex.InnerException.Message);
            return false;
        }
        finally
        {
            // Every stream opened is closed, including those opened after one failed to (whose opening is stopped).
            await opens.CancelAsync().ConfigureAwait(false);
            foreach (var open in opening)
            {
                try
                {
                    (await open.ConfigureAwait(false))?.Dispose();
                }
                catch (Exception)
                {
                    // Its failure is reported by the whole read that follows, or the window already failed with its own.
                }
            }
        }
    }

    private async Task<CheckedUpdateStream?> OpenCheckedAsync(SiloUpdate update, CancellationToken cancellationToken)
    {
        try
        {
            var download = await updates.OpenUpdateAsync(update.Host ?? update.SiloId, update.Update, update.Offset, cancellationToken).ConfigureAwait(false);
            return new CheckedUpdateStream(download, update.Update);
        }
        catch (UpdateUnavailableException)
        {
            return null;
        }
    }

    /// <summary>The streaming pass's downloads, in the candidates' order, a window ahead of the update being added.</summary>
    /// <remarks>Disposing stops the downloads still going and waits for them to end, observing their faults.</remarks>
    private sealed class Downloads : IAsyncDisposable
    {
        private readonly CancellationTokenSource reads;
        private readonly UpdateReads pass;
        private readonly int count;
        private readonly int window;
        private readonly Queue<Task<(SafetensorsFile? File, RejectedUpdate? Refusal)>> downloading = new();
        private int issued;

        public Downloads(IUpdateStore updates, AggregateRequest request, List<Candidate> candidates, CancellationToken cancellationToken)
        {
            reads = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            pass = new UpdateReads(updates, candidates.Select(c => c.Update).ToArray(), reads.Token);
            count = candidates.Count;
            window = PrefetchWindow(request.GlobalModel.Bytes);
        }

        /// <summary>Starts downloads until the window is full; the updates held for adding count against it too, so memory stays what one at a time takes.</summary>
        public void Fill(int held)
        {
            while (issued < count && downloading.Count + held - 1 < window)
            {
                downloading.Enqueue(ReadCheckedAsync(pass, issued++));
            }
        }

        /// <summary>The next update in order, once downloaded and checked.</summary>
        public Task<(SafetensorsFile? File, RejectedUpdate? Refusal)> NextAsync() => downloading.Dequeue();

        /// <summary>The next update in order if its download has already ended.</summary>
        public bool TryTakeDownloaded(out (SafetensorsFile? File, RejectedUpdate? Refusal) next)
        {
            if (downloading.TryPeek(out var head) && head.IsCompletedSuccessfully)
            {
                next = downloading.Dequeue().Result;
                return true;
            }

            next = default;
            return false;
        }

        public async ValueTask DisposeAsync()
        {
            // Left early (cancelled, the global model unreadable, an add threw): stop the downloads in flight and observe their end.
            if (downloading.Count > 0)
            {
                await reads.CancelAsync().ConfigureAwait(false);
                foreach (var download in downloading)
                {
                    try
                    {
                        await download.ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        // Whatever ended it, the aggregation itself is already failing with its own exception.
                    }
                }
            }

            reads.Dispose();
        }
    }

    /// <summary>Bytes of updates the streaming aggregation downloads ahead of the one it adds; at least one update always.</summary>
    public const long PrefetchBytes = 64L * 1024 * 1024;

    /// <summary>Most updates downloaded ahead at once, however small.</summary>
    public const int MaxPrefetch = 8;

    // How many updates download while one is added: one for models of 64 MiB or more (memory: two updates), up to eight
    // small ones, whose downloads are bound by round trips rather than bytes. Sized by the global model, which every
    // accepted update matches, not by the sizes the silos report.
    internal static int PrefetchWindow(long modelBytes) => (int)Math.Clamp(PrefetchBytes / Math.Max(1, modelBytes), 1, MaxPrefetch);

    // Buffered: every accepted update held at once, for a strategy that needs them together (median, trimmed mean, Krum).
    private async Task<(IReadOnlyList<NamedTensor> Result, List<Candidate> Accepted, IReadOnlyList<double>? Shares)> CombineAsync(
        AggregateRequest request, IFederatedStrategy strategy, IModelAccumulator aggregator, List<Candidate> candidates, bool eyesOff, List<RejectedUpdate> rejected, CancellationToken cancellationToken)
    {
        var accepted = new List<Candidate>();
        var held = new List<IReadOnlyList<NamedTensor>>();
        var pass = new UpdateReads(updates, candidates.Select(c => c.Update).ToArray(), cancellationToken);
        for (var i = 0; i < candidates.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var candidate = candidates[i];
            var (file, refusal) = await ReadCheckedAsync(pass, i).ConfigureAwait(false);
            var check = file is null ? null : aggregator.Validate(file.Tensors);
            refusal ??= check is { Accepted: false } ? new RejectedUpdate(candidate.Update.SiloId, check.Reason ?? "invalid", check.Detail ?? "rejected by the aggregator") : null;
            if (refusal is not null)
            {
                Refuse(request, refusal, eyesOff, rejected);
                continue;
            }

            accepted.Add(candidate);
            held.Add(file!.Tensors);
        }

        if (accepted.Count == 0)
        {
            return ([], accepted, null);
        }

        var combined = strategy.Combine(held, Fits(accepted));
        return (combined.Model, accepted, combined.Weights);
    }

    private static FitOutcome[] Fits(IEnumerable<Candidate> candidates) =>
        candidates.Select(c => new FitOutcome(c.Update.SiloId, c.Examples, c.Loss)).ToArray();

    private void Refuse(AggregateRequest request, RejectedUpdate refusal, bool eyesOff, List<RejectedUpdate> rejected)
    {
        refusal = eyesOff ? Withhold(refusal) : refusal;
        LogRejected(logger, request.RunId, request.Round, refusal.SiloId, refusal.Reason, refusal.Detail);
        rejected.Add(refusal);
    }

    /// <summary>The metadata of a round's model: run, round, strategy, and the DP parameters when noise was added.</summary>
    internal static Dictionary<string, string> ModelMetadata(string runId, int round, string strategy, DifferentialPrivacySpec? dp)
    {
        var metadata = new Dictionary<string, string>
        {
            ["run_id"] = runId,
            ["round"] = round.ToString(CultureInfo.InvariantCulture),
            ["strategy"] = strategy,
        };
        if (dp is not null)
        {
            metadata["dp_noise_multiplier"] = dp.NoiseMultiplier.ToString("R", CultureInfo.InvariantCulture);
            metadata["dp_clip_norm"] = dp.ClipNorm.ToString("R", CultureInfo.InvariantCulture);
        }

        return metadata;
    }

    // Sizes and hashes of what was read are withheld too: a silo that names another blob would learn them from the manifest.
    private static RejectedUpdate Withhold(RejectedUpdate r) =>
        r.Reason is "non-finite" or "norm-outlier" or "bad-example-count" or "truncated" or "sha256-mismatch" ? r with { Detail = WithheldDetail } : r;

    // A silo's update is read from its own outbox; a virtual silo's from its host's, whole or as a slice.
    private static bool OwnOutbox(SiloUpdate u) =>
        u.Host is null ? u.Offset is null : VirtualSilos.TryParse(u.SiloId, out var host, out _) && host == u.Host;

    // The measuring pass: every update is read and checked once; its example count and loss are taken from its metadata
    // when the silo did not report them (eyes-off), and its distance from the global model is measured when needed.
    // The aggregating pass reads the survivors again and checks them again, so an update changed between the two reads
    // is refused rather than aggregated unmeasured. The next updates download while one is measured, within the streaming
    // pass's budget (Downloads): memory stays the update measured and max(one update, 64 MiB) of downloads.
    private async Task<List<Candidate>> MeasureAsync(
        AggregateRequest request, IModelAccumulator aggregator, IReadOnlyList<NamedTensor> global, List<Candidate> candidates, bool eyesOff, bool distance, List<RejectedUpdate> rejected, CancellationToken cancellationToken)
    {
        var measured = new List<Candidate>();
        await using var downloads = new Downloads(updates, request, candidates, cancellationToken);
        for (var i = 0; i < candidates.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var candidate = candidates[i];
            downloads.Fill(held: 1);
            var (file, refusal) = await downloads.NextAsync().ConfigureAwait(false);
            downloads.Fill(held: 1);
            var check = file is null ? null : aggregator.Validate(file.Tensors);
            refusal ??= check is { Accepted: false } ? new RejectedUpdate(candidate.Update.SiloId, check.Reason ?? "invalid", check.Detail ?? "rejected by the aggregator") : null;
            var (examples, loss) = (candidate.Examples, candidate.Loss);
            if (refusal is null && candidate.Update.Examples is null)
            {
                if (file!.Metadata.TryGetValue(UpdateMetadata.Examples, out var e) && long.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out examples) && examples is > 0 and <= MaxExamples)
                {
                    loss = file.Metadata.TryGetValue(UpdateMetadata.Loss, out var l) && UpdateMetadata.TryParseLoss(l, out var parsed) ? parsed : 0;
                }
                else
                {
                    refusal = new RejectedUpdate(candidate.Update.SiloId, "bad-example-count", "the update carries no positive example count");
                }
            }

            if (refusal is not null)
            {
                Refuse(request, refusal, eyesOff, rejected);
                continue;
            }

            measured.Add(new Candidate(candidate.Update, examples, loss, distance ? TensorMath.L2Distance(file!.Tensors, global) : double.NaN));
        }

        return measured;
    }

    // The strategy's screen (the norm screen wrapper) on the measured distances: each refusal is reported with why.
    private List<Candidate> Screen(AggregateRequest request, IFederatedStrategy strategy, List<Candidate> candidates, bool eyesOff, List<RejectedUpdate> rejected)
    {
        var refusals = strategy.Screen(candidates.Select(m => m.Distance).ToArray());
        var kept = new List<Candidate>();
        for (var i = 0; i < candidates.Count; i++)
        {
            if (refusals[i] is not { } detail)
            {
                kept.Add(candidates[i]);
                continue;
            }

            var refusal = new RejectedUpdate(candidates[i].Update.SiloId, "norm-outlier", detail);
            LogRejected(logger, request.RunId, request.Round, refusal.SiloId, refusal.Reason, eyesOff ? WithheldDetail : refusal.Detail);
            rejected.Add(eyesOff ? Withhold(refusal) : refusal);
        }

        return kept;
    }

    private sealed record Candidate(SiloUpdate Update, long Examples, double Loss, double Distance);

    // Adds the updates read for candidates first, first + 1, ... together (each weighted, the first scaled by its clip; a
    // window of several holds only unclipped ones); the refusal of each, or null when it was added.
    private static RejectedUpdate?[] TryAdd(IModelAccumulator aggregator, List<Candidate> candidates, int first, List<(SafetensorsFile? File, RejectedUpdate? Refusal)> reads, IReadOnlyList<double> weights, double clip)
    {
        var refusals = reads.Select(r => r.File is null ? r.Refusal : null).ToArray();
        var parsed = Enumerable.Range(0, reads.Count).Where(r => reads[r].File is not null).ToArray();
        var checks = aggregator.TryAddAll(parsed.Select(r => new WeightedUpdate(reads[r].File!.Tensors, weights[first + r] * clip)).ToArray());
        for (var c = 0; c < parsed.Length; c++)
        {
            if (!checks[c].Accepted)
            {
                refusals[parsed[c]] = new RejectedUpdate(candidates[first + parsed[c]].Update.SiloId, checks[c].Reason ?? "invalid", checks[c].Detail ?? "rejected by the aggregator");
            }
        }

        return refusals;
    }

    // Reads update `index` of a pass and checks what can be checked without the template: presence, size, SHA-256, format.
    private static async Task<(SafetensorsFile? File, RejectedUpdate? Refusal)> ReadCheckedAsync(UpdateReads pass, int index)
    {
        await Task.Yield();
        var (read, refusal) = await pass.ReadAsync(index).ConfigureAwait(false);
        if (read is not { } bytes)
        {
            return (null, refusal);
        }

        try
        {
            return (Safetensors.Parse(bytes), null);
        }
        catch (SafetensorsFormatException ex)
        {
            return (null, new RejectedUpdate(pass.SiloId(index), "malformed", ex.Message));
        }
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: update from {SiloId} rejected ({Reason}): {Detail}")]
    private static partial void LogRejected(ILogger logger, string runId, int round, string siloId, string reason, string detail);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Run {RunId} round {Round}: the updates from {FirstSiloId} to {LastSiloId}, read as streams, failed ({Error}: {Detail}); reading them whole")]
    private static partial void LogStreamFailed(ILogger logger, string runId, int round, string firstSiloId, string lastSiloId, string error, string detail);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Run {RunId} round {Round}: aggregated {Accepted} updates, rejected {Rejected}; model {Sha256}")]
    private static partial void LogAggregated(ILogger logger, string runId, int round, int accepted, int rejected, string sha256);
}
