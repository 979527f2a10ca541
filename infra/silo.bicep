// FederatedFunctions: a data provider's side (one silo). One command, in the provider's own subscription:
//   az deployment group create -g <rg> -f infra/silo.bicep -p infra/setups/<set-up>/silo.bicepparam
// deploys the silo's storage (a data container and an outbox container), the user-assigned identity its jobs run as,
// an Azure ML compute cluster in the provider's region (in its own workspace and subscription, except in the sas set-up), identity-based datastores, the silo runner's environment
// pinned by digest, and the role assignments of the permission matrix in main.bicep. Its outputs are the registry
// entry to hand Contoso (no secret in it) and the principal id Contoso's main.bicep grants on its side.
//
// Set-ups (setup):
//   sas            one tenant; the compute is attached to Contoso's workspace; the orchestrator reads the outbox with a
//                  SAS (read and list, bound to a stored access policy) that Contoso keeps in its Key Vault.
//   single-tenant  one Entra tenant, many subscriptions; the compute is in the silo's own workspace, in the provider's
//                  subscription; the orchestrator reads the outbox and runs jobs with its own identity; no shared key.
//   cross-tenant   the silo is in another tenant; the compute is in the silo's own workspace; the orchestrator is
//                  Contoso's multi-tenant application, signed in with Contoso's identity as a federated credential.

targetScope = 'resourceGroup'

@description('The silo id: 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit.')
@minLength(1)
@maxLength(63)
param siloId string

@description('Region of the silo: storage, identity and compute nodes.')
param location string = resourceGroup().location

@description('The set-up: sas, single-tenant or cross-tenant.')
@allowed([ 'sas', 'single-tenant', 'cross-tenant' ])
param setup string

@description('eyes-on (simulation, public or synthetic data) or eyes-off (real data: nobody outside the silo sees anything but aggregates).')
@allowed([ 'eyes-on', 'eyes-off' ])
param privacyMode string

@description('Principal id of the orchestrator in this tenant: Contoso\'s orchestratorPrincipalId output (sas, single-tenant), or the principal id of Contoso\'s multi-tenant application\'s service principal here (cross-tenant).')
param orchestratorPrincipalId string

@description('Client id of Contoso\'s orchestrator identity (Contoso\'s orchestratorClientId output).')
param orchestratorClientId string

@description('Client id of Contoso\'s multi-tenant application (cross-tenant only; empty otherwise).')
param orchestratorApplicationClientId string = ''

@description('Object id of the Entra group of Contoso\'s people, in this tenant; empty for none.')
param contosoPeopleGroupId string = ''

@description('Contoso\'s workspace (Contoso\'s workspace output plus its region), for the sas set-up.')
param workspace { subscriptionId: string, resourceGroup: string, name: string, location: string }?

@description('Contoso\'s Key Vault, where the outbox SAS is kept (sas set-up only; empty otherwise).')
param contosoKeyVaultName string = ''

@description('The silo runner\'s image, without tag or digest, e.g. <registry login server>/federatedfunctions-silo (the registryLoginServer output of main.bicep).')
param runnerImage string

@description('The SHA-256 digest of that image: 64 hex digits.')
@minLength(64)
@maxLength(64)
param runnerImageDigest string

@description('VM size of the compute\'s nodes.')
param vmSize string = 'Standard_D4s_v5'

@description('Most nodes the compute scales to.')
@minValue(1)
@maxValue(100)
param maxNodes int = 2

@description('Low-priority (preemptible) nodes.')
param lowPriority bool = false

@description('Subnet for the storage account\'s private endpoint; empty to keep a public endpoint.')
param privateEndpointSubnetId string = ''

@description('Subnet the compute\'s nodes are placed in; empty for none.')
param computeSubnetId string = ''

@description('Seconds between the orchestrator\'s reads of a job\'s state.')
@minValue(5)
param pollSeconds int = 60

var crossTenant = setup == 'cross-tenant'
// The compute in the silo's own workspace, in the provider's subscription; only the sas set-up attaches it to Contoso's.
var ownWorkspace = setup != 'sas'
var privateNetworking = !empty(privateEndpointSubnetId)
var dataContainerName = 'data'
var outboxContainerName = 'outbox'

resource jobIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-fl-silo-${siloId}'
  location: location
}

module storage 'modules/silo-storage.bicep' = {
  name: 'silo-storage'
  params: {
    location: location
    siloId: siloId
    dataContainerName: dataContainerName
    outboxContainerName: outboxContainerName
    allowSharedKeyAccess: setup == 'sas'
    publicNetworkAccess: !privateNetworking
  }
}

module access 'modules/silo-access.bicep' = {
  name: 'silo-access'
  params: {
    jobPrincipalId: jobIdentity.properties.principalId
    orchestratorPrincipalId: orchestratorPrincipalId
    orchestratorReadsWithIdentity: setup != 'sas'
    contosoPeopleGroupId: contosoPeopleGroupId
    privacyMode: privacyMode
    siloStorageName: storage.outputs.name
    dataContainerName: dataContainerName
    outboxContainerName: outboxContainerName
  }
}

