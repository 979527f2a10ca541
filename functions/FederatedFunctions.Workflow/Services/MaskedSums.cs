using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Workflow.Services;

/// <summary>An attempt's masked vectors as the aggregator's side sums them.</summary>
/// <param name="Sum">The unmasked sum (self-masks removed); null when only checked, or refused.</param>
/// <param name="Contributors">The silos summed, when every silo of the key exchange delivered a valid masked vector.</param>
/// <param name="Refused">The silos whose masked vector is missing, altered, not the attempt's, or whose self-mask is missing.</param>
public sealed record MaskedSum(uint[]? Sum, IReadOnlyList<string> Contributors, IReadOnlyList<RejectedUpdate> Refused);

/// <summary>
/// The aggregator's side of every secure sum (a round's updates, its evaluation, an analysis's pass): read each masked
/// vector of an attempt from its silo's outbox, check it, add them up, and, once every contributor revealed its
/// self-mask, remove the self-masks.
/// </summary>
/// <remarks>
/// No silo's term is ever readable here: one masked vector alone is uniform on the ring, and the pairwise masks cancel only
/// in the sum over every silo of the attempt's key exchange. What the sum means (a model, an evaluation, an analysis's
/// counts) is the caller's to decode.
/// </remarks>
public static class MaskedSums
{
    /// <summary>Checks an attempt's masked vectors (no reveals), or sums and unmasks them (with the reveals).</summary>
    /// <param name="outboxes">The silos' outboxes.</param>
    /// <param name="context">The attempt's masking context.</param>
    /// <param name="keyExchange">The attempt's public keys.</param>
    /// <param name="masked">Each silo's masked vector, by reference.</param>
    /// <param name="length">The vector length every silo's must have.</param>
    /// <param name="reveals">The self-mask seeds, or null to check only.</param>
    /// <param name="what">What a silo masked, for messages.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The refused silos (the orchestrator redoes the attempt without them); or, all delivered, the contributors and, with the reveals, the unmasked sum.</returns>
    public static async Task<MaskedSum> SumAsync(
        IUpdateStore outboxes, MaskingContext context, IReadOnlyList<MaskingPublicKey> keyExchange, IEnumerable<(string SiloId, BlobRef Masked)> masked, int length, IReadOnlyList<SelfMaskReveal>? reveals, string what, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(masked);
        var keys = KeyExchanges.BySilo(keyExchange, context.Attempt);
        var exchange = MaskedUpdateCodec.KeyExchangeSha256(keys);
        var received = new List<MaskedUpdate>();
        var refused = new List<RejectedUpdate>();
        foreach (var (silo, blob) in masked.OrderBy(m => m.SiloId, StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (file, refusal) = await ReadMaskedAsync(outboxes, silo, blob, context, exchange, length, cancellationToken).ConfigureAwait(false);
            if (file is null)
            {
                refused.Add(refusal!);
            }
            else
            {
                received.Add(file.Update);
            }
        }

        // The masks of the attempt cancel only when every silo of its key exchange contributes.
        var outcome = new SecureAggregationAttempt(context, keys.Keys).Combine(received);
        if (outcome.Status != SecureAggregationStatus.Complete)
        {
            refused.AddRange(outcome.Dropped.Where(d => refused.All(f => f.SiloId != d)).Select(d => new RejectedUpdate(d, "dropped-out", $"took part in the key exchange of attempt {context.Attempt} but its {what} is not here")));
            return new MaskedSum(null, [], refused);
        }

        if (reveals is null)
        {
            return new MaskedSum(null, outcome.Contributors, []);
        }

        var seeds = new List<byte[]>();
        foreach (var silo in outcome.Contributors)
        {
            if (reveals.FirstOrDefault(r => r.SiloId == silo && r.Attempt == context.Attempt) is not { } reveal)
            {
                return new MaskedSum(null, outcome.Contributors, [new RejectedUpdate(silo, "not-revealed", $"revealed no self-mask for attempt {context.Attempt}")]);
            }

            seeds.Add(reveal.Seed);
        }

        var sum = outcome.Sum!;
        SiloMasking.RemoveSelfMasks(sum, seeds);
        return new MaskedSum(sum, outcome.Contributors, []);
    }

    /// <summary>
    /// Reads one masked vector from its silo's outbox and checks it before it counts: its size and SHA-256 against the
    /// reference, its labels (silo, run, round, attempt, key exchange) and its length; a vector that fails is refused, with why.
    /// </summary>
    private static async Task<(MaskedUpdateFile? File, RejectedUpdate? Refusal)> ReadMaskedAsync(IUpdateStore updates, string siloId, BlobRef blob, MaskingContext context, string keyExchange, int length, CancellationToken cancellationToken)
    {
        var (read, refusal) = await VerifiedReads.ReadAsync(updates, siloId, blob, cancellationToken).ConfigureAwait(false);
        if (read is not { } bytes)
        {
            return (null, refusal);
        }

        MaskedUpdateFile file;
        try
        {
            file = MaskedUpdateCodec.Parse(bytes);
        }
        catch (Exception ex) when (ex is SafetensorsFormatException or FormatException)
        {
            return (null, new RejectedUpdate(siloId, "malformed", ex.Message));
        }

        if (file.Update.SiloId != siloId || file.Update.Context != context || file.KeyExchangeSha256 != keyExchange)
        {
            return (null, new RejectedUpdate(siloId, "wrong-attempt", $"the masked vector is labelled for silo '{file.Update.SiloId}', round {file.Update.Context.Round}, attempt {file.Update.Context.Attempt} and another key exchange"));
        }

        if (file.Update.Values.Length != length)
        {
            return (null, new RejectedUpdate(siloId, "wrong-length", $"the masked vector has {file.Update.Values.Length} elements; {length} are expected"));
        }

        return (file, null);
    }
}
