// FederatedFunctions: Contoso's side (the orchestrator). One command:
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/setups/<set-up>/orchestrator.bicepparam
// deploys the Functions app (a container on Elastic Premium), its storage (task hub and checkpoints), Key Vault,
// Application Insights, a container registry, the Azure ML workspace silo computes attach to, and, looped over the
// silos, each silo's grants on Contoso's side. Each data provider deploys silo.bicep in its own subscription.
//
// PERMISSION MATRIX
// Every role assignment in infra/ is one row below; its description is "fl-matrix: <principal> | <resource> | <role>".
// tests/FederatedFunctions.Infra.Tests compiles main.bicep and silo.bicep and fails on an assignment that is not a row,
// or whose role, principal, scope or eyes-on condition differs from its row, and on a row that no assignment makes.
//
//   orchestrator   = the Functions app's user-assigned identity (in the cross-tenant set-up, in a silo's tenant:
//                    Contoso's multi-tenant application, which that identity signs in as; no secret)
//   silo job       = a silo's user-assigned identity, the identity its Azure ML jobs run as
//   contoso people = the Entra group of Contoso's data scientists and operators (optional)
//
//   access: R read, W write, J create/read/cancel jobs; eyes-on / eyes-off: whether the row exists in that mode.
//
//   | principal      | resource               | role                           | access | eyes-on | eyes-off |
//   |----------------|------------------------|--------------------------------|--------|---------|----------|
//   | orchestrator   | orchestrator storage   | Storage Blob Data Owner        | RW     | yes     | yes      |
//   | orchestrator   | orchestrator storage   | Storage Queue Data Contributor | RW     | yes     | yes      |
//   | orchestrator   | orchestrator storage   | Storage Table Data Contributor | RW     | yes     | yes      |
//   | orchestrator   | key vault              | Key Vault Secrets User         | R      | yes     | yes      |
//   | orchestrator   | app insights           | Monitoring Metrics Publisher   | W      | yes     | yes      |
//   | orchestrator   | ml workspace           | AzureML Data Scientist         | J      | yes     | yes      |
//   | orchestrator   | container registry     | AcrPull                        | R      | yes     | yes      |
//   | orchestrator   | silo outbox container  | Storage Blob Data Reader       | R      | yes     | yes      |
//   | orchestrator   | silo ml workspace      | AzureML Data Scientist         | J      | yes     | yes      |
//   | silo job       | checkpoints container  | Storage Blob Data Reader       | R      | yes     | yes      |
//   | silo job       | container registry     | AcrPull                        | R      | yes     | yes      |
//   | silo job       | silo data container    | Storage Blob Data Reader       | R      | yes     | yes      |
//   | silo job       | silo private area      | Storage Blob Data Contributor  | RW     | yes     | yes      |
//   | silo job       | silo outbox container  | Storage Blob Data Contributor  | RW     | yes     | yes      |
//   | contoso people | checkpoints container  | Storage Blob Data Reader       | R      | yes     | yes      |
//   | contoso people | key vault              | Key Vault Secrets Officer      | RW     | yes     | yes      |
//   | contoso people | ml workspace           | AzureML Data Scientist         | J      | yes     | no       |
//   | contoso people | silo data container    | Storage Blob Data Reader       | R      | yes     | no       |
//   | contoso people | silo outbox container  | Storage Blob Data Reader       | R      | yes     | no       |
//
// What the matrix leaves out is forbidden: the orchestrator holds no role on any silo's data container, in either
// mode; a silo job holds none on another silo's storage, or on Contoso's beyond the two rows above; in eyes-off,
// nobody outside a silo can read its data or its outbox (per-silo updates), only the checkpoints (aggregates).
// "silo private area" is the silo's data container restricted by an ABAC condition to blobs under private/ (its
// masking secret and attempt records). In the sas set-up the orchestrator reads the outbox with a SAS, read and list
// only, instead of its row. "silo ml workspace" is a silo's own workspace (single-tenant and cross-tenant set-ups). Azure ML's own identities
// (workspaces, computes) get their access from Azure ML, not from these templates.

targetScope = 'resourceGroup'

@description('Region of Contoso\'s resources.')
param location string = resourceGroup().location

@description('eyes-on (simulation, public or synthetic data) or eyes-off (real data: nobody outside a silo sees anything but aggregates).')
@allowed([ 'eyes-on', 'eyes-off' ])
param privacyMode string

@description('The Functions app\'s image, by digest, built from functions/FederatedFunctions.FunctionsApp on an image with libstdc++ from GCC 13 or later.')
param appImage string

@description('Elastic Premium size of the Functions plan.')
@allowed([ 'EP1', 'EP2', 'EP3' ])
param planSku string = 'EP1'

@description('Object id of the Entra group of Contoso\'s people; empty for none.')
param contosoPeopleGroupId string = ''

@description('The silos: id, and the principal id of its job identity (each silo deployment\'s jobPrincipalId output).')
param silos { id: string, jobPrincipalId: string }[] = []

@description('App settings of the silo registry (Silos__{id}__...), as each silo deployment\'s appSettings output gives them; no secret.')
param siloSettings object = {}

