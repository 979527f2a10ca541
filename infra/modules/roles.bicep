// The built-in roles this deployment assigns, by name. Every role assignment in infra/ names its role from here, and
// tests/FederatedFunctions.Infra.Tests checks each one against the permission matrix in main.bicep.

@export()
@description('Built-in Azure role definition ids (GUIDs), by role name.')
var roles = {
  // Storage Blob Data Reader: read and list blobs.
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  // Storage Blob Data Contributor: read, write and delete blobs.
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Storage Blob Data Owner: blobs, and their ACLs; the Functions host's minimum on its own storage.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Queue Data Contributor: the Durable task hub's queues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Table Data Contributor: the Durable task hub's history and instance tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // AzureML Data Scientist: create, read and cancel jobs in a workspace; no compute or workspace management.
  azureMlDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  // Key Vault Secrets User: read secret values.
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Key Vault Secrets Officer: set and rotate secrets (Contoso's people store the SAS tokens providers hand over).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  // Monitoring Metrics Publisher: send telemetry to Application Insights with Entra authentication.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // AcrPull: pull images.
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

@export()
@description('An ABAC condition that limits a blob role to blobs under private/ (the silo\'s private area in its data container).')
var privateAreaOnly = '''
(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'private/'
 )
)
'''
