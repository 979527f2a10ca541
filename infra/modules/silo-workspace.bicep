// The single-tenant and cross-tenant set-ups: a silo's own Azure ML workspace, in the provider's subscription (a compute
// belongs to its workspace's subscription, and cannot be attached to a workspace in another tenant), with the Key Vault
// it needs, and the orchestrator's grant to run jobs there. Across tenants the orchestrator is Contoso's multi-tenant
// application, provisioned in this tenant and signed in with Contoso's user-assigned identity as a federated
// credential, so no secret crosses the tenant boundary.
import { roles } from 'roles.bicep'

@description('Region of the workspace: the provider\'s.')
param location string

@description('The silo id.')
param siloId string

@description('Principal id of the orchestrator in this tenant: Contoso\'s identity, or (cross-tenant) its multi-tenant application.')
param orchestratorPrincipalId string

@description('Whether the workspace and its vault are reachable from public networks.')
param publicNetworkAccess bool

var suffix = uniqueString(resourceGroup().id, siloId)

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv-silo-${suffix}', 24)
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
  }
}

module workspace 'ml-workspace.bicep' = {
  name: 'silo-ml-workspace'
  params: {
    location: location
    name: 'mlw-silo-${suffix}'
    keyVaultId: vault.id
    publicNetworkAccess: publicNetworkAccess
  }
}

resource siloWorkspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: 'mlw-silo-${suffix}'
}

// AzureML Data Scientist: the orchestrator creates, reads and cancels the silo's jobs; it cannot manage the compute.
resource jobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: siloWorkspace
  name: guid(siloWorkspace.id, orchestratorPrincipalId, roles.azureMlDataScientist)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMlDataScientist)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | silo ml workspace | AzureML Data Scientist'
  }
  dependsOn: [ workspace ]
}

@description('The workspace\'s name.')
output name string = workspace.outputs.name
