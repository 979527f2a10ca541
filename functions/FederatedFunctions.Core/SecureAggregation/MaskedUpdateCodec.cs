using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>
/// What a silo's masked update holds, and how the aggregator turns the sum of masked updates back into a model.
/// </summary>
/// <remarks>
/// <para>
/// <b>The vector.</b> For the round's global model <c>g</c> and the silo's trained model <c>u</c>, the silo computes the
/// change <c>Δ = u − g</c> over every tensor in ordinal name order, clips it to L2 norm <c>C</c>
/// (<c>Δ · min(1, C / ‖Δ‖)</c>), and quantizes the vector <c>[w·Δ/C, w, w·ℓ/LossCap]</c> with <see cref="FixedPoint"/>,
/// where <c>w</c> is its weight in (0, 1] and <c>ℓ</c> its train loss clamped to [0, <see cref="LossCap"/>]. Every
/// element then lies within 1, the encoding's range (<see cref="Encoding"/>), whatever C: the weight and the loss get
/// the same resolution as the change.
/// </para>
/// <para>
/// <b>The sum.</b> Unmasked and decoded, the sum is <c>[Σ w·Δ/C, Σ w, Σ w·ℓ/LossCap]</c>, so the new model is
/// <c>g + C · Σ (w·Δ/C) / Σ w</c>: the weighted FedAvg of the clipped updates, to within C times the encoding's
/// quantization error divided by <c>Σ w</c>. The aggregator learns the sum and nothing per silo.
/// </para>
/// <para>
/// <b>The file.</b> A safetensors file with one int32 tensor <c>masked</c> (the ring elements' bits) and metadata naming
/// the format, the run, round and attempt, the silo, and the SHA-256 of the attempt's key exchange
/// (<see cref="KeyExchangeSha256"/>). Its size depends on the model only. Every model tensor must be float32: a tensor
/// left out of the vector would reach the aggregator some other way, in the clear.
/// </para>
/// </remarks>
public static class MaskedUpdateCodec
{
    /// <summary>The format name in a masked update's metadata.</summary>
    public const string FormatName = "federatedfunctions-masked-update/v1";

    /// <summary>Train losses are clamped to [0, LossCap] and scaled by <c>1 / LossCap</c> before quantizing.</summary>
    public const double LossCap = 64;

    /// <summary>The name of the one tensor of a masked update file.</summary>
    public const string TensorName = "masked";

    private const string MetaFormat = "format";
    private const string MetaRun = "run_id";
    private const string MetaRound = "round";
    private const string MetaAttempt = "attempt";
    private const string MetaSilo = "silo_id";
    private const string MetaKeys = "key_exchange_sha256";

    // Headroom for float32 rounding of clipped values: a value clipped to C can round to slightly more than C.
    private const double RangeSlack = 1 + (1.0 / (1 << 16));

    /// <summary>The fixed-point encoding for a round with <paramref name="sampled"/> silos.</summary>
    /// <remarks>Chosen by the orchestrator and sent to every silo and to the aggregator, so all use the same.</remarks>
    /// <exception cref="ArgumentException">Invalid arguments or no headroom.</exception>
    public static FixedPoint Encoding(int sampled) => FixedPoint.ForSilos(sampled, RangeSlack);

    /// <summary>Elements in the vector for a model: one per value, plus the weight and the weighted loss.</summary>
    /// <exception cref="ArgumentException">A tensor that is not float32.</exception>
    public static int VectorLength(IReadOnlyList<NamedTensor> model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long count = 2;
        foreach (var t in model)
        {
            if (t.DType != TensorDType.F32)
            {
                throw new ArgumentException($"Secure aggregation needs float32 tensors; '{t.Name}' is {t.DType}.", nameof(model));
            }

            count += t.Data.Length / sizeof(float);
        }

        return checked((int)count);
    }