module siloWorkspace 'modules/silo-workspace.bicep' = if (ownWorkspace) {
  name: 'silo-workspace'
  params: {
    location: location
    siloId: siloId
    orchestratorPrincipalId: orchestratorPrincipalId
    publicNetworkAccess: !privateNetworking
  }
}

module ownCompute 'modules/silo-compute.bicep' = if (ownWorkspace) {
  name: 'silo-compute'
  params: {
    workspaceName: siloWorkspace.?outputs.name ?? ''
    workspaceLocation: location
    siloId: siloId
    computeLocation: location
    jobIdentityId: jobIdentity.id
    vmSize: vmSize
    maxNodes: maxNodes
    lowPriority: lowPriority
    subnetId: computeSubnetId
    siloStorageName: storage.outputs.name
    siloResourceGroup: resourceGroup().name
    siloSubscriptionId: subscription().subscriptionId
    dataContainerName: dataContainerName
    outboxContainerName: outboxContainerName
    runnerImage: runnerImage
    runnerImageDigest: runnerImageDigest
  }
}

// In Contoso's workspace, in Contoso's subscription: the deployer needs AzureML Compute Operator there (see docs/customer-setup.md).
module attachedCompute 'modules/silo-compute.bicep' = if (!ownWorkspace) {
  name: 'silo-compute-${uniqueString(siloId)}'
  scope: resourceGroup(workspace.?subscriptionId ?? subscription().subscriptionId, workspace.?resourceGroup ?? resourceGroup().name)
  params: {
    workspaceName: workspace.?name ?? ''
    workspaceLocation: workspace.?location ?? location
    siloId: siloId
    computeLocation: location
    jobIdentityId: jobIdentity.id
    vmSize: vmSize
    maxNodes: maxNodes
    lowPriority: lowPriority
    subnetId: computeSubnetId
    siloStorageName: storage.outputs.name
    siloResourceGroup: resourceGroup().name
    siloSubscriptionId: subscription().subscriptionId
    dataContainerName: dataContainerName
    outboxContainerName: outboxContainerName
    runnerImage: runnerImage
    runnerImageDigest: runnerImageDigest
  }
}

module privateEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-blob'
  params: {
    location: location
    subnetId: privateEndpointSubnetId
    virtualNetworkId: split(privateEndpointSubnetId, '/subnets/')[0]
    targetId: storage.outputs.id
    groupId: 'blob'
    zoneName: 'privatelink.blob.${environment().suffixes.storage}'
  }
}

var computeName = ownWorkspace ? ownCompute.?outputs.computeName : attachedCompute.?outputs.computeName
var environmentId = ownWorkspace ? ownCompute.?outputs.environmentId : attachedCompute.?outputs.environmentId
var outboxSasSecret = 'silo-${siloId}-outbox-sas'

var outboxReader = setup == 'sas'
  ? { Credential: 'Sas' }
  : crossTenant
      ? { Credential: 'FederatedApplication', TenantId: tenant().tenantId, ApplicationClientId: orchestratorApplicationClientId, ManagedIdentityClientId: orchestratorClientId }
      : { Credential: 'ManagedIdentity', ManagedIdentityClientId: orchestratorClientId }

var azureMl = union({
  SubscriptionId: ownWorkspace ? subscription().subscriptionId : workspace.?subscriptionId
  ResourceGroup: ownWorkspace ? resourceGroup().name : workspace.?resourceGroup
  Workspace: ownWorkspace ? siloWorkspace.?outputs.name : workspace.?name
  Compute: computeName
  IdentityResourceId: jobIdentity.id
  IdentityClientId: jobIdentity.properties.clientId
  Environment: environmentId
  ImageDigest: runnerImageDigest
}, crossTenant ? { TenantId: tenant().tenantId, ApplicationClientId: orchestratorApplicationClientId } : {})

@description('The silo\'s registry entry, for Contoso\'s Functions app (configuration section Silos:{siloId}); no secret in it.')
output registryEntry object = {
  BlobServiceUri: storage.outputs.blobEndpoint
  Container: dataContainerName
  OutboxContainer: outboxContainerName
  OutboxReader: outboxReader
  Compute: {
    Kind: 'azureml'
    PollSeconds: pollSeconds
    AzureMl: azureMl
  }
}

@description('Where the orchestrator\'s outbox SAS goes in the sas set-up: a Key Vault reference for the app setting Silos__{siloId}__OutboxReader__SasToken.')
output outboxSasReference string = setup == 'sas' ? '@Microsoft.KeyVault(VaultName=${contosoKeyVaultName};SecretName=${outboxSasSecret})' : ''

@description('Principal id of the silo\'s job identity: Contoso\'s main.bicep grants it read on the checkpoints and pull on the runner image.')
output jobPrincipalId string = jobIdentity.properties.principalId

@description('Name of the silo\'s storage account (for fl silo onboard and the SAS commands).')
output storageAccountName string = storage.outputs.name
