// One private endpoint for one sub-resource (blob, queue, table, vault, amlworkspace, registry), with its private DNS
// zone linked to the endpoint's virtual network, so the name resolves to the private address inside it.

@description('Region of the endpoint (the virtual network\'s).')
param location string

@description('Resource id of the subnet the endpoint is placed in.')
param subnetId string

@description('Resource id of the resource the endpoint reaches.')
param targetId string

@description('The sub-resource (group id): blob, queue, table, vault, amlworkspace or registry.')
@allowed([ 'blob', 'queue', 'table', 'vault', 'amlworkspace', 'registry' ])
param groupId string

@description('The private DNS zone for that sub-resource, e.g. privatelink.blob.core.windows.net.')
param zoneName string

@description('Resource id of the subnet\'s virtual network, where the DNS zone is linked.')
param virtualNetworkId string

resource zone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: zoneName
  location: 'global'
}

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: zone
  name: 'link-${uniqueString(virtualNetworkId)}'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: virtualNetworkId }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: 'pe-${groupId}-${uniqueString(targetId)}'
  location: location
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: groupId
        properties: {
          privateLinkServiceId: targetId
          groupIds: [ groupId ]
        }
      }
    ]
  }
}

resource dns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(zoneName, '.', '-')
        properties: { privateDnsZoneId: zone.id }
      }
    ]
  }
}
