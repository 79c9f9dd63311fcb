import { sdk } from './sdk'
import { apiPort, gatePort } from './utils'

export const setInterfaces = sdk.setupInterfaces(async ({ effects }) => {
  const apiOrigin = await sdk.MultiHost.of(effects, 'main').bindPort(apiPort, { protocol: 'http' })
  const dashboard = sdk.createInterface(effects, {
    name: 'Dashboard',
    id: 'ui',
    description: "l402d's dashboard; the REST API and MCP (/mcp) share this address",
    type: 'ui',
    masked: false,
    schemeOverride: null,
    username: null,
    path: '/dashboard',
    query: {},
  })
  const gateOrigin = await sdk.MultiHost.of(effects, 'gate').bindPort(gatePort, { protocol: 'http' })
  const gate = sdk.createInterface(effects, {
    name: 'Paid gate',
    id: 'gate',
    description: 'The L402 reverse proxy buyers pay to reach your services',
    type: 'api',
    masked: false,
    schemeOverride: null,
    username: null,
    path: '',
    query: {},
  })
  return [await apiOrigin.export([dashboard]), await gateOrigin.export([gate])]
})
