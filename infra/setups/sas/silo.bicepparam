// A data provider's silo, sas set-up: one tenant; the compute attached to Contoso's workspace; the orchestrator reads
// the outbox with a SAS that Contoso keeps in its Key Vault. Replace the example values; see docs/customer-setup.md.
using '../../silo.bicep'

param siloId = 'hospital-a'
param setup = 'sas'
param privacyMode = 'eyes-on'
param orchestratorPrincipalId = '33333333-3333-3333-3333-333333333333'
param orchestratorClientId = '44444444-4444-4444-4444-444444444444'
param contosoPeopleGroupId = '11111111-1111-1111-1111-111111111111'
param workspace = {
  subscriptionId: '55555555-5555-5555-5555-555555555555'
  resourceGroup: 'rg-contoso-fl'
  name: 'mlw-fl-example'
  location: 'westeurope'
}
param contosoKeyVaultName = 'kv-fl-example'
param runnerImage = 'registry.example.invalid/federatedfunctions-silo'
param runnerImageDigest = '0000000000000000000000000000000000000000000000000000000000000002'