    /// <summary>Builds and quantizes a silo's vector (see the type remarks). Runs inside the silo.</summary>
    /// <param name="update">The silo's trained model.</param>
    /// <param name="global">The round's global model.</param>
    /// <param name="weight">The silo's weight, in (0, 1].</param>
    /// <param name="loss">The silo's train loss.</param>
    /// <param name="clipNorm">The clipping norm C.</param>
    /// <param name="encoding">The round's encoding.</param>
    /// <exception cref="ArgumentException">
    /// The update does not have the global model's tensor names, dtypes and shapes, holds a value that is not finite,
    /// or the weight is outside (0, 1]. Messages name tensors, never values.
    /// </exception>
    public static uint[] Quantize(IReadOnlyList<NamedTensor> update, IReadOnlyList<NamedTensor> global, double weight, double loss, double clipNorm, FixedPoint encoding)
    {
        ArgumentNullException.ThrowIfNull(update);
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(encoding);
        if (!(weight > 0 && weight <= 1))
        {
            throw new ArgumentException("The weight must be in (0, 1].", nameof(weight));
        }

        if (!(clipNorm > 0) || !double.IsFinite(clipNorm))
        {
            throw new ArgumentException("The clipping norm must be positive and finite.", nameof(clipNorm));
        }

        var length = VectorLength(global);
        var byName = new Dictionary<string, NamedTensor>(StringComparer.Ordinal);
        foreach (var t in update)
        {
            if (!byName.TryAdd(t.Name, t))
            {
                throw new ArgumentException($"The update holds tensor '{t.Name}' twice.", nameof(update));
            }
        }

        if (byName.Count != global.Count)
        {
            var extra = byName.Keys.Except(global.Select(g => g.Name), StringComparer.Ordinal).Order(StringComparer.Ordinal).FirstOrDefault();
            throw new ArgumentException(extra is null ? "The update lacks tensors of the global model." : $"The update holds tensor '{extra}', which the global model has not.", nameof(update));
        }

        var delta = new float[length];
        var offset = 0;
        double squares = 0;
        foreach (var g in global.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            if (!byName.TryGetValue(g.Name, out var u))
            {
                throw new ArgumentException($"The update lacks tensor '{g.Name}'.", nameof(update));
            }

            if (u.DType != g.DType || !u.Shape.AsSpan().SequenceEqual(g.Shape) || u.Data.Length != g.Data.Length)
            {
                throw new ArgumentException($"Tensor '{g.Name}' of the update does not have the global model's dtype and shape.", nameof(update));
            }

            var uv = MemoryMarshal.Cast<byte, float>(u.Data.Span);
            var gv = MemoryMarshal.Cast<byte, float>(g.Data.Span);
            for (var i = 0; i < gv.Length; i++)
            {
                var d = (double)uv[i] - gv[i];
                if (!double.IsFinite(d))
                {
                    throw new ArgumentException($"Tensor '{g.Name}' of the update holds a value that is not finite.", nameof(update));
                }

                delta[offset + i] = (float)d;
                squares += d * d;
            }

            offset += gv.Length;
        }

        var norm = Math.Sqrt(squares);
        // Clipped to C, then divided by C: every element of the change lies within 1.
        var scale = norm > clipNorm ? 1 / norm : 1 / clipNorm;
        var values = delta.AsSpan(0, length - 2);
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(values[i] * scale);
        }

