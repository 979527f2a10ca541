using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>Tests that share one real Azurite, started on free ports.</summary>
[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = AzuriteCollectionName.Value;
}
