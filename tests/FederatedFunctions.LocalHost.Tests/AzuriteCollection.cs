using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>Tests that share one real Azurite, started on free ports.</summary>
[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = AzuriteCollectionName.Value;
}

/// <summary>
/// The tests whose silos or workers run as processes of their own (silo runners, the Azure ML emulator's jobs, <c>fl worker</c>):
/// they share a second Azurite, so that they run beside the <see cref="AzuriteCollection"/> instead of after it. The two
/// collections hold about the same test time; every test in either uses its own task hub, containers and ids.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ProcessesCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite-processes";
}
