namespace FederatedFunctions.Core.Tensors;

/// <summary>The contents of one safetensors file: its tensors and its <c>__metadata__</c> map.</summary>
/// <remarks>
/// As returned by <see cref="Safetensors.Parse"/>, <see cref="Tensors"/> are in data-offset order and their
/// <see cref="NamedTensor.Data"/> are slices of the parsed buffer, which must therefore stay alive and unchanged
/// while they are used. <see cref="Metadata"/> is empty, never null, when the file has none.
/// </remarks>
/// <param name="Tensors">The tensors, in data-offset order.</param>
/// <param name="Metadata">The free-form string-to-string <c>__metadata__</c> map.</param>
public sealed record SafetensorsFile(IReadOnlyList<NamedTensor> Tensors, IReadOnlyDictionary<string, string> Metadata);
