namespace FederatedFunctions.Core.Runs;

/// <summary>
/// A run's cross-site evaluation (<c>evaluation.crossSite</c>): after the last round, the global model and each silo's
/// local model of that round, each scored on every silo's test split, as NVFlare's cross-site validation does. Written to
/// <see cref="BlobLayout.CrossSite"/>.
/// </summary>
/// <param name="RunId">The run.</param>
/// <param name="Round">The round whose models were scored (the last).</param>
/// <param name="Models">The rows: <see cref="Global"/>, then each silo whose local model was published, in silo-id order.</param>
/// <param name="Silos">The columns: the silos whose test splits scored them.</param>
/// <param name="Cells">One per row and column that was scored; a missing cell is a failed evaluation (in <paramref name="Failures"/>).</param>
/// <param name="Failures">Evaluations that failed, with why.</param>
public sealed record CrossSiteMatrix(string RunId, int Round, IReadOnlyList<string> Models, IReadOnlyList<string> Silos, IReadOnlyList<CrossSiteCell> Cells, IReadOnlyList<CrossSiteFailure> Failures)
{
    /// <summary>The row of the global model.</summary>
    public const string Global = "global";

    /// <summary>The cell of <paramref name="model"/> on <paramref name="silo"/>'s test split, or null.</summary>
    public CrossSiteCell? Cell(string model, string silo) => Cells.FirstOrDefault(c => c.Model == model && c.Silo == silo);
}

/// <summary>One model scored on one silo's test split.</summary>
/// <param name="Model"><see cref="CrossSiteMatrix.Global"/> or the silo whose local model it is.</param>
/// <param name="Silo">The silo whose test split scored it.</param>
/// <param name="Examples">Test examples.</param>
/// <param name="Loss">Mean cross-entropy.</param>
/// <param name="Accuracy">Correct over examples.</param>
public sealed record CrossSiteCell(string Model, string Silo, long Examples, double Loss, double Accuracy);

/// <summary>An evaluation of the matrix that failed.</summary>
public sealed record CrossSiteFailure(string Model, string Silo, string Reason, string Detail);
