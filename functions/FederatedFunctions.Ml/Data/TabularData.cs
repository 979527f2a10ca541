namespace FederatedFunctions.Ml;

/// <summary>A labelled table of float32 features, as read from one split of one silo.</summary>
/// <remarks>
/// <see cref="Features"/> is row-major, <see cref="Rows"/> × <see cref="Columns"/>; <see cref="Labels"/> holds one class id
/// per row. <see cref="TabularReader"/> guarantees every feature is finite and every label is in <c>[0, classes)</c>;
/// other producers are expected to keep the same invariants. Records compare arrays by reference: use
/// <see cref="ContentEquals"/> to compare contents.
/// </remarks>
/// <param name="Features">Row-major feature values, <c>Rows * Columns</c> long.</param>
/// <param name="Labels">Class ids, <c>Rows</c> long.</param>
/// <param name="Rows">Number of examples.</param>
/// <param name="Columns">Number of features per example.</param>
/// <param name="FeatureNames">Feature column names, <c>Columns</c> long, in column order.</param>
public sealed record TabularData(float[] Features, long[] Labels, int Rows, int Columns, IReadOnlyList<string> FeatureNames)
{
    /// <summary>Throws unless the array lengths agree with <see cref="Rows"/> and <see cref="Columns"/>.</summary>
    /// <exception cref="ArgumentException">An inconsistent table.</exception>
    public void EnsureConsistent()
    {
        ArgumentNullException.ThrowIfNull(Features);
        ArgumentNullException.ThrowIfNull(Labels);
        ArgumentNullException.ThrowIfNull(FeatureNames);
        if (Rows < 0 || Columns < 0)
        {
            throw new ArgumentException($"Rows ({Rows}) and columns ({Columns}) must not be negative.");
        }

        if (Features.LongLength != (long)Rows * Columns)
        {
            throw new ArgumentException($"Features holds {Features.LongLength} values; {Rows} rows × {Columns} columns need {(long)Rows * Columns}.");
        }

        if (Labels.Length != Rows)
        {
            throw new ArgumentException($"Labels holds {Labels.Length} values for {Rows} rows.");
        }

        if (FeatureNames.Count != Columns)
        {
            throw new ArgumentException($"FeatureNames holds {FeatureNames.Count} names for {Columns} columns.");
        }
    }

    /// <summary>True when both tables hold the same names, shape, labels and feature bits.</summary>
    public bool ContentEquals(TabularData? other) =>
        other is not null
        && Rows == other.Rows
        && Columns == other.Columns
        && FeatureNames.SequenceEqual(other.FeatureNames, StringComparer.Ordinal)
        && Labels.AsSpan().SequenceEqual(other.Labels)
        && System.Runtime.InteropServices.MemoryMarshal.AsBytes(Features.AsSpan())
            .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(other.Features.AsSpan()));

    /// <summary>Number of rows with each label, for labels <c>0..classes-1</c>.</summary>
    public long[] ClassCounts(int classes)
    {
        var counts = new long[classes];
        foreach (var label in Labels)
        {
            if (label >= 0 && label < classes)
            {
                counts[label]++;
            }
        }

        return counts;
    }

    /// <summary>A new table of the given rows, in the given order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A row outside the table.</exception>
    public TabularData Select(IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var features = new float[(long)rows.Count * Columns];
        var labels = new long[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            ArgumentOutOfRangeException.ThrowIfNegative(row, nameof(rows));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Rows, nameof(rows));
            Features.AsSpan(row * Columns, Columns).CopyTo(features.AsSpan(i * Columns, Columns));
            labels[i] = Labels[row];
        }

        return new TabularData(features, labels, rows.Count, Columns, FeatureNames);
    }

    /// <summary>A copy with each feature standardized, <c>(x − mean) / stddev</c>, computed in double and stored as float32.</summary>
    /// <exception cref="ArgumentException">Not one mean and one positive standard deviation per column.</exception>
    public TabularData Standardized(Core.Specs.FeatureStandardization standardization)
    {
        ArgumentNullException.ThrowIfNull(standardization);
        var (mean, stddev) = (standardization.Mean, standardization.Stddev);
        if (mean.Count != Columns || stddev.Count != Columns || stddev.Any(s => !(s > 0)))
        {
            throw new ArgumentException($"A standardization of {Columns} features needs {Columns} means and {Columns} positive standard deviations; got {mean.Count} and {stddev.Count}.", nameof(standardization));
        }

        var features = new float[Features.Length];
        for (var i = 0; i < features.Length; i++)
        {
            var j = i % Columns;
            features[i] = (float)((Features[i] - mean[j]) / stddev[j]);
        }

        return this with { Features = features };
    }
}
