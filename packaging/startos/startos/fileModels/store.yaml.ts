import { FileHelper, z } from '@start9labs/start-sdk'
import { sdk } from '../sdk'

// The package's own state: the admin key, generated at install (see
// init/seedFiles.ts) and handed to l402d through --admin-key-env.
export const store = FileHelper.yaml(
  { base: sdk.volumes.main, subpath: '/start9/store.yaml' },
  z.object({ adminKey: z.string().optional().catch(undefined) }),
)