        var quantized = new uint[length];
        encoding.Quantize(values, weight, quantized.AsSpan(0, length - 2));
        encoding.Quantize([1f], weight, quantized.AsSpan(length - 2, 1));
        var clamped = double.IsFinite(loss) ? Math.Clamp(loss, 0, LossCap) : LossCap;
        encoding.Quantize([(float)(clamped / LossCap)], weight, quantized.AsSpan(length - 1, 1));
        return quantized;
    }

    /// <summary>Decodes the unmasked sum into the new global model (<c>g + C · Σ (w·Δ/C) / Σ w</c>), the total weight and the weighted mean loss.</summary>
    /// <exception cref="ArgumentException">The sum's length does not fit the model, the sum lies outside the encoding's headroom (masks that did not cancel), or the total weight is not positive.</exception>
    public static DecodedSum Decode(ReadOnlySpan<uint> sum, IReadOnlyList<NamedTensor> global, FixedPoint encoding, double clipNorm)
    {
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(encoding);
        var length = VectorLength(global);
        if (sum.Length != length)
        {
            throw new ArgumentException($"The sum has {sum.Length} elements; the model needs {length}.", nameof(sum));
        }

        if (!encoding.IsWithinHeadroom(sum))
        {
            throw new ArgumentException("The unmasked sum lies outside the encoding's headroom: the masks did not cancel (a contribution is missing, stale or forged).", nameof(sum));
        }

        var decoded = encoding.Dequantize(sum);
        var totalWeight = decoded[length - 2];
        if (!(totalWeight > 0))
        {
            throw new ArgumentException("The total weight of the sum is not positive.", nameof(sum));
        }

        var model = new List<NamedTensor>(global.Count);
        var offset = 0;
        foreach (var g in global.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            var gv = MemoryMarshal.Cast<byte, float>(g.Data.Span);
            var values = new float[gv.Length];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)(gv[i] + (clipNorm * decoded[offset + i] / totalWeight));
            }

            offset += values.Length;
            model.Add(g with { Data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray() });
        }

        var loss = Math.Clamp(decoded[length - 1] / totalWeight, 0, 1) * LossCap;
        return new DecodedSum(model, totalWeight, loss);
    }

    /// <summary>SHA-256 (hex) of an attempt's key exchange: every silo id and public key, in ordinal order, length-prefixed.</summary>
    /// <remarks>Every masked update of an attempt names it, so the aggregator sums only updates masked against the same keys.</remarks>
    public static string KeyExchangeSha256(IReadOnlyDictionary<string, byte[]> publicKeys)
    {
        ArgumentNullException.ThrowIfNull(publicKeys);
        var bytes = new List<byte>(publicKeys.Count * 128);
        foreach (var (id, key) in publicKeys.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            PairwiseSeed.AppendBytes(bytes, System.Text.Encoding.UTF8.GetBytes(id));
            PairwiseSeed.AppendBytes(bytes, key);
        }

        return Convert.ToHexStringLower(SHA256.HashData(bytes.ToArray()));
    }

    /// <summary>Serializes a masked vector with its labels (see the type remarks).</summary>
    public static byte[] Serialize(ReadOnlySpan<uint> masked, MaskingContext context, string siloId, string keyExchangeSha256)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(siloId);
        ArgumentException.ThrowIfNullOrEmpty(keyExchangeSha256);
        var data = new byte[masked.Length * sizeof(uint)];
        for (var i = 0; i < masked.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i * sizeof(uint)), masked[i]);
        }

        return Safetensors.Serialize(
            [new NamedTensor(TensorName, TensorDType.I32, [masked.Length], data)],
            new Dictionary<string, string>
            {
                [MetaFormat] = FormatName,
                [MetaRun] = context.RunId,
                [MetaRound] = context.Round.ToString(CultureInfo.InvariantCulture),
                [MetaAttempt] = context.Attempt.ToString(CultureInfo.InvariantCulture),
                [MetaSilo] = siloId,
                [MetaKeys] = keyExchangeSha256,
            });
    }

    /// <summary>Reads a masked update file.</summary>
    /// <exception cref="SafetensorsFormatException">Not a safetensors file.</exception>
    /// <exception cref="FormatException">A safetensors file that is not a masked update of this format.</exception>
    public static MaskedUpdateFile Parse(ReadOnlyMemory<byte> file)
    {
        var parsed = Safetensors.Parse(file);
        string Meta(string key) => parsed.Metadata.TryGetValue(key, out var v) ? v : throw new FormatException($"The masked update has no '{key}' metadata.");
        if (Meta(MetaFormat) != FormatName)
        {
            throw new FormatException($"The file is not a {FormatName} masked update.");
        }

        if (parsed.Tensors is not [{ Name: TensorName, DType: TensorDType.I32, Shape: [var n] } tensor] || tensor.Data.Length != n * sizeof(uint))
        {
            throw new FormatException($"A masked update holds exactly one int32 vector named '{TensorName}'.");
        }

        if (!int.TryParse(Meta(MetaRound), NumberStyles.None, CultureInfo.InvariantCulture, out var round) || !int.TryParse(Meta(MetaAttempt), NumberStyles.None, CultureInfo.InvariantCulture, out var attempt))
        {
            throw new FormatException("The masked update's round or attempt is not a non-negative integer.");
        }

        var values = new uint[n];
        var span = tensor.Data.Span;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadUInt32LittleEndian(span[(i * sizeof(uint))..]);
        }

        return new MaskedUpdateFile(new MaskedUpdate(Meta(MetaSilo), new MaskingContext(Meta(MetaRun), round, attempt), values), Meta(MetaKeys));
    }
}

/// <summary>The decoded sum of a round's masked updates.</summary>
/// <param name="Model">The new global model: the weighted mean of the clipped updates.</param>
/// <param name="TotalWeight">Σ w over the contributors.</param>
/// <param name="Loss">The weighted mean train loss (losses clamped to [0, <see cref="MaskedUpdateCodec.LossCap"/>]).</param>
public sealed record DecodedSum(IReadOnlyList<NamedTensor> Model, double TotalWeight, double Loss);

/// <summary>A parsed masked update file.</summary>
/// <param name="Update">The masked vector, labelled with its silo and attempt.</param>
/// <param name="KeyExchangeSha256">The key exchange its masks were derived from (<see cref="MaskedUpdateCodec.KeyExchangeSha256"/>).</param>
public sealed record MaskedUpdateFile(MaskedUpdate Update, string KeyExchangeSha256);
