using FederatedFunctions.Ml;

namespace FederatedFunctions.TestSupport;

/// <summary>Real datasets that a Debian package ships (python3-sklearn), as <see cref="RepositoryPaths.Dataset"/> finds them.</summary>
public static class RealDatasets
{
    /// <summary>
    /// The UCI optical handwritten digits (1,797 images of 8×8 pixels with values 0 to 16, classes 0 to 9), from
    /// sklearn's <c>digits.csv.gz</c>: each line is 64 pixels, row by row, then the label.
    /// </summary>
    public static (float[][] Pixels, long[] Labels) Digits() => DigitsDataset.Read(RepositoryPaths.Dataset("digits.csv.gz"));
}
