// The Functions app (the orchestrator): a Linux container on an Elastic Premium plan. A container, because TorchSharp's
// native library needs libstdc++ from GCC 13 or later, which the stock Functions images lack (see the README); Premium,
// because an aggregation holds a few model-sized buffers and a training run lasts days. The app runs as a user-assigned
// identity (cross-tenant silos need one: a system-assigned identity cannot be a federated credential) and reaches its
// storage with it: no connection string, no shared key, no Azure Files content share.

@description('Region of the plan and the app.')
param location string

@description('Suffix that makes the names unique (from uniqueString).')
param suffix string

@description('The app\'s image, e.g. <registry login server>/federatedfunctions-app@sha256:<digest>.')
param appImage string

@description('Login server of the registry the image is pulled from.')
param registryLoginServer string

@description('Resource id of the orchestrator\'s user-assigned identity.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

@description('The orchestrator\'s storage account (task hub and checkpoints).')
param storageName string

@description('Blob endpoint of that account.')
param blobEndpoint string

@description('Application Insights connection string.')
param insightsConnectionString string

@description('Durable task hub name.')
param taskHub string

@description('Elastic Premium size: EP1 (3.5 GB), EP2 (7 GB) or EP3 (14 GB).')
@allowed([ 'EP1', 'EP2', 'EP3' ])
param planSku string

@description('Subnet for regional virtual network integration; empty for none.')
param appSubnetId string

@description('Extra app settings: the silo registry (Silos__{id}__...) and trust settings.')
param extraSettings object

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: 'plan-fl-${suffix}'
  location: location
  kind: 'elastic'
  sku: { name: planSku, tier: 'ElasticPremium' }
  properties: {
    reserved: true
    maximumElasticWorkerCount: 20
  }
}

var baseSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'dotnet-isolated'
  WEBSITES_ENABLE_APP_SERVICE_STORAGE: 'false'
  AzureWebJobsStorage__accountName: storageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  DURABLE_TASK_HUB: taskHub
  Storage__BlobServiceUri: blobEndpoint
  Compute__AzureMl__ManagedIdentityClientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: insightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: 'func-fl-${suffix}'
  location: location
  kind: 'functionapp,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    siteConfig: {
      linuxFxVersion: 'DOCKER|${appImage}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identityClientId
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      vnetRouteAllEnabled: !empty(appSubnetId)
      appSettings: [for setting in items(union(baseSettings, { DOCKER_REGISTRY_SERVER_URL: 'https://${registryLoginServer}' }, extraSettings)): {
        name: setting.key
        value: setting.value
      }]
    }
  }
}

@description('The app\'s name.')
output name string = app.name

@description('The app\'s host name.')
output hostName string = app.properties.defaultHostName
