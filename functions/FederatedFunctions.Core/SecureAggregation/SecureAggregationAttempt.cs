namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>
/// One attempt of a secure-aggregation round: the silos that took part in its key exchange, and the pure
/// decision of what to do with the masked updates that arrived.
/// </summary>
/// <remarks>
/// <para>
/// <b>Dropout handling: redo without the dropped silo.</b> The pairwise masks of an attempt cancel only when every
/// silo of its key exchange contributes. If one did not deliver, <see cref="Combine"/> discards the attempt's masked
/// updates and returns the next attempt (<see cref="MaskingContext.Attempt"/> + 1) over the survivors, who generate
/// fresh key pairs and mask their updates again. Because the attempt number is in every seed's HKDF info and every
/// key pair serves one attempt only, no mask of one attempt ever reappears in another: the discarded masked updates
/// and the new ones are independent one-time pads.
/// </para>
/// <para>
/// <b>Why the dropped silo's masks are not recovered instead.</b> Bonawitz et al. let the survivors reveal their
/// pairwise seeds with the dropped silo so the aggregator can strip those masks from the survivors' sum. Without the
/// protocol's secret-shared self-mask (not implemented here), that is unsafe: a silo that is merely late, not gone,
/// may still deliver its masked update, and the aggregator, now holding every one of its pairwise seeds, could
/// unmask that single update in the clear. Redoing costs a round trip, but no seed ever leaves a silo.
/// </para>
/// <para>
/// The type is pure and deterministic (no I/O, no clock, no randomness), so an orchestrator can call it on replay;
/// it holds only silo ids and the context, never keys or seeds. Updates labelled with another attempt are ignored
/// and reported, never summed. An attempt needs at least <see cref="MinimumParticipants"/> silos (never fewer than 2:
/// a single masked update has no pairwise mask and would be the silo's update in the clear).
/// </para>
/// </remarks>
public sealed class SecureAggregationAttempt
{
    /// <summary>The fewest participants any attempt may have.</summary>
    public const int AbsoluteMinimumParticipants = 2;

