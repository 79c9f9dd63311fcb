import { manifest as lndManifest } from 'lnd-startos/startos/manifest'
import { gRPCHostId, gRPCPort } from 'lnd-startos/startos/interfaces'
import { store } from './fileModels/store.yaml'
import { sdk } from './sdk'
import { adminKeyEnv, apiPort, dataDir, gatePort, lndMount } from './utils'

export const main = sdk.setupMain(async ({ effects }) => {
  // LND's gRPC over the bridge; null until LND binds it (main restarts
  // when it appears, through const()).
  const lndHost = await sdk.host
    .getBridgeAddress(effects, { packageId: 'lnd', hostId: gRPCHostId, internalPort: gRPCPort })
    .const()
  const adminKey = await store.read((s) => s.adminKey).const(effects)
  if (!lndHost || !adminKey) throw new Error('waiting for LND gRPC and the admin key')

  const sub = await sdk.SubContainer.of(
    effects,
    { imageId: 'l402d' },
    sdk.Mounts.of()
      .mountVolume({ volumeId: 'main', subpath: null, mountpoint: dataDir, readonly: false })
      .mountDependency<typeof lndManifest>({
        dependencyId: 'lnd',
        volumeId: 'main',
        subpath: null,
        mountpoint: lndMount,
        readonly: true,
      }),
    'l402d-sub',
  )
  const flags = ['--datadir', dataDir, '--listen', `0.0.0.0:${apiPort}`, '--admin-key-env', adminKeyEnv]
  return sdk.Daemons.of(effects)
    .addDaemon('l402d', {
      subcontainer: sub,
      exec: {
        command: [
          '/usr/local/bin/l402d',
          ...flags,
          '--network', 'mainnet',
          '--lnd.host', lndHost,
          '--lnd.tlscertpath', `${lndMount}/tls.cert`,
          '--lnd.macaroonpath', `${lndMount}/data/chain/bitcoin/mainnet/admin.macaroon`,
          '--gate.listen', `0.0.0.0:${gatePort}`,
          '--gate.services', `${dataDir}/services.yaml`,
        ],
        env: { [adminKeyEnv]: adminKey },
      },
      ready: {
        display: 'API and dashboard',
        fn: () =>
          sdk.healthCheck.checkPortListening(effects, apiPort, {
            successMessage: 'The API and dashboard answer',
            errorMessage: 'The API is not listening yet',
          }),
      },
      requires: [],
    })
    .addHealthCheck('lnd-reachable', {
      ready: {
        display: 'LND',
        // l402d health exits 0 when it reaches LND, 61 while it cannot.
        fn: () =>
          sdk.healthCheck.runHealthScript(['/usr/local/bin/l402d', ...flags, 'health', '--check', 'lnd'], sub, {
            errorMessage: 'l402d cannot reach LND yet',
          }),
      },
      requires: ['l402d'],
    })
})
