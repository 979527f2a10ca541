using System.Text;
using FederatedFunctions.Api;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.Core.Tensors;
using FederatedFunctions.Ml;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.LocalHost.Hosting;

/// <summary>
/// <c>fl predict</c>: a run's trained model scores a local file or image folder, read and preprocessed exactly as the silos
/// read their test split (the run's own data spec and its standardization), with the model checked against its manifest.
/// </summary>
public static class RunPredictor
{
    /// <summary>What a prediction gave.</summary>
    /// <param name="RunId">The run.</param>
    /// <param name="Round">The round whose model scored.</param>
    /// <param name="Classes">The number of classes.</param>
    /// <param name="Predicted">The predicted class of each row.</param>
    /// <param name="Probabilities">Rows × classes probabilities.</param>
    /// <param name="Labels">Each row's label, or null when the data has none.</param>
    /// <param name="Score">When labelled: the rows, the mean cross-entropy and the correct count, as federated evaluation computes them.</param>
    public sealed record Prediction(string RunId, int Round, int Classes, int[] Predicted, float[] Probabilities, int[]? Labels, EvaluationResult? Score)
    {
        /// <summary>Correct over rows, when labelled.</summary>
        public double? Accuracy => Score is { Examples: > 0 } s ? (double)s.Correct / s.Examples : null;
    }

    /// <summary>Scores <paramref name="data"/> (a CSV or Parquet file, a safetensors or <c>.npz</c> file of <c>x</c> and <c>y</c>, or an image folder) with the model of <paramref name="round"/> (the latest when null).</summary>
    /// <exception cref="ModelNotFoundException">No such run, round or stored spec.</exception>
    /// <exception cref="Core.Runs.IntegrityException">The model is not the one the manifest records.</exception>
    /// <exception cref="DataValidationException">The data does not fit the run's data spec or model; the message names the column and row.</exception>
    public static async Task<Prediction> PredictAsync(ICheckpointStore store, string container, string runId, int? round, string data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var specBytes = await store.GetSpecAsync(container, runId, cancellationToken).ConfigureAwait(false)
            ?? throw new ModelNotFoundException($"Container '{container}' holds no stored spec of run '{runId}'.");
        var spec = RunSpecParser.Parse(specBytes).Spec ?? throw new ModelNotFoundException($"Run '{runId}''s stored spec no longer parses.");
        var model = await ModelDownload.GetAsync(store, container, runId, round, cancellationToken).ConfigureAwait(false);
        var script = model.Manifest.Script is { } file ? (await store.ReadModelAsync(file, cancellationToken).ConfigureAwait(false)).ToArray() : null;
        var standardization = (await store.GetManifestAsync(container, runId, 0, cancellationToken).ConfigureAwait(false))?.Standardization ?? spec.Data.Standardization;
        var inputs = RunSpecValidator.ResolveInputs(spec);

        var (table, labeled) = await ReadAsync(spec.Data, data, inputs, cancellationToken).ConfigureAwait(false);
        if (standardization is not null)
        {
            if (!table.FeatureNames.SequenceEqual(spec.Data.Features ?? [], StringComparer.Ordinal))
            {
                throw new DataValidationException(null, data, $"the run standardizes data.features ({string.Join(", ", spec.Data.Features ?? [])}), but the file's features are not those columns in that order");
            }

            table = table.Standardized(standardization);
        }

        var predicted = new int[table.Rows];
        var probabilities = new float[table.Rows * spec.Data.Classes];
        var score = LocalTrainer.Predict(spec.Model, spec.Data.Classes, Safetensors.Parse(model.Bytes).Tensors, table, labeled, predicted, probabilities, cancellationToken, script);
        return new Prediction(runId, model.Round, spec.Data.Classes, predicted, probabilities, labeled ? table.Labels.Select(l => (int)l).ToArray() : null, labeled ? score : null);
    }

    // The rows as the silos read a split of this format; a CSV without the label column is read with every label 0 and
    // reported as unlabelled.
    private static async Task<(TabularData Table, bool Labeled)> ReadAsync(DataSpec spec, string path, int inputs, CancellationToken cancellationToken)
    {
        if (Directory.Exists(path))
        {
            var root = Path.GetFullPath(path);
            var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .Select(f => new ImageFile("data/" + Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'), new FileInfo(f).Length))
                .ToArray();
            var split = await ImageFolderReader.ReadAsync(
                "data",
                files,
                async (p, ct) => File.Exists(Path.Combine(root, p["data/".Length..])) ? await File.ReadAllBytesAsync(Path.Combine(root, p["data/".Length..]), ct).ConfigureAwait(false) : null,
                spec.Classes,
                spec.ClassNames,
                inputs,
                null,
                cancellationToken).ConfigureAwait(false);
            return (split.Data, true);
        }

        if (!File.Exists(path))
        {
            throw new DataValidationException(null, path, "no such file or folder");
        }

        var format = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => DataFormats.Csv,
            ".parquet" => DataFormats.Parquet,
            ".npz" => DataFormats.Npz,
            ".safetensors" => DataFormats.Safetensors,
            var other => throw new DataValidationException(null, path, $"'{other}' files are not read; give a .csv, .parquet, .npz or .safetensors file, or an image folder"),
        };
        var withFormat = spec with { Format = format };
        await using var stream = File.OpenRead(path);
        if (format is DataFormats.Npz or DataFormats.Safetensors)
        {
            return (await TensorDataReader.ReadAsync(stream, withFormat, inputs, null, cancellationToken).ConfigureAwait(false), true);
        }

        if (format == DataFormats.Csv && await WithoutLabelAsync(path, spec.Label, cancellationToken).ConfigureAwait(false) is { } unlabeled)
        {
            using var labeled = new MemoryStream(unlabeled);
            return (await TabularReader.ReadAsync(labeled, withFormat, inputs, null, cancellationToken).ConfigureAwait(false), false);
        }

        return (await TabularReader.ReadAsync(stream, withFormat, inputs, null, cancellationToken).ConfigureAwait(false), true);
    }

    // A CSV whose header lacks the label column, with that column appended as 0 on every row; null when it has the column.
    private static async Task<byte[]?> WithoutLabelAsync(string path, string label, CancellationToken cancellationToken)
    {
        var lines = await File.ReadAllLinesAsync(path, Encoding.UTF8, cancellationToken).ConfigureAwait(false);
        if (lines.Length == 0 || lines[0].Split(',').Select(h => h.Trim().Trim('"')).Contains(label, StringComparer.Ordinal))
        {
            return null;
        }

        var text = new StringBuilder(lines[0]).Append(',').Append(label).Append('\n');
        foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
        {
            text.Append(line).Append(",0\n");
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
