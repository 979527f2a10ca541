// The orchestrator's storage account: the Durable task hub (queues, tables, blobs), the run checkpoints and the
// recurring-training template. Shared keys are off: the Functions host and the app reach it with their identity.

@description('Region of the account.')
param location string

@description('Suffix that makes the name unique (from uniqueString).')
param suffix string

@description('Name of the container that holds checkpoints, manifests, audit logs and job documents.')
param checkpointsContainerName string

@description('Whether the account is reachable from public networks; false when private endpoints serve it.')
param publicNetworkAccess bool

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take('stfl${suffix}', 24)
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
    networkAcls: { defaultAction: publicNetworkAccess ? 'Allow' : 'Deny', bypass: 'AzureServices' }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 14 }
    containerDeleteRetentionPolicy: { enabled: true, days: 14 }
  }
}

resource checkpoints 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: checkpointsContainerName
  properties: { publicAccess: 'None' }
}

resource config 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: 'fl-config'
  properties: { publicAccess: 'None' }
}

@description('Storage account name.')
output name string = account.name

@description('Storage account resource id.')
output id string = account.id

@description('Blob service endpoint.')
output blobEndpoint string = account.properties.primaryEndpoints.blob
