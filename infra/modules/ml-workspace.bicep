// An Azure ML workspace with its own storage account (shared keys off: its system datastores use identities). Silo
// computes are attached to it (sas and single-tenant set-ups) or to a silo's own workspace (cross-tenant set-up).

@description('Region of the workspace.')
param location string

@description('Workspace name.')
param name string

@description('Key Vault the workspace keeps its connections in.')
param keyVaultId string

@description('Application Insights component of the workspace; empty for none.')
param insightsId string = ''

@description('Container registry the workspace builds and pulls environments from; empty for none.')
param registryId string = ''

@description('Whether the workspace is reachable from public networks.')
param publicNetworkAccess bool

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take('stml${uniqueString(resourceGroup().id, name)}', 24)
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' = {
  name: name
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    friendlyName: name
    storageAccount: storage.id
    keyVault: keyVaultId
    applicationInsights: empty(insightsId) ? null : insightsId
    containerRegistry: empty(registryId) ? null : registryId
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
    v1LegacyMode: false
  }
}

@description('Workspace resource id.')
output id string = workspace.id

@description('Workspace name.')
output name string = workspace.name
