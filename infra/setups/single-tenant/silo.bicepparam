// A data provider's silo, single-tenant set-up: its own subscription in Contoso's tenant; its own workspace and compute
// there; the orchestrator reads the outbox and runs jobs with its identity; no shared key. See docs/customer-setup.md.
using '../../silo.bicep'

param siloId = 'hospital-a'
param setup = 'single-tenant'
param privacyMode = 'eyes-off'
param orchestratorPrincipalId = '33333333-3333-3333-3333-333333333333'
param orchestratorClientId = '44444444-4444-4444-4444-444444444444'
param runnerImage = 'registry.example.invalid/federatedfunctions-silo'
param runnerImageDigest = '0000000000000000000000000000000000000000000000000000000000000002'
param lowPriority = true
