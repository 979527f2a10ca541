using System.Globalization;
using System.Text.Json;
using FederatedFunctions.Core;
using FederatedFunctions.Core.Analysis;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Ml;

namespace FederatedFunctions.Silo;

/// <summary>
/// One pass of a federated analysis inside a silo: reads the asked columns, computes the pass's partial statistics per
/// group (count, missing, moments, histograms, value counts, co-moments, counts at or below quantile thresholds) and
/// writes them to the silo's outbox. The orchestrator gets a reference only; the partial is read by the merge, which
/// reports aggregates only.
/// </summary>
/// <remarks>
/// <para>Missing values are empty fields and <c>NA</c>, <c>NaN</c>, <c>null</c>, <c>?</c> (any case). A value that is none
/// of these and not a finite number is bad data. With declared bounds, values are clamped to them.</para>
/// <para>Written first-writer-wins, so a re-executed pass returns what the first execution wrote. Eyes-off, and under differential privacy, the partial is
/// padded to a power of two of at least 4 KiB, so its size says little about its values.</para>
/// <para>Under secure aggregation (<see cref="AnalyzeRequest.Masking"/>) the partial is never written: it is encoded
/// with exact sums (<see cref="SecureAnalysisVector"/>) and handed to the masking step, which writes the masked vector.</para>
/// </remarks>
internal static class SiloAnalysisStep
{
    private static readonly HashSet<string> MissingTokens = new(["", "na", "nan", "null", "?"], StringComparer.OrdinalIgnoreCase);

