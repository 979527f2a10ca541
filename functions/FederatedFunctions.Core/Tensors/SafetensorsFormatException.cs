namespace FederatedFunctions.Core.Tensors;

/// <summary>A byte sequence is not a well-formed safetensors file.</summary>
/// <remarks>
/// The message says what is wrong and where (the tensor name, the offset), because the file usually comes from
/// a silo and the message ends up in the round's rejection record.
/// </remarks>
public sealed class SafetensorsFormatException : Exception
{
    /// <summary>Creates the exception with a generic message.</summary>
    public SafetensorsFormatException()
        : base("The data is not a well-formed safetensors file.")
    {
    }

    /// <summary>Creates the exception with a message saying what is wrong.</summary>
    public SafetensorsFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that revealed the problem.</summary>
    public SafetensorsFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
