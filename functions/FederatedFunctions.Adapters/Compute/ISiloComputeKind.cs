using FederatedFunctions.Adapters.Silos;
using FederatedFunctions.Core.Silos;
using FederatedFunctions.Workflow.Abstractions;

namespace FederatedFunctions.Adapters.Compute;

/// <summary>One kind of silo compute: the extension point. Each kind is one file in this folder, registered in <see cref="AdaptersRegistration"/>.</summary>
/// <remarks>A silo's registry entry names its kind (<c>Silos:{id}:Compute:Kind</c>); one run may mix kinds.</remarks>
public interface ISiloComputeKind : ISiloCompute
{
    /// <summary>The kind's name in the registry, e.g. <c>local</c>.</summary>
    string Kind { get; }

    /// <summary>True when a step runs to completion inside the activity that starts it.</summary>
    bool Inline { get; }

    /// <summary>Seconds between two reads of a running job's state, unless the entry sets <see cref="SiloComputeOptions.PollSeconds"/>.</summary>
    int DefaultPollSeconds { get; }

    /// <summary>Checks that the entry has what this kind needs.</summary>
    /// <exception cref="SiloRegistryException">A field is missing or invalid; the message names the silo and the field.</exception>
    void Validate(string siloId, SiloEndpoint entry);

    /// <summary>The trainer this kind runs for the silo, for the eyes-off allow-list.</summary>
    TrainerIdentity Trainer(string siloId, SiloEndpoint entry);
}
