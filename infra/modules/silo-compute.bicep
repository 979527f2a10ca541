// A silo's Azure ML compute cluster, in the silo's region, running as the silo's job identity, in the workspace the
// orchestrator submits its jobs to: Contoso's (sas and single-tenant set-ups) or the silo's own (cross-tenant). With
// it, identity-based datastores for the silo's data and outbox (no credential stored), and the silo runner's
// environment, pinned by image digest (the trainer identity eyes-off runs approve).

@description('The workspace the compute is attached to, in this resource group.')
param workspaceName string

@description('The workspace\'s region (the compute resource lives there; its nodes run in computeLocation).')
param workspaceLocation string

@description('The silo id.')
param siloId string

@description('Region the compute\'s nodes run in: the silo\'s.')
param computeLocation string

@description('Resource id of the silo\'s job identity.')
param jobIdentityId string

@description('VM size of the nodes.')
param vmSize string

@description('Most nodes the cluster scales to (it scales to zero when idle).')
@minValue(1)
@maxValue(100)
param maxNodes int

@description('Low-priority (preemptible) nodes: cheaper; a preempted job is queued again and runs again as the same job.')
param lowPriority bool

@description('Subnet the nodes are placed in (the silo\'s virtual network); empty for none.')
param subnetId string

@description('The silo\'s storage account.')
param siloStorageName string

@description('Its resource group.')
param siloResourceGroup string

@description('Its subscription.')
param siloSubscriptionId string

@description('Its data container.')
param dataContainerName string

@description('Its outbox container.')
param outboxContainerName string

@description('The silo runner\'s image, without tag or digest, e.g. <registry login server>/federatedfunctions-silo (the registryLoginServer output of main.bicep).')
param runnerImage string

@description('The SHA-256 digest of that image: 64 hex digits.')
@minLength(64)
@maxLength(64)
param runnerImageDigest string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

var computeName = take('fl${uniqueString(siloId, siloSubscriptionId)}', 16)
var datastorePrefix = replace(siloId, '-', '_')

resource compute 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: computeName
  location: workspaceLocation
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${jobIdentityId}': {} }
  }
  properties: {
    computeType: 'AmlCompute'
    computeLocation: computeLocation
    description: 'FederatedFunctions silo ${siloId}'
    disableLocalAuth: true
    properties: {
      vmSize: vmSize
      vmPriority: lowPriority ? 'LowPriority' : 'Dedicated'
      osType: 'Linux'
      scaleSettings: { maxNodeCount: maxNodes, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT300S' }
      enableNodePublicIp: empty(subnetId)
      isolatedNetwork: false
      remoteLoginPortPublicAccess: 'Disabled'
      subnet: empty(subnetId) ? null : { id: subnetId }
    }
  }
}

resource dataStore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-04-01' = {
  parent: workspace
  name: '${datastorePrefix}_data'
  properties: {
    datastoreType: 'AzureBlob'
    credentials: { credentialsType: 'None' }
    accountName: siloStorageName
    containerName: dataContainerName
    endpoint: environment().suffixes.storage
    protocol: 'https'
    resourceGroup: siloResourceGroup
    subscriptionId: siloSubscriptionId
    serviceDataAccessAuthIdentity: 'None'
    description: 'Silo ${siloId}: data (read by its own jobs only).'
  }
}

resource outboxStore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-04-01' = {
  parent: workspace
  name: '${datastorePrefix}_outbox'
  properties: {
    datastoreType: 'AzureBlob'
    credentials: { credentialsType: 'None' }
    accountName: siloStorageName
    containerName: outboxContainerName
    endpoint: environment().suffixes.storage
    protocol: 'https'
    resourceGroup: siloResourceGroup
    subscriptionId: siloSubscriptionId
    serviceDataAccessAuthIdentity: 'None'
    description: 'Silo ${siloId}: outbox (what leaves the silo).'
  }
}

resource runner 'Microsoft.MachineLearningServices/workspaces/environments@2024-04-01' = {
  parent: workspace
  name: 'fl-silo-runner'
  properties: { description: 'The FederatedFunctions silo runner (fl silo run).' }
}

resource runnerVersion 'Microsoft.MachineLearningServices/workspaces/environments/versions@2024-04-01' = {
  parent: runner
  name: take(runnerImageDigest, 12)
  properties: {
    image: '${runnerImage}@sha256:${runnerImageDigest}'
    osType: 'Linux'
    autoRebuild: 'Disabled'
    description: 'Pinned by digest: the trainer identity eyes-off runs approve.'
  }
}

@description('The compute\'s name in the workspace.')
output computeName string = compute.name

@description('Resource id of the runner\'s environment version.')
output environmentId string = runnerVersion.id
