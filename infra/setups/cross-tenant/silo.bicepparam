// A data provider's silo, cross-tenant set-up: its own tenant and subscription; its own workspace and compute; the
// orchestrator is Contoso's multi-tenant application provisioned here, signed in with Contoso's identity as a
// federated credential (no secret). See docs/customer-setup.md.
using '../../silo.bicep'

param siloId = 'hospital-c'
param setup = 'cross-tenant'
param privacyMode = 'eyes-off'
// The principal id of Contoso's application's service principal in this tenant (after admin consent).
param orchestratorPrincipalId = '66666666-6666-6666-6666-666666666666'
param orchestratorClientId = '44444444-4444-4444-4444-444444444444'
param orchestratorApplicationClientId = '77777777-7777-7777-7777-777777777777'
param runnerImage = 'registry.example.invalid/federatedfunctions-silo'
param runnerImageDigest = '0000000000000000000000000000000000000000000000000000000000000002'
