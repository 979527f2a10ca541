// One silo, on Contoso's side (looped over the silos in main.bicep): its job identity reads the job documents and the
// global models in the checkpoints container, and pulls the silo runner's image. Nothing else of Contoso's.
import { roles } from 'roles.bicep'

@description('Principal (object) id of the silo\'s job identity (the silo deployment\'s output jobPrincipalId).')
param jobPrincipalId string

@description('The orchestrator\'s storage account.')
param orchestratorStorageName string

@description('Its checkpoints container.')
param checkpointsContainerName string

@description('The container registry of the silo runner image.')
param registryName string

resource checkpoints 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${orchestratorStorageName}/default/${checkpointsContainerName}'
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

// Storage Blob Data Reader: the job document and the round's global model, both in the checkpoints container.
resource readJobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: checkpoints
  name: guid(checkpoints.id, jobPrincipalId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: silo job | checkpoints container | Storage Blob Data Reader'
  }
}

// AcrPull: the silo runner's image, pinned by digest in the silo's Azure ML environment.
resource pullRunner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: registry
  name: guid(registry.id, jobPrincipalId, roles.acrPull)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: silo job | container registry | AcrPull'
  }
}