@description('Subnet for private endpoints (storage, Key Vault, registry, workspace); empty to keep public endpoints.')
param privateEndpointSubnetId string = ''

@description('Subnet the Functions app integrates with; required with private endpoints.')
param appSubnetId string = ''

@description('Durable task hub name.')
param taskHub string = 'FederatedFunctions'

var suffix = uniqueString(resourceGroup().id)
var privateNetworking = !empty(privateEndpointSubnetId)
var checkpointsContainerName = 'checkpoints'

resource orchestrator 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-fl-orchestrator-${suffix}'
  location: location
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: { location: location, suffix: suffix }
}

module storage 'modules/orchestrator-storage.bicep' = {
  name: 'orchestrator-storage'
  params: {
    location: location
    suffix: suffix
    checkpointsContainerName: checkpointsContainerName
    publicNetworkAccess: !privateNetworking
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv-fl-${suffix}', 24)
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: { defaultAction: privateNetworking ? 'Deny' : 'Allow', bypass: 'AzureServices' }
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: take('crfl${suffix}', 50)
  location: location
  sku: { name: privateNetworking ? 'Premium' : 'Standard' }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
  }
}

module workspace 'modules/ml-workspace.bicep' = {
  name: 'ml-workspace'
  params: {
    location: location
    name: 'mlw-fl-${suffix}'
    keyVaultId: vault.id
    insightsId: monitoring.outputs.insightsId
    registryId: registry.id
    publicNetworkAccess: !privateNetworking
  }
}

module access 'modules/orchestrator-access.bicep' = {
  name: 'orchestrator-access'
  params: {
    orchestratorPrincipalId: orchestrator.properties.principalId
    contosoPeopleGroupId: contosoPeopleGroupId
    privacyMode: privacyMode
    orchestratorStorageName: storage.outputs.name
    checkpointsContainerName: checkpointsContainerName
    keyVaultName: vault.name
    insightsName: monitoring.outputs.insightsName
    workspaceName: workspace.outputs.name
    registryName: registry.name
  }
}

module siloLinks 'modules/silo-link.bicep' = [for silo in silos: {
  name: 'silo-link-${silo.id}'
  params: {
    jobPrincipalId: silo.jobPrincipalId
    orchestratorStorageName: storage.outputs.name
    checkpointsContainerName: checkpointsContainerName
    registryName: registry.name
  }
}]

module app 'modules/functions-app.bicep' = {
  name: 'functions-app'
  params: {
    location: location
    suffix: suffix
    appImage: appImage
    registryLoginServer: registry.properties.loginServer
    identityId: orchestrator.id
    identityClientId: orchestrator.properties.clientId
    storageName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    insightsConnectionString: monitoring.outputs.connectionString
    taskHub: taskHub
    planSku: planSku
    appSubnetId: appSubnetId
    extraSettings: siloSettings
  }
  dependsOn: [ access ]
}

var endpoints = privateNetworking ? [
  { target: 'storage', group: 'blob', zone: 'privatelink.blob.${environment().suffixes.storage}' }
  { target: 'storage', group: 'queue', zone: 'privatelink.queue.${environment().suffixes.storage}' }
  { target: 'storage', group: 'table', zone: 'privatelink.table.${environment().suffixes.storage}' }
  { target: 'vault', group: 'vault', zone: 'privatelink.vaultcore.azure.net' }
  { target: 'registry', group: 'registry', zone: 'privatelink${environment().suffixes.acrLoginServer}' }
  { target: 'workspace', group: 'amlworkspace', zone: 'privatelink.api.azureml.ms' }
] : []

module privateEndpoints 'modules/private-endpoint.bicep' = [for endpoint in endpoints: {
  name: 'pe-${endpoint.group}'
  params: {
    location: location
    subnetId: privateEndpointSubnetId
    virtualNetworkId: split(privateEndpointSubnetId, '/subnets/')[0]
    targetId: endpoint.target == 'storage' ? storage.outputs.id : endpoint.target == 'vault' ? vault.id : endpoint.target == 'registry' ? registry.id : workspace.outputs.id
    groupId: endpoint.group
    zoneName: endpoint.zone
  }
}]

@description('The Functions app.')
output functionAppName string = app.outputs.name

@description('Principal id of the orchestrator\'s identity: each silo deployment\'s orchestratorPrincipalId (sas and single-tenant set-ups).')
output orchestratorPrincipalId string = orchestrator.properties.principalId

@description('Client id of the orchestrator\'s identity: each silo deployment\'s orchestratorClientId.')
output orchestratorClientId string = orchestrator.properties.clientId

@description('The workspace silo computes attach to: each silo deployment\'s workspace parameter (sas and single-tenant set-ups).')
output workspace object = {
  subscriptionId: subscription().subscriptionId
  resourceGroup: resourceGroup().name
  name: workspace.outputs.name
}

@description('Key Vault name (the sas set-up stores each silo\'s outbox SAS here).')
output keyVaultName string = vault.name

@description('Registry login server, for the app and silo runner images.')
output registryLoginServer string = registry.properties.loginServer
