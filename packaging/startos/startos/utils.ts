export const dataDir = '/data'
export const lndMount = '/mnt/lnd'
export const apiPort = 8402
export const gatePort = 8403
// The variable main.ts hands the admin key in (l402d --admin-key-env).
export const adminKeyEnv = 'L402D_ADMIN_KEY'
