// Log Analytics and workspace-based Application Insights, with local (key) authentication off: telemetry is sent with
// Entra ID (the orchestrator's identity holds Monitoring Metrics Publisher on the component).

@description('Region of the monitoring resources.')
param location string

@description('Suffix that makes the names unique (from uniqueString).')
param suffix string

@description('Days Log Analytics keeps data.')
@minValue(30)
@maxValue(730)
param retentionDays int = 90

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-fl-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-fl-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

@description('Application Insights resource id.')
output insightsId string = insights.id

@description('Application Insights name.')
output insightsName string = insights.name

@description('Application Insights connection string (an ingestion endpoint and an instrumentation key, not a secret: local authentication is off).')
output connectionString string = insights.properties.ConnectionString
