namespace FederatedFunctions.Core.Silos;

/// <summary>A silo's data file is malformed; the message names the silo, the field (column and/or row) and the problem.</summary>
/// <remarks>
/// Messages look like <c>silo 'silo-2': column 'x3' row 17: not a number ('abc')</c>. Rows are numbered from 1, counting
/// data rows only (the CSV header is not a row). Quoted values are cut to 40 characters so a message stays short and
/// leaks little data. The message is safe to return to the operator of the run: it holds no credentials or paths.
/// </remarks>
public sealed class DataValidationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="siloId">The silo whose data is at fault, when known.</param>
    /// <param name="field">Where: e.g. <c>column 'x3' row 17</c>, <c>header</c>, <c>file</c>, <c>row 4</c>.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="innerException">The underlying parser error, if any.</param>
    public DataValidationException(string? siloId, string field, string problem, Exception? innerException = null)
        : base(Format(siloId, field, problem), innerException)
    {
        SiloId = siloId;
        Field = field;
        Problem = problem;
    }

    /// <summary>The silo whose data is at fault, or null when the reader was not told.</summary>
    public string? SiloId { get; }

    /// <summary>Where the problem is: a column and/or row, <c>header</c> or <c>file</c>.</summary>
    public string Field { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }

    private static string Format(string? siloId, string field, string problem) =>
        siloId is null ? $"{field}: {problem}" : $"silo '{siloId}': {field}: {problem}";
}

/// <summary>A silo step failed for a reason other than its data; in eyes-off mode the message is a category and a silo-side reference only.</summary>
public sealed class SiloTaskException(string message) : Exception(message);
