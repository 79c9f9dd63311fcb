import { sdk } from './sdk'

// LND must be running and report its own `lnd` health check healthy.
export const setDependencies = sdk.setupDependencies(async () => ({
  lnd: {
    kind: 'running',
    versionRange: '>=0.18.0',
    healthChecks: ['lnd'],
  },
}))
