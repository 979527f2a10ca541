// A silo's storage account: a data container (the data, and the silo's private area under private/) and an outbox
// container (what leaves the silo: updates, evaluation reports, job outcomes). Shared keys are on only in the sas
// set-up, where the orchestrator reads the outbox with a SAS bound to a stored access policy.

@description('Region of the account: the data provider\'s.')
param location string

@description('The silo id.')
param siloId string

@description('Data container name.')
param dataContainerName string

@description('Outbox container name.')
param outboxContainerName string

@description('Whether shared-key access (needed to sign a service SAS) is allowed: the sas set-up only.')
param allowSharedKeyAccess bool

@description('Whether the account is reachable from public networks; false when private endpoints serve it.')
param publicNetworkAccess bool

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take('stsilo${uniqueString(resourceGroup().id, siloId)}', 24)
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_ZRS' }
  properties: {
    allowSharedKeyAccess: allowSharedKeyAccess
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
  }
}

resource data 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: dataContainerName
  properties: { publicAccess: 'None' }
}

resource outbox 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: outboxContainerName
  properties: { publicAccess: 'None' }
}

@description('Storage account name.')
output name string = account.name

@description('Storage account resource id.')
output id string = account.id

@description('Blob service endpoint.')
output blobEndpoint string = account.properties.primaryEndpoints.blob
