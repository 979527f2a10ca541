// Contoso's side, cross-tenant set-up. Replace the example values (ids, image digests) with yours; see docs/customer-setup.md.
using '../../main.bicep'

param privacyMode = 'eyes-off'
param appImage = 'registry.example.invalid/federatedfunctions-app@sha256:0000000000000000000000000000000000000000000000000000000000000001'
param planSku = 'EP1'
param contosoPeopleGroupId = '11111111-1111-1111-1111-111111111111'

// Each silo deployment's jobPrincipalId output; deploy the silos first, then this again with them listed.
param silos = [
  { id: 'hospital-a', jobPrincipalId: '22222222-2222-2222-2222-22222222000a' }
  { id: 'hospital-b', jobPrincipalId: '22222222-2222-2222-2222-22222222000b' }
]
