// Role assignments on a silo's storage. The silo's job identity reads its data, writes its private area (ABAC:
// blobs under private/ only) and writes its outbox; the orchestrator reads the outbox (identity set-ups); Contoso's
// people read data and outbox in eyes-on only. Each description names its row of the matrix in main.bicep.
import { roles, privateAreaOnly } from 'roles.bicep'

@description('Principal id of the silo\'s job identity.')
param jobPrincipalId string

@description('Principal id of the orchestrator in this tenant.')
param orchestratorPrincipalId string

@description('Whether the orchestrator reads the outbox with its identity (false: with a SAS, the sas set-up).')
param orchestratorReadsWithIdentity bool

@description('Object id of the Entra group of Contoso\'s people in this tenant; empty for none.')
param contosoPeopleGroupId string

@description('eyes-on or eyes-off.')
@allowed([ 'eyes-on', 'eyes-off' ])
param privacyMode string

@description('The silo\'s storage account.')
param siloStorageName string

@description('Its data container.')
param dataContainerName string

@description('Its outbox container.')
param outboxContainerName string

var eyesOn = privacyMode == 'eyes-on'
var people = !empty(contosoPeopleGroupId)

resource data 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${siloStorageName}/default/${dataContainerName}'
}

resource outbox 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${siloStorageName}/default/${outboxContainerName}'
}

// Storage Blob Data Reader: the job reads the silo's data.
resource jobReadsData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: data
  name: guid(data.id, jobPrincipalId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: silo job | silo data container | Storage Blob Data Reader'
  }
}

// Storage Blob Data Contributor, limited by an ABAC condition to private/: the masking secret and attempt records.
resource jobWritesPrivate 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: data
  name: guid(data.id, jobPrincipalId, roles.storageBlobDataContributor, 'private')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
    condition: privateAreaOnly
    conditionVersion: '2.0'
    description: 'fl-matrix: silo job | silo private area | Storage Blob Data Contributor'
  }
}

// Storage Blob Data Contributor: the job writes its outputs and outcome to the outbox (first writer wins).
resource jobWritesOutbox 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: outbox
  name: guid(outbox.id, jobPrincipalId, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: jobPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: silo job | silo outbox container | Storage Blob Data Contributor'
  }
}

// Storage Blob Data Reader: the orchestrator collects outcomes and updates from the outbox.
resource orchestratorReadsOutbox 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (orchestratorReadsWithIdentity) {
  scope: outbox
  name: guid(outbox.id, orchestratorPrincipalId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: orchestratorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'fl-matrix: orchestrator | silo outbox container | Storage Blob Data Reader'
  }
}

// Storage Blob Data Reader, eyes-on only: Contoso's people look at the (public or synthetic) data while simulating.
resource peopleReadData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (people && eyesOn) {
  scope: data
  name: guid(data.id, contosoPeopleGroupId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: contosoPeopleGroupId
    principalType: 'Group'
    description: 'fl-matrix: contoso people | silo data container | Storage Blob Data Reader'
  }
}

// Storage Blob Data Reader, eyes-on only: Contoso's people look at per-silo updates while simulating.
resource peopleReadOutbox 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (people && eyesOn) {
  scope: outbox
  name: guid(outbox.id, contosoPeopleGroupId, roles.storageBlobDataReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: contosoPeopleGroupId
    principalType: 'Group'
    description: 'fl-matrix: contoso people | silo outbox container | Storage Blob Data Reader'
  }
}
