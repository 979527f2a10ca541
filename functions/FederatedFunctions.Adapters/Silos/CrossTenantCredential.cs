using Azure.Core;
using Azure.Identity;

namespace FederatedFunctions.Adapters.Silos;

/// <summary>
/// Contoso's multi-tenant application, signed in to a silo's tenant with Contoso's user-assigned managed identity as
/// its federated credential: the orchestrator reaches a silo in another tenant with no secret on either side.
/// </summary>
/// <remarks>
/// The identity's token for <c>api://AzureADTokenExchange</c> is the client assertion of the application in the silo's
/// tenant, where the application's service principal holds the silo's grants (infra/silo.bicep, cross-tenant set-up).
/// Only a user-assigned identity can be a federated credential of an application.
/// </remarks>
public static class CrossTenantCredential
{
    /// <summary>The audience of the managed identity's token that serves as the application's client assertion.</summary>
    public const string AssertionScope = "api://AzureADTokenExchange/.default";

    /// <summary>A credential for the silo's tenant.</summary>
    /// <param name="tenantId">The silo's tenant.</param>
    /// <param name="applicationClientId">Contoso's multi-tenant application.</param>
    /// <param name="managedIdentityClientId">Contoso's user-assigned identity, a federated credential of that application.</param>
    /// <param name="what">What the credential is for, for messages.</param>
    /// <exception cref="SiloRegistryException">A field is missing or not a GUID; the message names it.</exception>
    public static TokenCredential Create(string? tenantId, string? applicationClientId, string? managedIdentityClientId, string what)
    {
        Require(tenantId, "TenantId", what);
        Require(applicationClientId, "ApplicationClientId", what);
        Require(managedIdentityClientId, "ManagedIdentityClientId", what);
        var identity = new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(managedIdentityClientId!));
        return new ClientAssertionCredential(
            tenantId!,
            applicationClientId!,
            async cancellationToken => (await identity.GetTokenAsync(new TokenRequestContext([AssertionScope]), cancellationToken).ConfigureAwait(false)).Token);
    }

    private static void Require(string? value, string field, string what)
    {
        if (!Guid.TryParse(value, out _))
        {
            throw new SiloRegistryException($"'{field}' must be a GUID for credential FederatedApplication ({what}); got '{value}'.");
        }
    }
}