    /// <summary>Runs the pass; with <see cref="AnalyzeRequest.Masking"/>, hands the encoded partial to <paramref name="mask"/> instead of writing it.</summary>
    /// <param name="storage">The silo's storage.</param>
    /// <param name="request">The pass.</param>
    /// <param name="mask">Masks the vector (<see cref="SecureAnalysisVector"/>) and writes it to the outbox.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static async Task<SiloStepResult> RunAsync(ISiloStorage storage, AnalyzeRequest request, Func<uint[], Task<SiloStepResult>> mask, CancellationToken cancellationToken)
    {
        var q = request.Query;
        var silo = request.SiloId;
        var columns = q.Numeric.Concat(q.Categorical).Concat(q.GroupBy is { } g ? [g] : []).Distinct(StringComparer.Ordinal).ToArray();
        var stream = await storage.OpenReadAsync(SiloArea.Data, q.Data.Path, cancellationToken).ConfigureAwait(false)
            ?? throw new DataValidationException(silo, q.Data.Path, "the data file does not exist in the silo's container");
        IReadOnlyDictionary<string, string[]> table;
        await using (stream.ConfigureAwait(false))
        {
            table = q.Data.Format == DataFormats.Parquet
                ? await ParquetColumns.ReadAsync(stream, columns, silo, cancellationToken).ConfigureAwait(false)
                : await TabularReader.ReadCsvColumnsAsync(stream, columns, silo, cancellationToken).ConfigureAwait(false);
        }

        var rows = table.Count == 0 ? 0 : table.First().Value.Length;
        var numbers = q.Numeric.ToDictionary(c => c, c => Parse(silo, c, table[c], q.Bounds.GetValueOrDefault(c)), StringComparer.Ordinal);
        var declaredGroups = q.Groups?.ToHashSet(StringComparer.Ordinal);
        var groupOf = q.GroupBy is { } by
            ? table[by].Select(v => MissingTokens.Contains(v) ? SecureAnalysisVector.MissingGroup : declaredGroups is null || declaredGroups.Contains(v) ? v : AnalysisReport.OtherValues).ToArray()
            : Enumerable.Repeat(SecureAnalysisVector.AllRows, rows).ToArray();

        var groups = new SortedDictionary<string, GroupPartial>(StringComparer.Ordinal);
        var membersOf = Enumerable.Range(0, rows).GroupBy(r => groupOf[r], StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        foreach (var (group, members) in membersOf)
        {
            var features = new SortedDictionary<string, FeaturePartial>(StringComparer.Ordinal);
            foreach (var column in q.Numeric)
            {
                var present = members.Select(r => numbers[column][r]).OfType<double>().ToArray();
                features[column] = new FeaturePartial(
                    members.Length - present.Length,
                    q.Moments ? Moments.Of(present) : null,
                    q.HistogramEdges.TryGetValue(column, out var edges) ? Histogram.Of(present, edges) : null,
                    null,
                    q.GroupBy is not null && q.Thresholds.TryGetValue(column, out var at) ? QuantileSearch.CountAtOrBelow(present, at) : null);
            }

            foreach (var column in q.Moments ? q.Categorical : [])
            {
                var values = members.Select(r => table[column][r]).ToArray();
                var declared = q.Categories?.GetValueOrDefault(column) is { } categories ? categories.ToHashSet(StringComparer.Ordinal) : null;
                var counts = values.Where(v => !MissingTokens.Contains(v))
                    .GroupBy(v => declared is null || declared.Contains(v) ? v : AnalysisReport.OtherValues, StringComparer.Ordinal)
                    .ToDictionary(v => v.Key, v => v.LongCount(), StringComparer.Ordinal);
                features[column] = new FeaturePartial(values.LongCount(MissingTokens.Contains), null, null, new SortedDictionary<string, long>(counts, StringComparer.Ordinal));
            }

            var co = q.Moments && q.Covariance is { Count: >= 2 } cov
                ? CoMoments.Of(members.Select(r => cov.Select(c => numbers[c][r]).ToArray()).Where(v => v.All(x => x is not null)).Select(v => v.Select(x => x!.Value).ToArray()), cov.Count)
                : null;
            groups[group] = new GroupPartial(members.Length, features, co);
        }

        var thresholds = q.Thresholds.ToDictionary(
            t => t.Key,
            t => QuantileSearch.CountAtOrBelow(numbers[t.Key].OfType<double>().ToArray(), t.Value),
            StringComparer.Ordinal);
        if (request.Masking is not null)
        {
            // Secure aggregation: only the masked vector leaves the silo; the partial itself is never written.
            var own = new AnalysisPartial(silo, request.Pass, rows, groups, thresholds, request.Execution);
            IEnumerable<double> Values(string group, string column) => membersOf[group].Select(r => numbers[column][r]).OfType<double>();
            IEnumerable<double[]> CompleteRows(string group) => membersOf[group]
                .Select(r => q.Covariance!.Select(c => numbers[c][r]).ToArray())
                .Where(v => v.All(x => x is not null))
                .Select(v => v.Select(x => x!.Value).ToArray());
            return await mask(SecureAnalysisVector.Encode(q, own, Values, CompleteRows)).ConfigureAwait(false);
        }

        var nonce = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var partial = new AnalysisPartial(silo, request.Pass, rows, groups, thresholds, request.Execution, nonce);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(partial, AnalysisJson.Options);
        if (request.Privacy == PrivacyModes.EyesOff || request.Pad)
        {
            bytes = JsonPadding.To(bytes, (int)Math.Max(4096, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)bytes.Length)));
        }

        var path = BlobLayout.SiloAnalysisPartial(request.AnalysisId, request.Execution, request.Pass);
        if (await storage.WriteIfAbsentAsync(SiloArea.Outbox, path, bytes, cancellationToken).ConfigureAwait(false) is { } existing)
        {
            bytes = existing;
        }

        return new SiloStepResult(Analysis: new BlobRef(storage.Uri(SiloArea.Outbox, path), Hashing.Sha256Hex(bytes), bytes.Length));
    }

    private static double?[] Parse(string silo, string column, string[] text, BoundsSpec? bounds)
    {
        var values = new double?[text.Length];
        for (var r = 0; r < text.Length; r++)
        {
            if (MissingTokens.Contains(text[r]))
            {
                continue;
            }

            if (!double.TryParse(text[r], NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
            {
                throw new DataValidationException(silo, $"column '{column}' row {r + 1}", "not a number (a numeric statistic was asked of it)");
            }

            values[r] = bounds is null ? x : Math.Clamp(x, bounds.Min, bounds.Max);
        }

        return values;
    }
}
