using System.Globalization;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.SecureAggregation;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Core.Silos;

namespace FederatedFunctions.Silo;

/// <summary>What every silo backend does, inside the silo, to answer a <see cref="MaskUpdateRequest"/>; the backend only reads and writes blobs.</summary>
public static class SiloMaskingStep
{
    /// <summary>Masks the silo's kept update for the request's attempt and returns the masked update file.</summary>
    /// <param name="request">The request.</param>
    /// <param name="keptUpdate">The update the silo kept at training (with its example count and loss in the metadata).</param>
    /// <param name="globalModel">The round's global model, already verified against its hash.</param>
    /// <param name="siloSecret">The silo's masking secret.</param>
    /// <exception cref="InvalidOperationException">The kept update is not the one training reported, carries no example count, or the silo revealed for another attempt.</exception>
    /// <exception cref="ArgumentException">A malformed key exchange or encoding, or an update that does not fit the model.</exception>
    /// <param name="revealedAttempt">The attempt of the round the silo already revealed its self-mask for, if any.</param>
    public static byte[] Mask(MaskUpdateRequest request, ReadOnlyMemory<byte> keptUpdate, ReadOnlyMemory<byte> globalModel, ReadOnlySpan<byte> siloSecret, int? revealedAttempt)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (revealedAttempt is { } revealed && revealed != request.Attempt)
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}' revealed its self-mask for attempt {revealed} of round {request.Round}; it masks for no other attempt of that round.");
        }

        if (Hashing.Sha256Hex(keptUpdate.Span) != request.Update.Sha256 || keptUpdate.Length != request.Update.Bytes)
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}': the kept update of round {request.Round} does not match the hash its training reported.");
        }

        var update = Safetensors.Parse(keptUpdate);
        var examples = update.Metadata.TryGetValue(UpdateMetadata.Examples, out var e) && long.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new InvalidOperationException($"Silo '{request.SiloId}': the kept update of round {request.Round} has no example count.");
        var loss = update.Metadata.TryGetValue(UpdateMetadata.Loss, out var l) && UpdateMetadata.TryParseLoss(l, out var parsed) ? parsed : 0;
        return SiloMasking.Mask(
            siloSecret,
            request.SiloId,
            new MaskingContext(request.RunId, request.Round, request.Attempt),
            KeyExchanges.BySilo(request.KeyExchange, request.Attempt),
            update.Tensors,
            Safetensors.Parse(globalModel).Tensors,
            SiloMasking.Weight(examples, request.MaxExamples, request.EqualWeights),
            loss,
            request.ClipNorm,
            request.Encoding.ToFixedPoint());
    }

    /// <summary>
    /// When a masked update for the attempt is already written, returns it if it was masked for the same attempt and key
    /// exchange, and refuses otherwise: a mask is a one-time pad, so two vectors masked for one attempt could be subtracted.
    /// </summary>
    /// <exception cref="InvalidOperationException">The existing masked update belongs to another key exchange.</exception>
    public static byte[] KeepFirst(MaskUpdateRequest request, byte[] computed, ReadOnlyMemory<byte> existing)
    {
        ArgumentNullException.ThrowIfNull(request);
        return KeepFirst(request.SiloId, new MaskingContext(request.RunId, request.Round, request.Attempt), request.KeyExchange, computed, existing);
    }

    /// <summary>The same rule for any masked vector: the one already written for the attempt, if masked with the same key exchange.</summary>
    /// <exception cref="InvalidOperationException">The existing masked vector belongs to another key exchange.</exception>
    public static byte[] KeepFirst(string siloId, MaskingContext context, IReadOnlyList<MaskingPublicKey> keyExchange, byte[] computed, ReadOnlyMemory<byte> existing)
    {
        ArgumentNullException.ThrowIfNull(context);
        var first = MaskedUpdateCodec.Parse(existing);
        if (first.KeyExchangeSha256 != MaskedUpdateCodec.KeyExchangeSha256(KeyExchanges.BySilo(keyExchange, context.Attempt)) || first.Update.Context != context)
        {
            throw new InvalidOperationException($"Silo '{siloId}' already masked a vector for round {context.Round} attempt {context.Attempt} with another key exchange; it masks one vector per attempt.");
        }

        return existing.Span.SequenceEqual(computed) ? computed : existing.ToArray();
    }

    /// <summary>The silo's self-mask seed for the request's attempt, if it may reveal it.</summary>
    /// <param name="request">The request.</param>
    /// <param name="siloSecret">The silo's masking secret.</param>
    /// <param name="masked">Whether the silo wrote a masked update for this attempt.</param>
    /// <param name="revealedAttempt">The attempt it already revealed for, if any.</param>
    /// <remarks>
    /// The caller then records the attempt, first writer wins, and checks the record again, so that two reveals for
    /// different attempts of one round cannot both succeed.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The silo did not mask for the attempt, or revealed for another one.</exception>
    public static byte[] Reveal(RevealSelfMaskRequest request, ReadOnlySpan<byte> siloSecret, bool masked, int? revealedAttempt)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (revealedAttempt is { } revealed && revealed != request.Attempt)
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}' already revealed its self-mask for attempt {revealed} of round {request.Round}; it reveals for one attempt per round.");
        }

        if (!masked)
        {
            throw new InvalidOperationException($"Silo '{request.SiloId}' wrote no masked update for attempt {request.Attempt} of round {request.Round}; it reveals only for an attempt it took part in.");
        }

        return SiloMasking.SelfMaskSeed(siloSecret, request.SiloId, new MaskingContext(request.RunId, request.Round, request.Attempt));
    }

    /// <summary>Reads a revealed-attempt record (<see cref="BlobLayout.SiloRevealedAttempt"/>).</summary>
    /// <exception cref="FormatException">Not a non-negative integer.</exception>
    public static int ParseRevealed(ReadOnlySpan<byte> record) =>
        int.TryParse(System.Text.Encoding.UTF8.GetString(record), NumberStyles.None, CultureInfo.InvariantCulture, out var a) ? a : throw new FormatException("The revealed-attempt record is not a non-negative integer.");

    /// <summary>The bytes of a revealed-attempt record.</summary>
    public static byte[] FormatRevealed(int attempt) => System.Text.Encoding.UTF8.GetBytes(attempt.ToString(CultureInfo.InvariantCulture));
}
