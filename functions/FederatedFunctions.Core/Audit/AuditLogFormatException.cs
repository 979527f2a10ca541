namespace FederatedFunctions.Core.Audit;

/// <summary>An audit log's bytes are not well-formed JSON Lines of audit entries.</summary>
/// <remarks>
/// The message names the 1-based line and what is wrong, never a field value. A torn last line (an append that did not
/// complete) is this error too: a log that cannot be read completely is not silently shortened.
/// </remarks>
public sealed class AuditLogFormatException : FormatException
{
    /// <summary>Creates the exception with a generic message.</summary>
    public AuditLogFormatException()
        : base("The data is not a well-formed audit log.")
    {
    }

    /// <summary>Creates the exception with a message saying what is wrong.</summary>
    public AuditLogFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that revealed the problem.</summary>
    public AuditLogFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a line.</summary>
    public AuditLogFormatException(int lineNumber, string message, Exception? innerException = null)
        : base($"Audit log line {lineNumber}: {message}", innerException)
    {
        LineNumber = lineNumber;
    }

    /// <summary>The 1-based line at fault, when known.</summary>
    public int? LineNumber { get; }
}
