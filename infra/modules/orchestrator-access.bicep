// Role assignments in Contoso's resource group: the orchestrator's identity and Contoso's people. Each assignment's
// description names its row of the permission matrix in main.bicep.
import { roles } from 'roles.bicep'

@description('Principal (object) id of the orchestrator: the Functions app\'s user-assigned identity.')
param orchestratorPrincipalId string

@description('Object id of the Entra group of Contoso\'s people (data scientists, operators); empty for none.')
param contosoPeopleGroupId string

@description('eyes-on (simulation, public or synthetic data) or eyes-off (real data: nobody outside a silo sees anything but aggregates).')
@allowed([ 'eyes-on', 'eyes-off' ])
param privacyMode string

@description('The orchestrator\'s storage account.')
param orchestratorStorageName string

@description('Its checkpoints container.')
param checkpointsContainerName string

@description('The Key Vault.')
param keyVaultName string

@description('The Application Insights component.')
param insightsName string

@description('The Azure ML workspace silo computes attach to.')
param workspaceName string

@description('The container registry of the app and silo runner images.')
param registryName string

var eyesOn = privacyMode == 'eyes-on'
var people = !empty(contosoPeopleGroupId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: orchestratorStorageName
}

resource checkpoints 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${orchestratorStorageName}/default/${checkpointsContainerName}'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

// Storage Blob Data Owner: the Functions host's minimum on its own storage (task hub blobs, leases, checkpoints).
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, orchestratorPrincipalId, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | orchestrator storage | Storage Blob Data Owner'
  }
}

// Storage Queue Data Contributor: the task hub's control and work-item queues.
resource hostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, orchestratorPrincipalId, roles.storageQueueDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | orchestrator storage | Storage Queue Data Contributor'
  }
}

// Storage Table Data Contributor: the task hub's history and instances tables.
resource hostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, orchestratorPrincipalId, roles.storageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | orchestrator storage | Storage Table Data Contributor'
  }
}

// Key Vault Secrets User: Key Vault references in the app's settings (a silo's outbox SAS in the sas set-up).
resource secrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, orchestratorPrincipalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | key vault | Key Vault Secrets User'
  }
}

// Monitoring Metrics Publisher: telemetry with Entra authentication (local authentication is off).
resource telemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: insights
  name: guid(insights.id, orchestratorPrincipalId, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | app insights | Monitoring Metrics Publisher'
  }
}

// AzureML Data Scientist: create, read and cancel the silo jobs on the computes attached to the workspace.
resource jobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, orchestratorPrincipalId, roles.azureMlDataScientist)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMlDataScientist)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | ml workspace | AzureML Data Scientist'
  }
}

// AcrPull: the Functions app's own image.
resource appImage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, orchestratorPrincipalId, roles.acrPull)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | container registry | AcrPull'
  }
}

// Storage Blob Data Reader: Contoso's people read the global models, manifests and audit logs (aggregates only).
resource peopleCheckpoints 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (people) {
  scope: checkpoints
  name: guid(checkpoints.id, contosoPeopleGroupId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: contosoPeopleGroupId
    principalType: 'Group'
    description: 'fl-matrix: contoso people | checkpoints container | Storage Blob Data Reader'
  }
}

// Key Vault Secrets Officer: Contoso's people store the outbox SAS tokens providers hand over (sas set-up).
resource peopleSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (people) {
  scope: vault
  name: guid(vault.id, contosoPeopleGroupId, roles.keyVaultSecretsOfficer)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: contosoPeopleGroupId
    principalType: 'Group'
    description: 'fl-matrix: contoso people | key vault | Key Vault Secrets Officer'
  }
}

// AzureML Data Scientist, eyes-on only: Contoso's people see the silo jobs and their logs while simulating.
resource peopleJobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (people && eyesOn) {
  scope: workspace
  name: guid(workspace.id, contosoPeopleGroupId, roles.azureMlDataScientist)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMlDataScientist)
    principalId: contosoPeopleGroupId
    principalType: 'Group'
    description: 'fl-matrix: contoso people | ml workspace | AzureML Data Scientist'
  }
}
