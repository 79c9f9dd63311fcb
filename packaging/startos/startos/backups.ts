import { sdk } from './sdk'

// The store (root keys, challenges, journal) and the key files.
export const { createBackup, restoreInit } = sdk.setupBackups(async () => sdk.Backups.ofVolumes('main'))