    /// <summary>Creates an attempt.</summary>
    /// <param name="context">Run, round and attempt number.</param>
    /// <param name="participants">The silos whose public keys form this attempt's key exchange.</param>
    /// <param name="minimumParticipants">Fewest silos an attempt may have; at least 2.</param>
    /// <exception cref="ArgumentException">Empty or duplicate silo ids, or fewer participants than the minimum.</exception>
    public SecureAggregationAttempt(MaskingContext context, IEnumerable<string> participants, int minimumParticipants = AbsoluteMinimumParticipants)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(participants);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumParticipants, AbsoluteMinimumParticipants);

        var sorted = participants.ToArray();
        if (sorted.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("Silo ids must not be empty.", nameof(participants));
        }

        Array.Sort(sorted, StringComparer.Ordinal);
        for (var i = 1; i < sorted.Length; i++)
        {
            if (string.Equals(sorted[i - 1], sorted[i], StringComparison.Ordinal))
            {
                throw new ArgumentException($"Silo '{sorted[i]}' is listed twice.", nameof(participants));
            }
        }

        if (sorted.Length < minimumParticipants)
        {
            throw new ArgumentException(
                $"Secure aggregation needs at least {minimumParticipants} silos; got {sorted.Length}.", nameof(participants));
        }

        Context = context;
        Participants = sorted;
        MinimumParticipants = minimumParticipants;
    }

    /// <summary>Run, round and attempt number.</summary>
    public MaskingContext Context { get; }

    /// <summary>The silos of the attempt's key exchange, in ordinal order.</summary>
    public IReadOnlyList<string> Participants { get; }

    /// <summary>Fewest silos an attempt may have.</summary>
    public int MinimumParticipants { get; }

    /// <summary>The first attempt (attempt 0) of a round.</summary>
    /// <exception cref="ArgumentException">See the constructor.</exception>
    public static SecureAggregationAttempt First(string runId, int round, IEnumerable<string> participants, int minimumParticipants = AbsoluteMinimumParticipants) =>
        new(new MaskingContext(runId, round, 0), participants, minimumParticipants);

    /// <summary>Decides the attempt from the masked updates that arrived by its deadline.</summary>
    /// <returns>
    /// <see cref="SecureAggregationStatus.Complete"/> with the unmasked sum when every participant delivered;
    /// otherwise <see cref="SecureAggregationStatus.Redo"/> with the dropped silos and the next attempt over the
    /// survivors; or <see cref="SecureAggregationStatus.Failed"/> when too few survive. Updates from silos outside
    /// the attempt, or labelled with another context, are listed in <see cref="SecureAggregationOutcome.Ignored"/>.
    /// </returns>
    /// <exception cref="ArgumentException">
    /// Two updates from one silo for this attempt (a mask must pad one vector only), or updates of different lengths.
    /// </exception>
    public SecureAggregationOutcome Combine(IEnumerable<MaskedUpdate> received)
    {
        ArgumentNullException.ThrowIfNull(received);
        var members = Participants.ToHashSet(StringComparer.Ordinal);
        var accepted = new Dictionary<string, uint[]>(StringComparer.Ordinal);
        var ignored = new List<string>();
        int? length = null;
        foreach (var update in received)
        {
            ArgumentNullException.ThrowIfNull(update);
            if (!members.Contains(update.SiloId) || update.Context != Context)
            {
                ignored.Add(update.SiloId);
                continue;
            }

            if (!accepted.TryAdd(update.SiloId, update.Values))
            {
                throw new ArgumentException(
                    $"Silo '{update.SiloId}' delivered two masked updates for attempt {Context.Attempt}; a silo masks exactly one update per attempt.",
                    nameof(received));
            }

            length ??= update.Values.Length;
            if (update.Values.Length != length)
            {
                throw new ArgumentException(
                    $"Masked update of silo '{update.SiloId}' has {update.Values.Length} elements; others have {length}.", nameof(received));
            }
        }

        return Conclude(accepted.Keys.ToHashSet(StringComparer.Ordinal), ignored, () => Sum(accepted, length ?? 0));
    }

    /// <summary>Decides the attempt from the ids of the silos whose masked updates arrived, without their values.</summary>
    /// <remarks>
    /// What an orchestrator calls: it holds references, never ring elements. The outcome is the one
    /// <see cref="Combine"/> would give for updates from those silos, with a null <see cref="SecureAggregationOutcome.Sum"/>.
    /// </remarks>
    /// <exception cref="ArgumentException">A silo listed twice.</exception>
    public SecureAggregationOutcome Decide(IEnumerable<string> delivered)
    {
        ArgumentNullException.ThrowIfNull(delivered);
        var members = Participants.ToHashSet(StringComparer.Ordinal);
        var arrived = new HashSet<string>(StringComparer.Ordinal);
        var ignored = new List<string>();
        foreach (var silo in delivered)
        {
            if (!members.Contains(silo))
            {
                ignored.Add(silo);
            }
            else if (!arrived.Add(silo))
            {
                throw new ArgumentException($"Silo '{silo}' is listed twice; a silo masks exactly one update per attempt.", nameof(delivered));
            }
        }

        return Conclude(arrived, ignored, () => null);
    }

    private SecureAggregationOutcome Conclude(HashSet<string> arrived, List<string> ignored, Func<uint[]?> sum)
    {
        ignored.Sort(StringComparer.Ordinal);
        var dropped = Participants.Where(p => !arrived.Contains(p)).ToArray();
        if (dropped.Length == 0)
        {
            return new SecureAggregationOutcome(SecureAggregationStatus.Complete, sum(), Participants, [], ignored, null, null);
        }

        var survivors = Participants.Where(arrived.Contains).ToArray();
        if (survivors.Length < MinimumParticipants)
        {
            return new SecureAggregationOutcome(
                SecureAggregationStatus.Failed, null, survivors, dropped, ignored, null,
                $"Only {survivors.Length} of {Participants.Count} silos delivered a masked update; secure aggregation needs at least {MinimumParticipants}.");
        }

        var next = new SecureAggregationAttempt(Context.NextAttempt(), survivors, MinimumParticipants);
        return new SecureAggregationOutcome(
            SecureAggregationStatus.Redo, null, survivors, dropped, ignored, next,
            $"{dropped.Length} silo(s) took part in the key exchange but delivered no masked update; the attempt's updates are discarded and attempt {next.Context.Attempt} runs without them.");
    }

    private uint[] Sum(Dictionary<string, uint[]> accepted, int length)
    {
        var sum = new uint[length];
        foreach (var silo in Participants)
        {
            var values = accepted[silo];
            for (var k = 0; k < length; k++)
            {
                sum[k] = unchecked(sum[k] + values[k]);
            }
        }

        return sum;
    }
}

/// <summary>What became of one attempt of secure aggregation.</summary>
public enum SecureAggregationStatus
{
    /// <summary>Every participant delivered; <see cref="SecureAggregationOutcome.Sum"/> is the unmasked sum.</summary>
    Complete,

    /// <summary>Some participants dropped; run <see cref="SecureAggregationOutcome.NextAttempt"/> with fresh key pairs.</summary>
    Redo,

    /// <summary>Too few participants survived for another attempt.</summary>
    Failed,
}

/// <summary>The decision of <see cref="SecureAggregationAttempt.Combine"/>.</summary>
/// <remarks>Holds silo ids and, when complete, the sum of quantized updates; nothing that unmasks an individual update.</remarks>
/// <param name="Status">What happened.</param>
/// <param name="Sum">The unmasked sum mod 2^32 when <see cref="SecureAggregationStatus.Complete"/>; decode it with <see cref="FixedPoint.Dequantize"/>.</param>
/// <param name="Contributors">Silos whose updates arrived for this attempt (in the sum when complete), in ordinal order.</param>
/// <param name="Dropped">Participants that delivered nothing, in ordinal order.</param>
/// <param name="Ignored">Silos of updates that belong to no participant of this attempt or carry another attempt's masks, in ordinal order.</param>
/// <param name="NextAttempt">The attempt to run next when <see cref="SecureAggregationStatus.Redo"/>.</param>
/// <param name="Detail">Human-readable explanation when not complete.</param>
public sealed record SecureAggregationOutcome(
    SecureAggregationStatus Status,
    uint[]? Sum,
    IReadOnlyList<string> Contributors,
    IReadOnlyList<string> Dropped,
    IReadOnlyList<string> Ignored,
    SecureAggregationAttempt? NextAttempt,
    string? Detail);
