import { utils } from '@start9labs/start-sdk'
import { store } from '../fileModels/store.yaml'
import { sdk } from '../sdk'

export const seedFiles = sdk.setupOnInit(async (effects) => {
  const current = await store.read((s) => s.adminKey).once()
  if (!current) {
    // l402d wants at least 16 characters; 32 alphanumerics is ~190 bits.
    const adminKey = utils.getDefaultString({ charset: 'a-z,A-Z,0-9', len: 32 })
    await store.merge(effects, { adminKey })
  }
})
